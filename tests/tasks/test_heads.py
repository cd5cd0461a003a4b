"""Every registered encoder carries every pooled-vector task head: build -> forward/loss -> save -> load."""

import pytest
import torch
from safetensors.torch import load_model, save_model

from wordconv.config import build_config
from wordconv.data.batching import pad_batch
from wordconv.models.registry import model_names
from wordconv.pipeline import build_model

TARGETS = {
    "textcat": torch.tensor([0, 1, 1]),
    "multilabel": torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 0.0], [0.0, 1.0, 0.0]]),
    "regression": torch.tensor([0.0, 2.5, 4.0]),
}
LABELS = {"textcat": ["a", "b"], "multilabel": ["a", "b", "c"], "regression": ["score"]}


@pytest.mark.parametrize("task", sorted(TARGETS))
@pytest.mark.parametrize("model_type", model_names("textcat"))
def test_every_encoder_takes_every_head(model_type, task, tmp_path):
    torch.manual_seed(0)
    cfg = build_config({"task": task, "model": {"type": model_type}, "embeddings": {"dim": 16}})
    model = build_model(cfg, 30, LABELS[task])
    ids, _ = pad_batch([[2, 3, 4, 5, 6, 7], [8, 9], [10]], min_length=model.encoder.min_length)  # padded like batches
    out = model(ids=ids, labels=TARGETS[task])
    out["loss"].backward()
    assert torch.isfinite(out["loss"])
    width = {"textcat": (3, 2), "multilabel": (3, 3), "regression": (3,)}[task]
    assert tuple(out["logits"].shape) == width
    for name, buffer in model.named_buffers():  # what the task learns besides weights: non-default values
        if name in ("thresholds", "target_mean", "target_std"):
            buffer.add_(0.125)
    save_model(model, str(tmp_path / "m.safetensors"))
    again = build_model(cfg, 30, LABELS[task])
    load_model(again, str(tmp_path / "m.safetensors"), strict=True)
    model.eval(), again.eval()
    torch.testing.assert_close(again(ids=ids)["logits"], model(ids=ids)["logits"], rtol=0, atol=0)
    for name, buffer in model.named_buffers():
        assert torch.equal(dict(again.named_buffers())[name], buffer), name
