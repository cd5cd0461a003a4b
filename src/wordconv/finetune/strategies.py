"""Fine-tuning strategies as parameter groups and an epoch callback, not a fork of the loop.

An encoder that exposes ``layer_groups()`` (bottom first: embeddings, layer 1, ..., layer L) can
be fine-tuned by strategy (``model.strategy``):

    frozen    no encoder weight trains; the head learns on fixed features (feature extraction)
    full      every weight trains
    top-k     the top ``top_k`` layer groups train, the rest stay as pretrained
    gradual   ULMFiT's gradual unfreezing: epoch e trains the top e groups (the head always trains)

and with discriminative learning rates (``model.lr_decay``): the top group gets ``training.lr``,
each group below it the rate of the group above times ``lr_decay`` (<= 1, Sun et al. 2019: 0.95)
or divided by it (> 1, ULMFiT: 2.6).  Everything that is not in the pretrained model (the task
head, a CNN pooling head) is the head group, at ``model.head_lr``.

:func:`optimizer_groups` gives the optimizer its parameter groups (with a ``base_lr`` each, which
the trainer's schedule scales); :class:`FreezeSchedule` is the trainer callback that sets
``requires_grad`` at the start of every epoch.  Frozen weights get no gradient, so the optimizer
leaves them bit-identical.
"""

from __future__ import annotations

from torch import nn

from wordconv.errors import ConfigError

FROZEN_HEAD_LR = 1e-3  # a head on frozen features learns at a CNN's rate, not a fine-tuning one


def open_groups(strategy: str, n_groups: int, epoch: int, top_k: int = 2) -> int:
    """How many of the ``n_groups`` encoder groups (counted from the top) train in ``epoch`` (1-based)."""
    if strategy == "frozen":
        return 0
    if strategy == "full":
        return n_groups
    if strategy == "top-k":
        return min(top_k, n_groups)
    if strategy == "gradual":
        return min(max(epoch, 1), n_groups)
    raise ConfigError(f"model.strategy: unknown strategy {strategy!r}; use frozen, full, top-k or gradual")


def _params(model: nn.Module):
    encoder = getattr(model, "encoder", None)
    groups = encoder.layer_groups() if hasattr(encoder, "layer_groups") else None
    if groups is None:
        return None, [p for p in model.parameters() if p.requires_grad]
    inside = {id(p) for g in groups for p in g}
    head = [p for p in model.parameters() if id(p) not in inside]
    return groups, head


def _word_model_groups(model: nn.Module, params: list, lr: float) -> list[dict]:
    """One group, or two when the word vectors train at their own rate (``embeddings.lr_scale`` < 1)."""
    from wordconv.models.base import WordEmbedding

    tables = [m for m in model.modules() if isinstance(m, WordEmbedding) and m.lr_scale != 1.0]
    vectors = {id(p) for m in tables for p in m.parameters()}
    out = [{"params": [p for p in params if id(p) not in vectors], "lr": lr, "base_lr": lr, "name": "all"}]
    if tables:  # one config, so one scale
        scale = tables[0].lr_scale
        out.append({"params": [p for p in params if id(p) in vectors], "lr": lr * scale, "base_lr": lr * scale,
                    "name": f"word vectors (x{scale:g})"})
    return [g for g in out if g["params"]]


def optimizer_groups(model: nn.Module, lr: float) -> list[dict]:
    """Parameter groups for the optimizer, each with ``lr``, ``base_lr`` and a ``name``.

    A model without layer groups (the word CNNs) gets one group of its trainable parameters.
    Groups of weights that never train under the strategy are left out.
    """
    groups, head = _params(model)
    if groups is None:
        return _word_model_groups(model, head, lr)
    p = model.encoder.params
    n = len(groups)
    most = max(open_groups(p.strategy, n, epoch, p.top_k) for epoch in (1, n))  # ever open
    head_lr = p.head_lr if p.head_lr is not None else (FROZEN_HEAD_LR if most == 0 else lr)
    out = [{"params": head, "lr": head_lr, "base_lr": head_lr, "name": "head"}]
    decay = p.lr_decay
    factor = 1.0 if decay is None else (decay if decay <= 1 else 1.0 / decay)
    for depth in range(most):  # 0 = the top group
        index = n - 1 - depth
        group_lr = lr * factor ** depth
        name = "embeddings" if index == 0 else f"layer {index}"
        # BERT's recipe: no weight decay on biases and LayerNorm weights (vectors)
        matrices = [q for q in groups[index] if q.ndim > 1]
        vectors = [q for q in groups[index] if q.ndim <= 1]
        out.append({"params": matrices, "lr": group_lr, "base_lr": group_lr, "name": name})
        out.append({"params": vectors, "lr": group_lr, "base_lr": group_lr, "name": f"{name} (no decay)",
                    "weight_decay": 0.0})
    return [g for g in out if g["params"]]


def apply_strategy(encoder: nn.Module, epoch: int) -> None:
    """Set ``requires_grad`` of a layered encoder's weights as its strategy says for ``epoch``."""
    groups = encoder.layer_groups()
    p = encoder.params
    k = open_groups(p.strategy, len(groups), epoch, p.top_k)
    for i, group in enumerate(groups):
        for param in group:
            param.requires_grad_(i >= len(groups) - k)


class FreezeSchedule:
    """Trainer callback: at the start of each epoch, open the encoder groups the strategy says."""

    def __init__(self, model: nn.Module):
        self.model = model
        self.groups, _ = _params(model)

    def on_epoch_start(self, epoch: int) -> None:
        if self.groups is not None:
            apply_strategy(self.model.encoder, epoch)

    def describe(self, epoch: int) -> str:
        if self.groups is None:
            return "all weights"
        p = self.model.encoder.params
        n = len(self.groups)
        k = open_groups(p.strategy, n, epoch, p.top_k)
        return f"{k} of {n} encoder groups" if k < n else "all encoder groups"
