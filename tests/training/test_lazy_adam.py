"""training.sparse_embeddings: sparse word-table gradients and the lazy Adam step."""

import pytest
import torch

import wordconv
from wordconv.config import build_config
from wordconv.training.lazy_adam import LazyAdam, sparse_tables
from wordconv.training.trainer import build_optimizer

from tiny import FAST


@pytest.mark.parametrize("decoupled", [False, True], ids=["adam", "adamw"])
def test_dense_parameters_get_exactly_adams_update(decoupled):
    torch.manual_seed(0)
    a = torch.nn.Linear(5, 3)
    b = torch.nn.Linear(5, 3)
    b.load_state_dict(a.state_dict())
    ref_cls = torch.optim.AdamW if decoupled else torch.optim.Adam
    ref = ref_cls(a.parameters(), lr=0.01, weight_decay=0.1)
    lazy = LazyAdam(b.parameters(), lr=0.01, weight_decay=0.1, decoupled=decoupled)
    for step in range(5):
        x = torch.randn(4, 5, generator=torch.Generator().manual_seed(step))
        for model, opt in ((a, ref), (b, lazy)):
            opt.zero_grad()
            model(x).pow(2).sum().backward()
            opt.step()
    for p, q in zip(a.parameters(), b.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-6, atol=1e-7)


def test_sparse_rows_hand_computed_and_untouched_rows_stay():
    # one table, a row used twice in the batch: its gradient is the sum; step 1 of Adam moves each
    # used coordinate by lr * g / (|g| + eps) ~ lr * sign(g); rows the batch did not use do not move
    table = torch.nn.Embedding(6, 2, sparse=True)
    with torch.no_grad():
        table.weight.copy_(torch.arange(12.0).view(6, 2))
    before = table.weight.detach().clone()
    opt = LazyAdam(table.parameters(), lr=0.5)
    ids = torch.tensor([1, 3, 1])
    weights = torch.tensor([[1.0, -2.0], [3.0, 0.5], [1.0, -2.0]])
    (table(ids) * weights).sum().backward()  # d/dw row 1 = 2 * [1, -2], row 3 = [3, 0.5]
    assert table.weight.grad.is_sparse
    opt.step()
    after = table.weight.detach()
    torch.testing.assert_close(after[1], before[1] - 0.5 * torch.tensor([1.0, -1.0]), rtol=0, atol=1e-6)
    torch.testing.assert_close(after[3], before[3] - 0.5 * torch.tensor([1.0, 1.0]), rtol=0, atol=1e-6)
    for row in (0, 2, 4, 5):
        assert torch.equal(after[row], before[row])
    state = opt.state[table.weight]
    assert float(state["step"]) == 1.0
    assert torch.equal(state["exp_avg"][0], torch.zeros(2))  # the moments of unused rows stay zero
    torch.testing.assert_close(state["exp_avg"][1], 0.1 * torch.tensor([2.0, -4.0]))
    torch.testing.assert_close(state["exp_avg_sq"][3], 0.001 * torch.tensor([9.0, 0.25]))


def test_sparse_update_equals_dense_adam_when_every_row_is_used():
    # with every row in every batch, lazy Adam is Adam
    torch.manual_seed(1)
    dense = torch.nn.Embedding(4, 3)
    sparse = torch.nn.Embedding(4, 3, sparse=True)
    sparse.load_state_dict(dense.state_dict())
    ref = torch.optim.Adam(dense.parameters(), lr=0.05)
    lazy = LazyAdam(sparse.parameters(), lr=0.05)
    for step in range(4):
        ids = torch.randperm(4, generator=torch.Generator().manual_seed(step)).repeat(2)
        for table, opt in ((dense, ref), (sparse, lazy)):
            opt.zero_grad()
            table(ids).pow(2).sum().backward()
            opt.step()
    torch.testing.assert_close(dense.weight, sparse.weight, rtol=1e-6, atol=1e-7)


def test_build_optimizer_and_its_errors():
    cfg = build_config(overrides=["training.sparse_embeddings=true"]).training
    model = torch.nn.Sequential(torch.nn.Embedding(10, 4), torch.nn.Linear(4, 2))
    opt = build_optimizer(model, cfg)
    assert isinstance(opt, LazyAdam) and not opt.defaults["decoupled"]
    adamw = build_config(overrides=["training.sparse_embeddings=true", "training.optimizer=adamw"]).training
    assert build_optimizer(model, adamw).defaults["decoupled"]
    assert sparse_tables(model) == [model[0]]
    bad = build_config(overrides=["training.sparse_embeddings=true", "training.optimizer=adadelta"]).training
    with pytest.raises(wordconv.ConfigError, match="adam or adamw"):
        build_optimizer(model, bad)
    clip = build_config(overrides=["training.sparse_embeddings=true", "training.grad_clip=1.0"]).training
    with pytest.raises(wordconv.ConfigError, match="grad_clip"):
        build_optimizer(model, clip)


def test_training_with_sparse_embeddings_learns_and_round_trips(tiny_data, tmp_path):
    overrides = FAST + [f"data.test_path={tiny_data['test']}", "training.sparse_embeddings=true", "training.lr=0.01",
                        "training.patience=null"]
    model = wordconv.train(str(tiny_data["train"]), "textcnn", tmp_path / "m", epochs=10, overrides=overrides)
    history = model.artifact.history
    assert history[-1]["train_loss"] < 0.1 < history[0]["train_loss"]  # it fits the 80 sentences
    assert model.metrics["accuracy"] >= 0.8
    # the tables are dense again after training, and a reload predicts the same
    assert not any(t.sparse for t in sparse_tables(model.model))
    texts = ["a good film", "an awful plot", "the story was dull and weak"]
    assert wordconv.load(tmp_path / "m").predict(texts) == model.predict(texts)
