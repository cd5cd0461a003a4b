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
    """(B, T, F * sum(w)) tap products -> one (B, T + 2 pad - w + 1, F) conv output per width.

    Output t of width w sums tap j at input position i = t + j - pad; taps that fall on the padding add
    nothing, so the padding costs no padded copy of the tap products.  Backward writes each gradient
    element once (zeros only where a tap block has rows no output reads: pad < w - 1)."""

    @staticmethod
    def forward(ctx, y: torch.Tensor, widths: tuple[int, ...], filters: int, pad: int):
        ctx.widths, ctx.filters, ctx.pad, ctx.shape = widths, filters, pad, y.shape
        B, T, _ = y.shape
        outs, off = [], 0
        for w in widths:
            L = max(T + 2 * pad - w + 1, 0)
            out = y.new_zeros(B, L, filters)
            for j in range(w):
                t0, t1 = max(0, pad - j), min(L, pad - j + T)  # outputs whose tap j lies on the text
                if t1 > t0:
                    out[:, t0:t1] += y[:, t0 + j - pad:t1 + j - pad, off + j * filters:off + (j + 1) * filters]
            outs.append(out)
            off += w * filters
        return tuple(outs)

    @staticmethod
    def backward(ctx, *grads):
        T, pad, f = ctx.shape[1], ctx.pad, ctx.filters
        full = all(pad >= w - 1 for w in ctx.widths) and all(g is not None for g in grads)
        gy = grads[0].new_empty(ctx.shape) if full else grads[0].new_zeros(ctx.shape)
        off = 0
        for w, g in zip(ctx.widths, grads):
            if g is not None:
                L = g.shape[1]
                for j in range(w):
                    t0, t1 = max(0, pad - j), min(L, pad - j + T)
                    if t1 > t0:
                        gy[:, t0 + j - pad:t1 + j - pad, off + j * f:off + (j + 1) * f] = g[:, t0:t1]
            off += w * f
        return gy, None, None, None


# the first layer folded into one table E @ W (vocabulary x filter taps; ONNX export and TextCNN inference)
# only while the table stays this small (MR TextCNN: 86 MB)
FOLD_LIMIT_BYTES = 512 * 2**20


def _check_steps(steps: int, widths: Sequence[int], pad: int) -> None:
    if steps + 2 * pad < max(widths):
        raise ValueError(f"input has {steps} steps (+{pad} padding at each end), fewer than the widest "
                         f"filter ({max(widths)}): pad batches to the encoder's min_length")


def shift_sum(y: torch.Tensor, widths: Sequence[int], filters: int, pad: int = 0) -> list[torch.Tensor]:
    """The conv outputs of :func:`multi_width_conv` from its tap products ``y`` (B, T, F * sum(widths)),
    e.g. looked up in a folded table ``E @ stacked`` (``TextCNN.fold_first_layer``)."""
    _check_steps(y.shape[1], widths, pad)
    return list(_ShiftSum.apply(y, tuple(widths), filters, pad))


def stack_taps(weights: Sequence[torch.Tensor]) -> torch.Tensor:
    """(E, F * sum(w)), tap-major per width: tap j of width w is the column block W[:, :, j].T."""
    dim = weights[0].shape[1]
    return torch.cat([w.permute(1, 2, 0).reshape(dim, -1) for w in weights], dim=1)


def multi_width_conv(x: torch.Tensor, weights: Sequence[torch.Tensor], pad: int = 0) -> list[torch.Tensor]:
    """Conv1d of ``x`` (B, T, E) with each weight (F, E, w); no bias, ``pad`` zeros at both ends.

    Returns one (B, T + 2 * pad - w + 1, F) tensor per weight, equal to
    ``F.conv1d(x.transpose(1, 2), W, padding=pad)`` transposed back.  The padding is applied in the
    shift-and-add, not to the input: the GEMMs (forward and backward) only ever touch real positions.
    Every weight must have the same F.
    """
    filters = weights[0].shape[0]
    widths = tuple(int(w.shape[2]) for w in weights)
    _check_steps(x.shape[1], widths, pad)
    y = x @ stack_taps(weights)  # (B, T, F * sum(w)): the one big GEMM
    if torch.compiler.is_exporting():  # the form ONNX export's graph rewrites match (wordconv.export)
        return _shift_sum_padded(y, widths, filters, pad)
    return shift_sum(y, widths, filters, pad)


def _shift_sum_padded(y: torch.Tensor, widths: tuple[int, ...], filters: int, pad: int) -> list[torch.Tensor]:
    """:class:`_ShiftSum`'s forward on a zero-padded copy of ``y``: Pad, then one Slice per tap and Adds, a
    graph that the export's rewrites (``push_slices_into_lookup``, ``mask_padding_in_lookup``) recognise."""
    if pad:
        y = torch.nn.functional.pad(y, (0, 0, pad, pad))  # (B, T + 2 pad, F * sum(w))
    steps, outs, off = y.shape[1], [], 0
    for w in widths:
        n = max(steps - w + 1, 0)
        acc = y[:, 0:n, off:off + filters]
        for j in range(1, w):
            acc = acc + y[:, j:j + n, off + j * filters:off + (j + 1) * filters]
        outs.append(acc)
        off += w * filters
    return outs
