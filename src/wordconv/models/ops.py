"""Fast building blocks shared by the CNN architectures.

Several 1-D convolutions of different widths over the same input (Kim's 3/4/5-word filters) are
computed as ONE matrix product followed by shifted sums:

    Y = X @ [W_3,0 | W_3,1 | W_3,2 | W_4,0 | ... | W_5,4]      (B, T, E) @ (E, F * sum(widths))
    conv_w[t] = sum_j Y[t + j, block (w, j)]                     (B, T - w + 1, F)

This is exactly ``nn.Conv1d`` (no padding, stride 1) but runs as one large GEMM forward and two
in backward, where the stock CPU convolution backward is ~2x slower on these shapes (bench/).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch


class _ShiftSum(torch.autograd.Function):
    """(B, T, F * sum(w)) tap products -> one (B, T - w + 1, F) conv output per width."""

    @staticmethod
    def forward(ctx, y: torch.Tensor, widths: tuple[int, ...], filters: int):
        ctx.widths, ctx.filters, ctx.shape = widths, filters, y.shape
        steps = y.shape[1]
        outs, off = [], 0
        for w in widths:
            n = max(steps - w + 1, 0)
            acc = y[:, 0:n, off:off + filters].clone()
            for j in range(1, w):
                acc += y[:, j:j + n, off + j * filters:off + (j + 1) * filters]
            outs.append(acc)
            off += w * filters
        return tuple(outs)

    @staticmethod
    def backward(ctx, *grads):
        gy = grads[0].new_zeros(ctx.shape)
        off, f = 0, ctx.filters
        for w, g in zip(ctx.widths, grads):
            if g is not None:
                n = g.shape[1]
                for j in range(w):  # every tap block is written once: plain copies, no accumulation
                    gy[:, j:j + n, off + j * f:off + (j + 1) * f] = g
            off += w * f
        return gy, None, None


def multi_width_conv(x: torch.Tensor, weights: Sequence[torch.Tensor], pad: int = 0) -> list[torch.Tensor]:
    """Conv1d of ``x`` (B, T, E) with each weight (F, E, w); no bias, ``pad`` zeros at both ends.

    Returns one (B, T + 2 * pad - w + 1, F) tensor per weight, equal to
    ``F.conv1d(x.transpose(1, 2), W, padding=pad)`` transposed back.  The padding is applied to
    the GEMM's output, not its input: zero rows of X give zero rows of Y, so the GEMMs (forward
    and backward) only ever touch real positions.  Every weight must have the same F.
    """
    filters = weights[0].shape[0]
    widths = tuple(int(w.shape[2]) for w in weights)
    if x.shape[1] + 2 * pad < max(widths):
        raise ValueError(f"input has {x.shape[1]} steps (+{pad} padding at each end), fewer than the widest "
                         f"filter ({max(widths)}): pad batches to the encoder's min_length")
    # (E, F * sum(w)): tap j of width w becomes the column block W[:, :, j].T
    stacked = torch.cat([w[:, :, j].t() for w in weights for j in range(w.shape[2])], dim=1)
    y = x @ stacked  # (B, T, F * sum(w)): the one big GEMM
    if pad:
        y = torch.nn.functional.pad(y, (0, 0, pad, pad))  # (B, T + 2 * pad, F * sum(w))
    return list(_ShiftSum.apply(y, widths, filters))
