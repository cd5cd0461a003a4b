"""Lazy Adam: sparse word-table gradients, and an Adam step that moves only the rows a batch used.

A word CNN's parameters are nearly all its embedding table (75,000 words x 300 = 22.5 M of the
22.6 M of a distilled student), yet one batch of 50 sentences touches a few hundred rows of it.  Dense
Adam reads and writes the whole table, its gradient and both moment buffers on every step; on a CPU
that memory traffic dominates the step.  With ``training.sparse_embeddings`` the tables produce
sparse gradients (``nn.Embedding.sparse``) and :class:`LazyAdam` updates each used row's moments and
weights the way Adam would, leaving the other rows, and their moments, as they were (the "lazy"
Adam of TensorFlow Addons' ``LazyAdam`` and of ``torch.optim.SparseAdam``).  Rows a batch does not use
therefore coast no further on their momentum: the one way it differs from dense Adam.  Dense
parameters (the filters, the output layer) get exactly Adam's update.

The state has Adam's names (``step``, ``exp_avg``, ``exp_avg_sq``), so resume checkpoints hold it
like any optimizer's.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from wordconv.errors import ConfigError

__all__ = ["LazyAdam", "sparse_tables"]


def sparse_tables(model: nn.Module) -> list[nn.Embedding]:
    """The trainable ``nn.Embedding`` tables of a word model (a pretrained encoder's are left dense)."""
    if hasattr(getattr(model, "encoder", None), "layer_groups"):
        raise ConfigError("training.sparse_embeddings is for word models (textcnn, dpcnn, fasttext, ...); a "
                          "pretrained encoder's embeddings stay dense: unset it")
    return [m for m in model.modules() if isinstance(m, nn.Embedding) and m.weight.requires_grad]


class LazyAdam(torch.optim.Optimizer):
    """Adam (``decoupled`` = AdamW) that updates only the touched rows of parameters with sparse gradients.

    For a dense gradient the update is Adam's: ``m = b1 m + (1 - b1) g``, ``v = b2 v + (1 - b2) g^2``,
    ``p -= lr m / (1 - b1^t) / (sqrt(v / (1 - b2^t)) + eps)``, with L2 weight decay added to ``g``
    (or, decoupled, ``p *= 1 - lr wd``).  For a sparse gradient the same is done to the rows it holds,
    with the parameter's step count ``t`` shared by all its rows (as ``torch.optim.SparseAdam``).
    """

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, decoupled: bool = False):
        if lr <= 0 or eps <= 0 or not (0 <= betas[0] < 1 and 0 <= betas[1] < 1) or weight_decay < 0:
            raise ValueError(f"LazyAdam: invalid lr={lr}, betas={betas}, eps={eps} or weight_decay={weight_decay}")
        super().__init__(params, dict(lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, decoupled=decoupled))

    @torch.no_grad()
    def step(self, closure=None):
        loss = None
        if closure is not None:
            with torch.enable_grad():
                loss = closure()
        for group in self.param_groups:
            lr, (b1, b2), eps, wd = group["lr"], group["betas"], group["eps"], group["weight_decay"]
            for p in group["params"]:
                if p.grad is None:
                    continue
                state = self.state[p]
                if not state:
                    state["step"] = torch.tensor(0.0)
                    state["exp_avg"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                    state["exp_avg_sq"] = torch.zeros_like(p, memory_format=torch.preserve_format)
                state["step"] += 1
                t = float(state["step"])
                step_size = lr / (1 - b1 ** t)
                root_bc2 = math.sqrt(1 - b2 ** t)
                m, v = state["exp_avg"], state["exp_avg_sq"]
                if p.grad.is_sparse:
                    grad = p.grad.coalesce()  # one row per index, duplicates summed
                    rows, g = grad.indices()[0], grad.values()
                    if rows.numel() == 0:
                        continue
                    w = p.index_select(0, rows)
                    if wd and group["decoupled"]:
                        w.mul_(1 - lr * wd)
                    elif wd:
                        g = g.add(w, alpha=wd)
                    m_rows = m.index_select(0, rows).mul_(b1).add_(g, alpha=1 - b1)
                    v_rows = v.index_select(0, rows).mul_(b2).addcmul_(g, g, value=1 - b2)
                    m.index_copy_(0, rows, m_rows)
                    v.index_copy_(0, rows, v_rows)
                    w.addcdiv_(m_rows, v_rows.sqrt().div_(root_bc2).add_(eps), value=-step_size)
                    p.index_copy_(0, rows, w)
                else:
                    g = p.grad
                    if wd and group["decoupled"]:
                        p.mul_(1 - lr * wd)
                    elif wd:
                        g = g.add(p, alpha=wd)
                    m.mul_(b1).add_(g, alpha=1 - b1)
                    v.mul_(b2).addcmul_(g, g, value=1 - b2)
                    p.addcdiv_(m, v.sqrt().div_(root_bc2).add_(eps), value=-step_size)
        return loss
