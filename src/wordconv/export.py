"""ONNX export of a text classifier, and :class:`OnnxPredictor`, which serves it with ONNX Runtime.

    wordconv export DIR --format onnx [--quantize int8]

    DIR/model.onnx        token ids (batch, seq) int64 -> logits (batch, labels) float32; both axes dynamic
    DIR/model.int8.onnx   the same with int8 weights (ONNX Runtime dynamic quantization), with --quantize int8
    DIR/onnx.json         opset, inputs, outputs, files and their sha256, the sha256 of the model.safetensors
                          they came from, how texts become ids, and the parity check's result

The graph is the model's own forward pass (``torch.onnx.export``, the torch.export-based exporter) from
the padded id batch :class:`~wordconv.inference.Predictor` builds to the logits the task head computes.
Lengths need no input of their own: every encoder reads them from the padding in ``ids`` (0 for word
models, -1 for a pretrained encoder's subword ids), so one batch padded to any length gives the same
logits.  Texts become ids exactly as in ``Predictor``: the saved preprocessing and vocabulary (word
models) or the encoder's own subword tokenizer and truncation (``model.type: pretrained``).

A few changes make the graph exportable, or fast, without changing what it computes:

* DPCNN stops downsampling once every text of a batch is one position long (a data-dependent exit)
  and rounds odd lengths up at each pooling (nested floor divisions that make torch.export crawl):
  the exported graph runs a fixed number of steps (``model.max_blocks``, or enough for
  ``preprocessing.max_length`` words) on batches padded to a multiple of 2^steps (``seq_multiple`` in
  onnx.json; :meth:`OnnxPredictor.logits` pads), where each pooling halves the length exactly.  Padding
  never changes a text's result, and a step over a one-position text changes nothing.
* The stacked CNN's ``MaxPool1d`` would fix the sequence length at export: it becomes a reshape and a
  max over the same windows.  K-max pooling's stable sort becomes ONNX TopK (ties: lower index first).
* Graph rewrites after export, each exact up to float rounding: weight-only subgraphs are folded
  whatever their size; TextCNN's embedding lookup followed by the product with its stacked filters
  (``models/ops.py``) becomes one lookup in the product table ``E @ W`` (:func:`fold_embedding_matmul`,
  while the table stays under ``FOLD_LIMIT_BYTES``; MR: 86 MB), whose filter blocks are then looked up
  directly (:func:`push_slices_into_lookup`); consecutive slices along different axes become one
  (:func:`merge_slices`).  A sentence then costs a few small lookups and additions, not a GEMM.  Last
  (after the int8 model, if any, is quantized: int8 has no -inf), the -inf put on windows over padding
  before max pooling comes from a -inf row looked up there instead of a pass over the summed maps
  (:func:`mask_padding_in_lookup`, bit for bit; ``masks_in_lookups`` in onnx.json).

Serving (:class:`OnnxPredictor`): texts become ids through ids remembered per whitespace-separated piece
(:class:`_PieceWordIds`, the same ids as the saved preprocessing), are padded with numpy in the batches
``Predictor`` makes, and the task's softmax runs once on all the logits; ONNX Runtime's idle threads sleep
instead of spinning.  MR TextCNN on 2 cores: ~10k -> ~25k texts/s end to end.

Every export is checked before anything is written: the ONNX logits must match PyTorch's within
``PARITY_TOLERANCE`` and give the same labels (``check_parity``), on probe texts of 1 to 120 words, in
batches of 1 and of all of them.  Files are written to temporary names and renamed into place.

Supported: text classification (task ``textcat``) with every word-level encoder (textcnn, stacked,
dpcnn, cnn-attention, fasttext) and with a pretrained Hugging Face encoder (any pooling; truncation
other than ``window``).  Multi-label, regression, NER and QA models raise :class:`ModelError`.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import itertools
import logging
import math
import shutil
import time
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, Optional

import numpy as np
import torch
import typer
from rich.console import Console
from rich.markup import escape
from torch import nn

from wordconv.config import Config, build_config
from wordconv.data.vocab import Vocab
from wordconv.errors import ConfigError, ModelError
from wordconv.inference import Prediction, Predictor
from wordconv.data.download import sha256_file
from wordconv.modeldir import REQUIRED_FILES, atomic_path, read_json, write_json
from wordconv.models.base import EncoderOutput
from wordconv.models.ops import FOLD_LIMIT_BYTES  # fold Embedding -> MatMul while the table is this small
from wordconv.userio import user_errors

if TYPE_CHECKING:
    import onnx
    import onnxruntime

__all__ = ["FORMATS", "QUANTIZATIONS", "ExportResult", "OnnxPredictor", "ParityReport", "check_exportable",
           "check_format", "check_parity", "export_command", "export_onnx", "export_onnx_detailed",
           "fold_embedding_matmul", "merge_slices", "probe_texts", "push_slices_into_lookup"]

FORMATS = ("onnx",)
QUANTIZATIONS = ("int8",)
ONNX_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"
MANIFEST = "onnx.json"
TASKS = ("textcat",)
WORD_MODELS = ("textcnn", "stacked", "dpcnn", "cnn-attention", "fasttext")
MODELS = (*WORD_MODELS, "pretrained")
# fp32 logits of the same batch from PyTorch and ONNX Runtime differ by float rounding only (~1e-6)
PARITY_TOLERANCE = 1e-4
INSTALL_HINT = "pip install 'wordconv[export]' (onnx, onnxscript and onnxruntime)"

# sentences of movie-review length and shape, for the parity check after every export
PROBE_SENTENCES = (
    "a gripping , funny and moving film .",
    "the plot is dull and the actors seem bored .",
    "good",
    "it 's not a masterpiece , but it never stops being entertaining and the cast clearly had fun .",
    "an overlong , tedious mess that wastes a fine cast on a script nobody seems to have read twice .",
)


# ------------------------------------------------------------------------------------------------
# graph: what is exported


class _FloorMaxPool1d(nn.Module):
    """``nn.MaxPool1d(p)`` (stride p, no padding, the last partial window dropped) as reshape + max,
    which torch.export keeps symbolic in the length; (B, C, L) -> (B, C, L // p)."""

    def __init__(self, size: int):
        super().__init__()
        self.size = size

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, steps = x.shape
        n = steps // self.size
        return x[:, :, : n * self.size].reshape(b, c, n, self.size).amax(dim=3)  # (B, C, L // p)


def _maxpool3_stride2_even(x: torch.Tensor) -> torch.Tensor:
    """``F.max_pool1d(kernel 3, stride 2, padding 1)`` over the positions of (B, L, F), L even -> (B, L/2, F):
    output i is max(x[2i-1], x[2i], x[2i+1]) = max(pair i, the second of pair i-1).  A reshape, so the
    exported length stays a plain multiple of the input's (max is exact either way)."""
    b, steps, f = x.shape
    pairs = x.reshape(b, steps // 2, 2, f)  # (B, L/2, 2, F)
    before = nn.functional.pad(pairs[:, :-1, 1], (0, 0, 1, 0), value=float("-inf"))  # (B, L/2, F): x[2i-1]
    return torch.maximum(pairs.amax(dim=2), before)


class _FixedDepthDPCNN(nn.Module):
    """:class:`~wordconv.models.dpcnn.DPCNN` run for a fixed number of downsampling steps, on batches whose
    length is a multiple of ``2 ** steps``.

    ``DPCNN.forward`` stops once every text of the batch is one position long (a data-dependent exit
    torch.export cannot trace), and rounds odd lengths up at each pooling (``ceil(L / 2)``: nested
    floor divisions that make torch.export crawl).  A text one position long skips every block
    anyway, and padding never changes a text's result, so running every step on a batch padded to a
    multiple of ``2 ** steps`` (the caller pads: ``seq_multiple`` in onnx.json) gives the same pooled
    vector; this is DPCNN.forward with the exit removed and halving made exact."""

    def __init__(self, encoder: nn.Module, steps: int):
        super().__init__()
        self.inner = encoder
        self.steps = steps
        self.output_dim, self.min_length = encoder.output_dim, encoder.min_length

    def forward(self, ids: torch.Tensor) -> EncoderOutput:
        from wordconv.models.dpcnn import _halve, _mask, same_conv

        e = self.inner
        lengths = (ids != e.pad_id).sum(dim=1).clamp(min=1)  # (B,)
        mask = _mask(lengths, ids.shape[1])  # (B, T, 1)
        x = e.embedding(ids) * mask  # (B, T, E)
        x = same_conv(x, e.region, mask)  # (B, T, F)
        x = e.first(x, mask)
        for depth in range(self.steps):
            active = lengths > 1  # (B,)
            px = _maxpool3_stride2_even(x.masked_fill(~mask, float("-inf")))  # (B, L/2, F)
            new_lengths = torch.where(active, _halve(lengths), lengths)
            new_mask = _mask(new_lengths, px.shape[1])
            px = px.masked_fill(~new_mask, 0.0)
            block = e.blocks[0 if e.max_blocks is None else depth]
            y = block(px, new_mask)
            x = torch.where(active[:, None, None], y, x[:, : y.shape[1]])
            lengths, mask = new_lengths, new_mask
        return EncoderOutput(states=None, mask=None, pooled=x.masked_fill(~mask, float("-inf")).amax(dim=1))


class _LogitsGraph(nn.Module):
    """ids (B, T) -> logits (B, C): the classifier's forward in eval mode, as Predictor runs it.

    ``extra_pad`` padding columns are appended first where a shape test in the model (k-max pooling's
    "fewer windows than k") would otherwise fix the sequence length; padding never changes the logits."""

    def __init__(self, model: nn.Module, pad_id: int, extra_pad: int = 0):
        super().__init__()
        self.model, self.pad_id, self.extra_pad = model, pad_id, extra_pad

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        if self.extra_pad:
            ids = nn.functional.pad(ids, (0, self.extra_pad), value=self.pad_id)  # (B, T + extra)
        return self.model(ids=ids)["logits"]  # (B, C)


def _dpcnn_steps(config: Config, encoder: nn.Module) -> int:
    """Downsampling steps of the exported DPCNN: ``max_blocks``, or (max_blocks null: as deep as the longest
    text needs) enough for ``preprocessing.max_length`` words; batches are padded to a multiple of 2^steps,
    so an open-ended DPCNN with max_length 400 pads every batch to 512 positions."""
    if encoder.max_blocks is not None:
        return encoder.max_blocks
    return max(1, math.ceil(math.log2(config.preprocessing.max_length)))


class _OneTable(nn.Module):
    """A :class:`~wordconv.models.base.WordEmbedding` in eval mode as one lookup table: row i is what the
    embedding gives for id i.  Pretrained vectors with extra words (or two channels) are two lookups joined
    by a ``Where`` (or a ``Concat``); as one table the export's :func:`fold_embedding_matmul` can fold the
    first layer into it."""

    def __init__(self, embedding: nn.Module):
        super().__init__()
        rows = embedding.n_train + embedding.n_extra
        was_training = embedding.training
        with torch.no_grad():
            self.register_buffer("weight", embedding.eval()(torch.arange(rows)[None])[0].clone())  # (V, E)
        embedding.train(was_training)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return nn.functional.embedding(ids, self.weight)


@contextlib.contextmanager
def _one_table_embeddings(model: nn.Module) -> Iterator[None]:
    """Swap every two-table word embedding of ``model`` for its :class:`_OneTable`; restored after."""
    from wordconv.models.base import WordEmbedding

    swapped = []
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, WordEmbedding) and (child.fixed is not None or child.mode == "multichannel"):
                swapped.append((parent, name, child))
                setattr(parent, name, _OneTable(child))
    try:
        yield
    finally:
        for parent, name, child in swapped:
            setattr(parent, name, child)


@contextlib.contextmanager
def _exportable(model: nn.Module, config: Config) -> Iterator[None]:
    """Swap in the export-friendly equivalents of a DPCNN encoder and a stacked CNN's pooling, and one lookup
    table for a two-table word embedding; restored after."""
    from wordconv.models.dpcnn import DPCNN
    from wordconv.models.stacked import StackedCNN

    encoder = model.encoder
    pool = getattr(encoder, "pool", None)
    try:
        if isinstance(encoder, DPCNN):
            model.encoder = _FixedDepthDPCNN(encoder, _dpcnn_steps(config, encoder))
        elif isinstance(encoder, StackedCNN):
            encoder.pool = _FloorMaxPool1d(encoder.p)
        with _one_table_embeddings(model):
            yield
    finally:
        model.encoder = encoder
        if isinstance(encoder, StackedCNN):
            encoder.pool = pool


def _extra_pad(config: Config, encoder: nn.Module) -> int:
    """Padding columns so that k-max pooling always has at least k windows (no shape branch at export)."""
    m = config.model
    if m.type != "textcnn" or m.pooling != "kmax":
        return 0
    fewest = encoder.min_length + 2 * encoder.pad - max(m.filter_widths) + 1  # windows of the shortest batch
    return max(0, m.k - fewest)


def _sort_stable(self, stable: bool | None = None, dim: int = -1, descending: bool = False):
    """``aten.sort.stable`` as ONNX TopK over the whole axis: TopK breaks ties by the lower index, which
    is what a stable sort does (k-max pooling keeps the earliest of equal windows)."""
    from onnxscript import opset18 as op

    dim = dim % len(self.shape)
    size = op.Reshape(op.Gather(op.Shape(self), dim, axis=0), op.Constant(value_ints=[1]))
    return op.TopK(self, size, axis=dim, largest=descending, sorted=True)


# ------------------------------------------------------------------------------------------------
# graph rewrite


def fold_embedding_matmul(model: onnx.ModelProto, limit_bytes: int = FOLD_LIMIT_BYTES) -> int:
    """Rewrite ``Gather(E, ids) -> MatMul(., W)`` (E, W constant) into ``Gather(E @ W, ids)``.

    Row i of ``E @ W`` is row i of E times W, so the result is the same up to float rounding; the
    product is computed in float64.  Only where the lookup feeds nothing but that product, and the
    folded table has at most ``limit_bytes``.  Returns how many pairs were folded (in place)."""
    from onnx import numpy_helper

    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    graph_outputs = {o.name for o in graph.output}
    folded = 0
    for gather in list(graph.node):
        if gather.op_type != "Gather" or gather.input[0] not in inits:
            continue
        if any(a.name == "axis" and a.i != 0 for a in gather.attribute):
            continue
        out = gather.output[0]
        users = [n for n in graph.node if out in n.input]
        if out in graph_outputs or len(users) != 1:
            continue
        matmul = users[0]
        if matmul.op_type != "MatMul" or matmul.input[0] != out or matmul.input[1] not in inits:
            continue
        table = numpy_helper.to_array(inits[gather.input[0]])
        weight = numpy_helper.to_array(inits[matmul.input[1]])
        if table.ndim != 2 or weight.ndim != 2 or table.dtype != np.float32 or weight.dtype != np.float32:
            continue
        if table.shape[0] * weight.shape[1] * 4 > limit_bytes:
            continue
        name = f"{gather.input[0]}__folded__{matmul.input[1]}"
        product = (table.astype(np.float64) @ weight.astype(np.float64)).astype(np.float32)  # (V, W_out)
        graph.initializer.append(numpy_helper.from_array(product, name))
        gather.input[0] = name
        gather.output[0] = matmul.output[0]
        graph.node.remove(matmul)
        for stale in [v for v in graph.value_info if v.name == out]:
            graph.value_info.remove(stale)
        folded += 1
    _drop_unused_initializers(graph)
    return folded


def _drop_unused_initializers(graph) -> None:
    """Remove the weights no node reads any more (and that are not graph outputs) after a rewrite."""
    used = {i for n in graph.node for i in n.input} | {o.name for o in graph.output}
    for t in [t for t in graph.initializer if t.name not in used]:
        graph.initializer.remove(t)


def push_slices_into_lookup(model: onnx.ModelProto, limit_bytes: int = FOLD_LIMIT_BYTES) -> int:
    """Rewrite ``Slice_cols(Slice_rows([Pad](Gather(T, I))))`` into ``Gather(T[:, cols], Slice_rows([Pad](I)))``, in
    place, for a constant table T; returns how many lookups were rewritten.

    Slicing the rows of a lookup's output equals looking up the sliced indices, slicing its columns equals
    looking up in the column slice of the table, and zero padding equals padding the indices with the id
    of an all-zero row (the padding word's): the result is the same, bit for bit.  A folded TextCNN
    (``fold_embedding_matmul``) looks up (B, T, F * 12) tap products, pads them and slices out twelve
    (B, T', F) blocks; after this rewrite it looks up the twelve blocks directly and never builds the wide
    tensor.  Applies only when every use of the lookup is such a pair of slices (after an optional zero
    pad of the index axes), with constant column bounds and step 1."""
    from onnx import helper, numpy_helper

    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    graph_outputs = {o.name for o in graph.output}
    ranks = {v.name: len(v.type.tensor_type.shape.dim) for v in [*graph.input, *graph.value_info]
             if v.type.HasField("tensor_type") and v.type.tensor_type.HasField("shape")}

    def const(name: str):
        return numpy_helper.to_array(inits[name]) if name and name in inits else None

    def arg(node, i: int) -> str:
        return node.input[i] if len(node.input) > i else ""

    def slice_pair(rows, users: dict, out_rank: int):
        """(rows, cols, start, end) when ``rows`` slices index axes only and its one user slices the columns."""
        if rows.op_type != "Slice" or rows.output[0] in graph_outputs or len(users.get(rows.output[0], [])) != 1:
            return None
        cols = users[rows.output[0]][0]
        if cols.op_type != "Slice" or cols.output[0] in graph_outputs:
            return None
        axes_rows, axes_cols = const(arg(rows, 3)), const(arg(cols, 3))
        starts, ends, steps = const(arg(cols, 1)), const(arg(cols, 2)), const(arg(cols, 4))
        if axes_rows is None or axes_cols is None or starts is None or ends is None:
            return None
        if axes_cols.tolist() not in ([out_rank - 1], [-1]) or (steps is not None and steps.tolist() != [1]):
            return None
        if any(a < 0 or a >= out_rank - 1 for a in axes_rows.tolist()):
            return None
        return rows, cols, int(starts[0]), int(ends[0])

    rewritten = 0
    for gather in list(graph.node):
        if gather.op_type != "Gather" or gather.input[0] not in inits or gather.output[0] in graph_outputs:
            continue
        if any(a.name == "axis" and a.i != 0 for a in gather.attribute) or gather.input[1] not in ranks:
            continue
        table = const(gather.input[0])
        out_rank = ranks[gather.input[1]] + 1
        if table.ndim != 2:
            continue
        users: dict[str, list] = {}
        for n in graph.node:
            for i in n.input:
                users.setdefault(i, []).append(n)
        heads = users.get(gather.output[0], [])
        pad = zero_row = None
        if len(heads) == 1 and heads[0].op_type == "Pad":
            pad = heads[0]
            pads, value = const(arg(pad, 1)), const(arg(pad, 2))
            mode = next((a.s for a in pad.attribute if a.name == "mode"), b"constant")
            zero_rows = np.flatnonzero(~table.any(axis=1))
            if (pads is None or len(pads) != 2 * out_rank or pads[out_rank - 1] or pads[-1] or mode != b"constant"
                    or arg(pad, 3) or (arg(pad, 2) and (value is None or value.any())) or not len(zero_rows)
                    or pad.output[0] in graph_outputs):
                continue
            zero_row = int(zero_rows[0])
            heads = users.get(pad.output[0], [])
        pairs = [slice_pair(rows, users, out_rank) for rows in heads]
        if not pairs or any(pair is None for pair in pairs):
            continue
        blocks = {(a, b): np.ascontiguousarray(table[:, a:b]) for _, _, a, b in pairs}
        if sum(block.nbytes for block in blocks.values()) > limit_bytes:
            continue
        names = {}
        for (a, b), block in blocks.items():
            names[(a, b)] = f"{gather.input[0]}__cols_{a}_{b}"
            graph.initializer.append(numpy_helper.from_array(block, names[(a, b)]))
        ids = gather.input[1]
        at = list(graph.node).index(gather)
        if pad is not None:  # pad the indices with a zero row's id instead of padding the looked-up rows
            pads = const(arg(pad, 1))
            ids_pads = np.concatenate([pads[: out_rank - 1], pads[out_rank: 2 * out_rank - 1]]).astype(np.int64)
            padded = f"{gather.output[0]}__ids_padded"
            graph.initializer.append(numpy_helper.from_array(ids_pads, f"{padded}_pads"))
            graph.initializer.append(numpy_helper.from_array(np.asarray(zero_row, dtype=np.int64), f"{padded}_value"))
            graph.node.insert(at, helper.make_node("Pad", [ids, f"{padded}_pads", f"{padded}_value"], [padded],
                                                   name=padded))
            ids = padded
        for rows, cols, a, b in pairs:  # each pair becomes a slice of the ids and a lookup, where it stood
            picked = f"{cols.output[0]}__ids"
            where = list(graph.node).index(rows)
            graph.node.insert(where, helper.make_node("Slice", [ids, *rows.input[1:]], [picked], name=picked))
            graph.node.insert(where + 1, helper.make_node("Gather", [names[(a, b)], picked], [cols.output[0]],
                                                          axis=0, name=f"{picked}_gather"))
            graph.node.remove(rows)
            graph.node.remove(cols)
        stale = {gather.output[0], *(p.output[0] for p in [pad] if p is not None),
                 *(r.output[0] for r, _, _, _ in pairs)}
        if pad is not None:
            graph.node.remove(pad)
        graph.node.remove(gather)
        for v in [v for v in graph.value_info if v.name in stale]:
            graph.value_info.remove(v)
        rewritten += 1
    _drop_unused_initializers(graph)
    return rewritten


def _joined_slice_input(graph, first, second, i: int, default: list[int], name: str) -> tuple[str, list]:
    """Slice input ``i`` (starts, ends or steps) of ``first`` followed by ``second``'s: a new initializer when
    both are constant (or absent: ``default``), else a Concat node (returned, to be inserted)."""
    from onnx import helper, numpy_helper

    inits = {t.name: t for t in graph.initializer}
    n_first, n_second = len(numpy_helper.to_array(inits[first.input[3]])), len(numpy_helper.to_array(
        inits[second.input[3]]))
    refs, values = [], []
    for node, n in ((first, n_first), (second, n_second)):
        ref = node.input[i] if len(node.input) > i else ""
        refs.append(ref)
        values.append(numpy_helper.to_array(inits[ref]).tolist() if ref in inits else None if ref else default[:n])
    if values[0] is not None and values[1] is not None:
        graph.initializer.append(numpy_helper.from_array(np.asarray(values[0] + values[1], dtype=np.int64), name))
        return name, []
    parts = []
    for k, (ref, value) in enumerate(zip(refs, values)):
        if not ref:  # absent (steps): its default, as a constant
            ref = f"{name}_{k}"
            graph.initializer.append(numpy_helper.from_array(np.asarray(value, dtype=np.int64), ref))
        parts.append(ref)
    return name, [helper.make_node("Concat", parts, [name], axis=0, name=f"{name}_concat")]


def merge_slices(model: onnx.ModelProto) -> int:
    """Rewrite ``Slice(Slice(X, axes a), axes b)`` (a, b constant, disjoint, non-negative) into one ``Slice(X,
    axes a + b)``, in place; returns how many pairs were merged.

    Slicing along different axes commutes, so the result is the same; but the first Slice of the pair
    copies whole rows it only needs a slice of (the exported shifted sums of ``models/ops.py`` slice the
    (B, T, F * sum(widths)) tap products by position, then by filter block)."""
    from onnx import helper, numpy_helper

    graph = model.graph
    inits = {t.name: t for t in graph.initializer}
    graph_outputs = {o.name for o in graph.output}

    def axes(node) -> list[int] | None:
        name = node.input[3] if len(node.input) > 3 else ""
        return numpy_helper.to_array(inits[name]).tolist() if name in inits else None

    merged = 0
    nodes = list(graph.node)
    producers = {o: n for n in nodes for o in n.output}
    uses: dict[str, int] = {}
    for n in nodes:
        for i in n.input:
            uses[i] = uses.get(i, 0) + 1
    for second in nodes:
        if second.op_type != "Slice" or second.domain not in ("", "ai.onnx"):
            continue
        first = producers.get(second.input[0])
        if first is None or first.op_type != "Slice" or first not in graph.node:
            continue
        if uses.get(first.output[0], 0) != 1 or first.output[0] in graph_outputs:
            continue
        axes_a, axes_b = axes(first), axes(second)
        if axes_a is None or axes_b is None or min(axes_a + axes_b) < 0 or set(axes_a) & set(axes_b):
            continue
        tag = f"{first.output[0]}__merged"
        ones = [1] * (len(axes_a) + len(axes_b))
        starts, concat_starts = _joined_slice_input(graph, first, second, 1, [], f"{tag}_starts")
        ends, concat_ends = _joined_slice_input(graph, first, second, 2, [], f"{tag}_ends")
        steps, concat_steps = _joined_slice_input(graph, first, second, 4, ones, f"{tag}_steps")
        graph.initializer.append(numpy_helper.from_array(np.asarray(axes_a + axes_b, dtype=np.int64), f"{tag}_axes"))
        inits = {t.name: t for t in graph.initializer}
        one = helper.make_node("Slice", [first.input[0], starts, ends, f"{tag}_axes", steps], [second.output[0]],
                               name=f"{tag}_slice")
        at = list(graph.node).index(second)
        for k, node in enumerate([*concat_starts, *concat_ends, *concat_steps, one]):
            graph.node.insert(at + k, node)
        graph.node.remove(second)
        graph.node.remove(first)
        for stale in [v for v in graph.value_info if v.name == first.output[0]]:
            graph.value_info.remove(stale)
        merged += 1
    return merged


def _dims(value) -> list | None:
    """The shape of a value_info entry as dim values and dim names; None where a dimension (or the shape) is unknown."""
    if not value.type.HasField("tensor_type") or not value.type.tensor_type.HasField("shape"):
        return None
    dims = [d.dim_value if d.HasField("dim_value") else d.dim_param if d.HasField("dim_param") else None
            for d in value.type.tensor_type.shape.dim]
    return None if None in dims else dims


def _toposort(graph) -> None:
    """Reorder the nodes so that each comes after the producers of its inputs (stable otherwise), in place."""
    ready = {i.name for i in graph.input} | {t.name for t in graph.initializer} | {""}
    pending, ordered = list(graph.node), []
    while pending:
        waiting = []
        for node in pending:
            if all(i in ready for i in node.input):
                ordered.append(node)
                ready.update(node.output)
            else:
                waiting.append(node)
        if len(waiting) == len(pending):
            raise ModelError(f"the rewritten ONNX graph has a cycle at {waiting[0].name!r}: report this")
        pending = waiting
    del graph.node[:]
    graph.node.extend(ordered)


def mask_padding_in_lookup(model: onnx.ModelProto) -> int:
    """Rewrite ``Where(pad, -inf, Gather(T, I) + ...)`` into ``Gather(T', Where(pad', n, I)) + ...``, in place, where
    T' is the constant table T with an extra row n of -inf and pad' is the (B, L, 1) mask pad as (B, L); returns how
    many Where nodes were removed.

    A folded TextCNN (:func:`fold_embedding_matmul`, :func:`push_slices_into_lookup`) sums a few lookups per filter
    width, then sets the windows over padding to -inf before max pooling: a pass over the whole (B, L, F) maps for
    what the choice of one looked-up row per window does as well (MR, 1 thread, graph alone: ~19k -> ~35k
    texts/s).  ``-inf + x == -inf`` for every finite x, and every other window adds the same numbers in
    the same order, so the maps are the same bit for bit.  Applies only where the value_info shapes show no
    broadcasting (the mask has the maps' shape with a last axis of 1; every term of the sum has the maps' shape)
    and every term is a lookup in a finite constant float table, used once.  An int8 model must be quantized
    before this rewrite: a -inf row has no int8 scale."""
    from onnx import AttributeProto, TensorProto, helper, numpy_helper

    graph = model.graph
    opset = next((o.version for o in model.opset_import if o.domain in ("", "ai.onnx")), 0)
    if opset < 13 or any(a.type in (AttributeProto.GRAPH, AttributeProto.GRAPHS)
                         for n in graph.node for a in n.attribute):
        return 0  # Squeeze takes its axes as an input from opset 13; subgraphs would hide uses from _toposort
    inits = {t.name: t for t in graph.initializer}
    graph_outputs = {o.name for o in graph.output}
    infos = {v.name: v for v in [*graph.input, *graph.value_info, *graph.output]}
    shapes = {name: _dims(v) for name, v in infos.items()}
    producers = {o: n for n in graph.node for o in n.output}
    uses: dict[str, int] = {}
    for n in graph.node:
        for i in n.input:
            uses[i] = uses.get(i, 0) + 1

    def elem_type(name: str) -> int | None:
        """The element type of ``name``, through the ops that keep their first input's (the ids path: Pad, Slice)."""
        for _ in range(16):
            if name in infos and infos[name].type.tensor_type.elem_type:
                return infos[name].type.tensor_type.elem_type
            if name in inits:
                return inits[name].data_type
            node = producers.get(name)
            if node is None or node.op_type not in ("Pad", "Slice", "Reshape", "Squeeze", "Unsqueeze", "Identity"):
                return None
            name = node.input[0]
        return None

    def terms(root: str) -> tuple[list[str], set[str]] | None:
        """The summands of the Add tree computing ``root``, in order, and every tensor of the tree; None if the tree
        broadcasts or is shared."""
        shape, out, seen, stack = shapes.get(root), [], set(), [root]
        while stack:
            name = stack.pop()
            seen.add(name)
            if shapes.get(name) != shape or name in graph_outputs:
                return None
            node = producers.get(name)
            if node is not None and node.op_type == "Add" and (name == root or uses.get(name) == 1):
                stack.extend(reversed(node.input))
            else:
                out.append(name)
        return out, seen

    def depends_on(name: str, tensors: set[str]) -> bool:
        """Whether ``name`` is computed from any of ``tensors`` (then the lookup cannot read it: a cycle)."""
        stack, seen = [name], set()
        while stack:
            name = stack.pop()
            if name in tensors:
                return True
            if name not in seen and name in producers:
                seen.add(name)
                stack.extend(producers[name].input)
        return False

    tables: dict[str, tuple[str, int]] = {}  # table -> (its copy with a -inf row, that row's index)
    removed = 0
    for where in [n for n in graph.node if n.op_type == "Where"]:
        cond, fill, maps = where.input
        value = numpy_helper.to_array(inits[fill]) if fill in inits else None
        shape = shapes.get(maps)
        if (value is None or value.size != 1 or not np.isneginf(value).all() or shape is None or len(shape) < 2
                or shapes.get(cond) != [*shape[:-1], 1] or infos[cond].type.tensor_type.elem_type != TensorProto.BOOL
                or where.output[0] in graph_outputs or producers.get(maps) is None
                or producers[maps].op_type != "Add" or uses.get(maps) != 1):
            continue
        tree = terms(maps)
        if tree is None or depends_on(cond, tree[1]):
            continue
        gathers = [producers.get(t) for t in tree[0]]
        if any(
                g is None or g.op_type != "Gather" or g.input[0] not in inits or uses.get(g.output[0]) != 1
                or any(a.name == "axis" and a.i != 0 for a in g.attribute)
                or inits[g.input[0]].data_type != TensorProto.FLOAT or len(inits[g.input[0]].dims) != 2
                for g in gathers):
            continue
        if not all(np.isfinite(numpy_helper.to_array(inits[g.input[0]])).all() for g in gathers):
            continue  # -inf + inf would be NaN where the Where gave -inf
        gather = gathers[0]
        ids_type = elem_type(gather.input[1])
        if ids_type not in (TensorProto.INT64, TensorProto.INT32):
            continue
        table = gather.input[0]
        if table not in tables:
            rows = numpy_helper.to_array(inits[table])
            name = f"{table}__neg_inf_row"
            graph.initializer.append(numpy_helper.from_array(
                np.concatenate([rows, np.full((1, rows.shape[1]), -np.inf, dtype=rows.dtype)]), name))
            tables[table] = (name, rows.shape[0])
        name, row = tables[table]
        tag = where.output[0]
        ids_dtype = np.int64 if ids_type == TensorProto.INT64 else np.int32
        graph.initializer.append(numpy_helper.from_array(np.asarray([-1], dtype=np.int64), f"{tag}__axes"))
        graph.initializer.append(numpy_helper.from_array(np.asarray(row, dtype=ids_dtype), f"{tag}__row"))
        at = list(graph.node).index(gather)
        graph.node.insert(at, helper.make_node("Where", [f"{tag}__pad", f"{tag}__row", gather.input[1]],
                                               [f"{tag}__ids"], name=f"{tag}__ids"))
        graph.node.insert(at, helper.make_node("Squeeze", [cond, f"{tag}__axes"], [f"{tag}__pad"],
                                               name=f"{tag}__pad"))
        gather.input[0], gather.input[1] = name, f"{tag}__ids"
        for node in graph.node:
            for i, inp in enumerate(node.input):
                if inp == where.output[0]:
                    node.input[i] = maps
        graph.node.remove(where)
        for stale in [v for v in graph.value_info if v.name == where.output[0]]:
            graph.value_info.remove(stale)
        removed += 1
    if removed:
        _toposort(graph)  # the mask is computed after the lookups it now feeds
        _drop_unused_initializers(graph)
    return removed


# ------------------------------------------------------------------------------------------------
# files


def _file_entry(path: Path, name: str) -> dict:
    return {"file": name, "bytes": path.stat().st_size, "sha256": sha256_file(path)}


def _require_onnx() -> None:
    missing = []
    for module in ("onnx", "onnxscript", "onnxruntime"):
        try:
            __import__(module)
        except ImportError:
            missing.append(module)
    if missing:
        raise ModelError(f"ONNX export and OnnxPredictor need {', '.join(missing)}, which is not installed: "
                         f"{INSTALL_HINT}")


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """The exporter's and quantizer's chatter (missing torchvision ops, deprecations, 'consider pre-processing')
    kept off the user's terminal while they run."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(previous)


def check_format(format: str, quantize: str | None) -> None:
    """ConfigError for an export format or quantization wordconv does not write."""
    if format not in FORMATS:
        raise ConfigError(f"--format {format!r} is not supported; supported formats: {', '.join(FORMATS)}")
    if quantize is not None and quantize not in QUANTIZATIONS:
        raise ConfigError(f"--quantize {quantize!r} is not supported; use {', '.join(QUANTIZATIONS)} "
                          "(ONNX Runtime dynamic quantization) or leave it out for float32 only")


def check_exportable(config: Config, where: str | Path) -> None:
    """ModelError naming what cannot be exported (task, model type, window truncation) and what to do."""
    if config.task not in TASKS:
        raise ModelError(f"{where}: ONNX export covers text classifiers (task textcat); this model is task "
                         f"{config.task}: serve it with wordconv.load() (PyTorch)")
    if config.model.type not in MODELS:
        raise ModelError(f"{where}: ONNX export does not cover model type {config.model.type!r} (supported: "
                         f"{', '.join(MODELS)}); serve it with wordconv.load() (PyTorch)")
    if config.model.type == "dpcnn" and config.model.max_blocks is None and config.preprocessing.max_length is None:
        raise ModelError(f"{where}: a DPCNN with model.max_blocks=null goes as deep as its longest text, and "
                         "preprocessing.max_length=null sets no bound on that: the exported graph needs one; retrain "
                         "with model.max_blocks (default 6) or preprocessing.max_length set")
    if config.model.type == "pretrained" and config.model.truncation == "window":
        raise ModelError(f"{where}: model.truncation=window splits each text into a data-dependent number of "
                         "windows, which the exported graph cannot do; retrain with model.truncation=head+tail "
                         "(or head, tail), or serve this model with wordconv.load()")


# ------------------------------------------------------------------------------------------------
# texts -> ids without the torch model


class _SubwordIds:
    """A pretrained encoder's text -> ids step without its weights: the saved tokenizer and the encoder's
    own ``encode_many`` (truncation included), with the window sizes recorded at export."""

    pad_id = -1  # wordconv.models.pretrained.PAD

    def __init__(self, params, tokenizer, content: int, stride: int, filler: int):
        from wordconv.models.pretrained import PretrainedEncoder

        self._encode_many = PretrainedEncoder.encode_many
        self.params, self.tokenizer = params, tokenizer
        self.content, self.stride, self.filler = content, stride, filler
        self.truncated = 0

    def encode_many(self, texts: list[str]) -> list[list[int]]:
        return self._encode_many(self, texts)


def _tokenization_entry(encoder: nn.Module) -> dict:
    if hasattr(encoder, "encode_many"):
        return {"kind": "subwords", "content": encoder.content, "stride": encoder.stride, "filler": encoder.filler,
                "pad_id": encoder.pad_id, "tokenizer": "encoder/"}
    return {"kind": "words", "pad_id": Vocab.pad_id, "vocab": "vocab.json"}


class _PieceIds(dict):
    """piece -> its ids, computed by ``ids_of`` on first use; starts over once it holds ``limit`` pieces."""

    def __init__(self, ids_of, limit: int):
        super().__init__()
        self.ids_of, self.limit = ids_of, limit

    def __missing__(self, piece: str) -> tuple[int, ...]:
        if len(self) >= self.limit:
            self.clear()
        ids = self[piece] = self.ids_of(piece)
        return ids


class _PieceWordIds:
    """:class:`~wordconv.tasks.base.WordIds` (the saved preprocessing, then the vocabulary), giving the same ids
    ~3x faster by remembering the ids of each whitespace-separated piece of a text.

    The regex and whitespace tokenizers only insert spaces, and nothing that follows them tests across
    whitespace: the tokenizer's lookarounds only ask for letters, digits, marks or non-space next to a
    character, and whitespace answers as a text's start or end does; lowercasing's final sigma stops at
    whitespace; Kim normalization, punctuation and stop-word removal work within a token.  Cleaning (HTML
    tags, which may contain spaces) runs on the whole text first and leaves nothing for a second pass to find.
    So the tokens of ``clean(text)`` are those of its pieces ``clean(text).split()`` one after the other, and
    a text costs a split and a dictionary lookup per piece (MR: ~21 pieces of ~20k distinct ones) instead of
    the regex passes (the bulk of the preprocessing time).  Truncation and its count are applied to the
    whole text's ids, as :class:`~wordconv.data.text.Preprocessor` does to its tokens."""

    pad_id = Vocab.pad_id
    TOKENIZERS = ("regex", "whitespace")  # jieba segments runs of Chinese with a model: not checked piecewise
    LIMIT = 2**18  # pieces remembered (~40 MB) before starting over: any stream of texts stays bounded

    def __init__(self, preprocessor, vocab: Vocab):
        from wordconv.data.text import Preprocessor

        self.preprocessor, self.vocab = preprocessor, vocab
        whole = Preprocessor(preprocessor.config.model_copy(update={"max_length": None}))  # pieces are not cut
        self._pieces = _PieceIds(lambda piece: tuple(vocab.encode(whole(piece))), self.LIMIT)

    def encode_many(self, texts: Sequence[str]) -> list[list[int]]:
        pre, lookup = self.preprocessor, self._pieces.__getitem__
        clean, cap, chain = pre._clean, pre.config.max_length, itertools.chain.from_iterable
        out = []
        for text in texts:
            ids = list(chain(map(lookup, clean(text).split())))
            if cap is not None and len(ids) > cap:
                pre.truncated += 1
                ids = pre.truncate(ids)
            out.append(ids)
        return out


def _text_ids(config: Config, vocab: Vocab, tokenization: dict, directory: Path):
    """What turns texts into ids for the ONNX graph: as :func:`wordconv.tasks.base.text_ids` does for the
    torch model, but built from the directory's files (word models: :class:`_PieceWordIds` where it applies)."""
    from wordconv.data.text import Preprocessor
    from wordconv.tasks.base import WordIds

    if tokenization["kind"] == "words":
        if config.preprocessing.tokenizer in _PieceWordIds.TOKENIZERS:
            return _PieceWordIds(Preprocessor(config.preprocessing), vocab)
        return WordIds(Preprocessor(config.preprocessing), vocab)
    from transformers import AutoTokenizer

    from wordconv.models.pretrained import _quiet_transformers

    folder = directory / "encoder"
    try:
        with _quiet_transformers():
            tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError) as err:
        raise ModelError(f"{folder}: cannot load the tokenizer of the pretrained encoder ({err}); the directory is "
                         "incomplete: export it again") from None
    return _SubwordIds(config.model, tokenizer, tokenization["content"], tokenization["stride"],
                       tokenization["filler"])


class _Logits:
    """Logits computed beforehand (:meth:`OnnxPredictor._logits_in_order`), one row per text in text order, as the
    encoded data of a task (:class:`~wordconv.tasks.base.TaskData`): the task's own softmax, :class:`Prediction`
    building and metrics then run unchanged, with :data:`_GIVEN` as the model.

    One batch of every row, whatever the batch size: the softmax of a row does not depend on the others, and
    torch's parallel kernels, called once per ONNX batch between runs, cost more than the softmax itself (their
    OpenMP threads spin after each call, on the cores ONNX Runtime's next run needs: MR, 2 threads, end to end
    16k -> 24k texts/s)."""

    def __init__(self, logits: torch.Tensor, labels: list | None = None):
        self.logits, self.labels = logits, labels

    def __len__(self) -> int:
        return len(self.logits)

    def num_tokens(self) -> int:
        return 0

    def batches(self, batch_size: int, *, shuffle: bool, generator=None) -> Iterator[dict[str, torch.Tensor]]:
        if len(self.logits):
            yield {"logits": self.logits, "index": torch.arange(len(self.logits))}


class _GivenLogits:
    """The model that returns the logits its batch carries (:class:`_Logits`)."""

    def eval(self) -> "_GivenLogits":
        return self

    def __call__(self, logits: torch.Tensor, **_) -> dict[str, torch.Tensor]:
        return {"logits": logits}


_GIVEN = _GivenLogits()


def _session(path: Path, threads: int | None) -> "onnxruntime.InferenceSession":
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads or torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # errors only
    # idle intra-op threads sleep instead of spinning: a spinning thread takes the core that the Python side
    # (preprocessing, padding) needs between runs (MR TextCNN, 2 threads, end to end: 8.5k -> 11.1k texts/s)
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    from onnxruntime.capi import onnxruntime_pybind11_state as ort_errors

    errors = (OSError, ort_errors.Fail, ort_errors.InvalidGraph, ort_errors.InvalidArgument, ort_errors.NoSuchFile,
              ort_errors.InvalidProtobuf, ort_errors.RuntimeException)
    try:
        return ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
    except errors as err:
        raise ModelError(f"{path}: ONNX Runtime cannot load it ({str(err).splitlines()[0]}); export the model again "
                         "with `wordconv export DIR`") from None


# ------------------------------------------------------------------------------------------------
# the predictor


class OnnxPredictor:
    """A text classifier served by ONNX Runtime, with :class:`~wordconv.inference.Predictor`'s interface.

    >>> model = OnnxPredictor.load("runs/mr")                 # doctest: +SKIP
    >>> model.predict(["a gripping, funny film"])[0].label    # doctest: +SKIP
    'positive'

    Loading reads the directory's JSON files, vocabulary (or tokenizer) and ``model.onnx``; the torch
    model is never built.  Texts are validated, preprocessed and batched as by ``Predictor``.
    """

    _validate = Predictor._validate  # the same input checks and messages
    backend = "onnx"

    def __init__(self, path: Path, config: Config, labels: list[str], vocab: Vocab, manifest: dict,
                 session: "onnxruntime.InferenceSession", quantized: bool, meta: dict | None = None,
                 metrics: dict | None = None):
        from wordconv.pipeline import make_task

        self.path, self.config, self.labels, self.vocab = path, config, list(labels), vocab
        self.manifest, self.session, self.quantized = manifest, session, quantized
        self._meta, self._metrics = meta or {}, metrics
        self._task = make_task(config, self.labels)
        self._to_ids = _text_ids(config, vocab, manifest["tokenization"], path)
        self.min_length = manifest["inputs"][0]["min_seq"]
        self.seq_multiple = manifest["inputs"][0].get("seq_multiple", 1)
        self._pad_id = manifest["inputs"][0]["pad_id"]

    @classmethod
    def load(cls, path: str | Path, quantized: bool = False, threads: int | None = None) -> "OnnxPredictor":
        """The exported model of directory ``path`` (``quantized``: ``model.int8.onnx``); ``threads``: ONNX
        Runtime's intra-op threads (default: ``torch.get_num_threads()``)."""
        _require_onnx()
        path = Path(path)
        if not path.is_dir():
            raise ModelError(f"model directory {path} does not exist (train one with `wordconv train ... --output "
                             f"{path}`, then `wordconv export {path}`)")
        if not (path / MANIFEST).is_file():
            raise ModelError(f"{path} has no ONNX export ({MANIFEST} is missing): run `wordconv export {path}` first")
        missing = [f for f in REQUIRED_FILES if f != "model.safetensors" and not (path / f).is_file()]
        if missing:
            raise ModelError(f"{path} is not a wordconv model directory: missing {', '.join(missing)}")
        manifest = read_json(path / MANIFEST)
        kind = "int8" if quantized else "fp32"
        entry = manifest.get("files", {}).get(kind)
        if entry is None or not (path / entry["file"]).is_file():
            how = f"`wordconv export {path} --quantize int8`" if quantized else f"`wordconv export {path}`"
            raise ModelError(f"{path} has no {'int8 ' if quantized else ''}ONNX model "
                             f"({INT8_FILE if quantized else ONNX_FILE}): run {how}")
        weights = path / "model.safetensors"
        source = manifest.get("source", {}).get("sha256")
        if weights.is_file() and source is not None and sha256_file(weights) != source:
            raise ModelError(f"{path / entry['file']} was exported from other weights than {weights} (the model was "
                             f"retrained or replaced since): run `wordconv export {path}` again")
        try:
            config = build_config(read_json(path / "config.json"), source=str(path / "config.json"))
        except ConfigError as err:
            raise ModelError(f"{err}\n(the model was saved by an incompatible wordconv version, or config.json was "
                             "edited)") from None
        labels = read_json(path / "labels.json")
        vocab = Vocab.load(path / "vocab.json")
        meta = read_json(path / "meta.json") if (path / "meta.json").is_file() else {}
        metrics = read_json(path / "metrics.json") if (path / "metrics.json").is_file() else None
        session = _session(path / entry["file"], threads)
        return cls(path, config, labels, vocab, manifest, session, quantized, meta, metrics)

    @property
    def task(self) -> str:
        """The model's task (ONNX export covers text classifiers)."""
        return self.config.task

    @property
    def meta(self) -> dict:
        """The exported model's ``meta.json``."""
        return self._meta

    @property
    def metrics(self) -> dict | None:
        """The exported model's ``metrics.json``, or None."""
        return self._metrics

    def encode(self, texts: Sequence[str] | str):
        """The texts' ids as the graph reads them (:class:`~wordconv.tasks.base.EncodedTexts`; ``.batches``
        pads them)."""
        return self._encode(self._validate(texts))

    def _encode(self, texts: list[str]):
        from wordconv.tasks.base import EncodedTexts

        return EncodedTexts(self._to_ids.encode_many(texts), None, self.min_length, self._to_ids.pad_id)

    def logits(self, ids: np.ndarray | torch.Tensor) -> np.ndarray:
        """The graph alone: logits (B, C) of one padded id batch (B, T)."""
        ids = ids.numpy() if isinstance(ids, torch.Tensor) else np.asarray(ids, dtype=np.int64)
        short = -ids.shape[1] % self.seq_multiple
        if short:  # a DPCNN graph reads lengths that are multiples of 2^depth; padding changes no result
            ids = np.pad(ids, ((0, 0), (0, short)), constant_values=self._pad_id)
        return self.session.run(["logits"], {"ids": ids})[0]

    def _padded(self, rows: list[list[int]]) -> np.ndarray:
        """``rows`` right-padded into one (B, T) id batch, T = max(longest, min_length) (as ``pad_batch``)."""
        lengths = np.fromiter(map(len, rows), dtype=np.int64, count=len(rows))
        width = max(int(lengths.max()), self.min_length)
        ids = np.full((len(rows), width), self._to_ids.pad_id, dtype=np.int64)
        ids[np.arange(width) < lengths[:, None]] = np.fromiter(itertools.chain.from_iterable(rows), dtype=np.int64,
                                                                count=int(lengths.sum()))  # row by row
        return ids

    def _logits_in_order(self, texts: list[str], batch_size: int) -> torch.Tensor:
        """Logits (N, C) of ``texts`` in input order, from the batches ``EncodedTexts.batches`` makes (texts
        sorted by length, cut every ``batch_size``), padded with numpy instead of Python lists and torch.

        Not pipelined (tokenizing the next texts in this thread while a worker thread runs the graph, which
        releases the GIL): measured on MR with 1 and 2 threads it was slower.  With ids remembered per piece
        (:class:`_PieceWordIds`) preprocessing is ~1/6 of the time; sorting by length only within chunks
        pads more (MR, chunks of 1,024 texts: +29% positions), each run waits for the GIL held by the
        tokenizing thread, and the two threads slow each other on two cores."""
        from wordconv.data.batching import bucket_batches

        ids = self._to_ids.encode_many(texts)
        out = np.empty((len(texts), len(self.labels)), dtype=np.float32)
        for idx in bucket_batches([len(x) for x in ids], batch_size, shuffle=False):
            out[idx] = self.logits(self._padded([ids[i] for i in idx]))
        return torch.from_numpy(out)

    def predict_proba(self, texts: Sequence[str] | str, batch_size: int = 256) -> torch.Tensor:
        """Probabilities ``(N, C)`` in input order; columns follow ``self.labels``; rows sum to 1."""
        texts = self._validate(texts)
        if not texts:
            return torch.empty(0, len(self.labels))
        probs, _ = self._task.predict_proba(_GIVEN, _Logits(self._logits_in_order(texts, batch_size)), batch_size)
        return probs

    def predict(self, texts: Sequence[str] | str, top_k: int = 1, batch_size: int = 256) -> list[Prediction]:
        """One :class:`~wordconv.inference.Prediction` per text, in input order (as ``Predictor.predict``)."""
        texts = self._validate(texts)
        if not texts:
            return []
        return self._task.predict(_GIVEN, _Logits(self._logits_in_order(texts, batch_size)), batch_size, top_k=top_k)

    def evaluate(self, texts: Sequence[str], labels: Sequence[str], batch_size: int = 256) -> dict:
        """Accuracy, F1 and the rest of ``Predictor.evaluate``'s text-classification metrics on labelled texts."""
        from wordconv.errors import DataError

        if len(texts) != len(labels):
            raise DataError(f"{len(texts)} texts but {len(labels)} labels: give one label per text")
        texts = self._validate(texts)
        examples = [self._task.example(t, lab, f"item {i}") for i, (t, lab) in enumerate(zip(texts, labels))]
        targets = self._task.targets(examples, "input")
        metrics, _ = self._task.evaluate(_GIVEN, _Logits(self._logits_in_order(texts, batch_size), targets),
                                         batch_size)
        return metrics

    def __repr__(self) -> str:
        kind = "int8" if self.quantized else "fp32"
        return f"<wordconv OnnxPredictor {self.config.model.type} {kind} [{', '.join(self.labels)}] from {self.path}>"


# ------------------------------------------------------------------------------------------------
# parity


@dataclass
class ParityReport:
    """PyTorch vs ONNX Runtime on the same texts."""

    texts: int
    batch_sizes: list[int]
    max_logit_diff: float  # max |logit difference| over every batch size (same padded batches on both sides)
    max_prob_diff: float  # max |probability difference| of predict_proba, end to end
    label_agreement: float  # fraction of (text, batch size) whose predicted label is the same
    tolerance: float
    quantized: bool = False
    ok: bool = field(init=False)

    def __post_init__(self) -> None:
        self.ok = self.label_agreement == 1.0 and (self.quantized or self.max_logit_diff <= self.tolerance)

    def summary(self) -> str:
        what = "int8 ONNX vs PyTorch" if self.quantized else "ONNX vs PyTorch"
        return (f"{what} on {self.texts} texts (batch sizes {', '.join(map(str, self.batch_sizes))}): max |logit "
                f"diff| {self.max_logit_diff:.2e}, max |prob diff| {self.max_prob_diff:.2e}, same label for "
                f"{self.label_agreement:.1%}")

    def to_dict(self) -> dict:
        return asdict(self)


@torch.no_grad()
def _parity(reference: Predictor, onnx: OnnxPredictor, texts: Sequence[str], batch_sizes: Sequence[int],
            tolerance: float) -> ParityReport:
    texts = reference._validate(texts)
    data = reference._encode(texts)
    max_logit = max_prob = 0.0
    agree = total = 0
    ref_probs = reference.predict_proba(texts)
    ref_labels = ref_probs.argmax(dim=1)
    for size in batch_sizes:
        for batch in data.batches(size, shuffle=False):
            want = reference.model(ids=batch["ids"])["logits"].float()
            got = torch.from_numpy(onnx.logits(batch["ids"].cpu()))
            max_logit = max(max_logit, float((want.cpu() - got).abs().max()))
        probs = onnx.predict_proba(texts, batch_size=size)
        max_prob = max(max_prob, float((probs - ref_probs).abs().max()))
        agree += int((probs.argmax(dim=1) == ref_labels).sum())
        total += len(texts)
    return ParityReport(len(texts), list(batch_sizes), max_logit, max_prob, agree / total, tolerance, onnx.quantized)


def check_parity(model_dir: str | Path, texts: Sequence[str], quantized: bool = False,
                 tolerance: float = PARITY_TOLERANCE, batch_sizes: Sequence[int] = (1, 256)) -> ParityReport:
    """Compare the exported model of ``model_dir`` with its PyTorch model on ``texts``: logits of the same
    padded batches (max |diff| <= ``tolerance`` for fp32) and labels, at each batch size."""
    return _parity(Predictor.load(model_dir), OnnxPredictor.load(model_dir, quantized=quantized), texts, batch_sizes,
                   tolerance)


def probe_texts(vocab: Vocab) -> list[str]:
    """Texts for the check after export: review-like sentences, and runs of the vocabulary's words of
    1, 2, 7, 30 and 120 words (a one-word text meets the widest filter; long ones go deep in a DPCNN)."""
    words = [w for w in vocab.itos[2:] if w.strip()] or ["good", "film"]
    runs = []
    start = 0
    for n in (1, 2, 7, 30, 120):
        runs.append(" ".join(words[(start + i) % len(words)] for i in range(n)))
        start += n
    return [*PROBE_SENTENCES, *runs, "zqxj unknownword"]


# ------------------------------------------------------------------------------------------------
# export


def _example_ids(vocab_size: int, steps: int, pad_id: int) -> torch.Tensor:
    """A (3, steps) id batch for tracing, one text padded (3 and steps > 1: torch.export treats sizes 0 and 1
    as special)."""
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(min(2, vocab_size - 1), vocab_size, (3, steps), generator=g)
    ids[0, max(1, steps // 2):] = pad_id
    return ids


def _check_dynamic(path: Path) -> None:
    """The exporter may fix an axis it cannot keep symbolic; such a graph would fail on other batches."""
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    fixed = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim if d.HasField("dim_value")]
    if fixed:
        raise ModelError(f"the exporter fixed an axis of the ids input to {fixed[0]} (batch and sequence length must "
                         "stay dynamic): serve this model with wordconv.load() (PyTorch) and report this")


def _fold_constants(model) -> None:
    """Constant-fold what depends on weights only, whatever its size (in place, an onnx_ir model).

    The exporter's optimizer folds tensors of at most 8,192 elements: TextCNN's stacked filter matrix
    (``models/ops.py``: the filters of every width concatenated, 300 x 1,200 by default) would be rebuilt from
    the filters on every call, and the embedding lookup before it could not be folded into it."""
    import onnxscript.optimizer

    onnxscript.optimizer.optimize(model, input_size_limit=2**27, output_size_limit=2**27)


def _export_graph(predictor: Predictor, path: Path, opset: int | None) -> dict:
    """torch.onnx.export of ids -> logits into ``path``; returns the input description for onnx.json."""
    from torch.export import Dim

    from wordconv.models.dpcnn import DPCNN

    art, encoder = predictor.artifact, predictor.model.encoder
    config = art.config
    subword = hasattr(encoder, "encode_many")
    pad_id = encoder.pad_id if subword else Vocab.pad_id
    min_length = encoder.min_length
    max_length = encoder.content if subword else None  # a pretrained encoder reads at most one window
    vocab_size = encoder.hf_config.vocab_size if subword else len(art.vocab)
    graph = _LogitsGraph(predictor.model, pad_id, _extra_pad(config, encoder)).eval()
    multiple = 2 ** _dpcnn_steps(config, encoder) if isinstance(encoder, DPCNN) else 1
    if multiple > 1:  # batches padded to a multiple of 2^steps (_FixedDepthDPCNN)
        seq = multiple * Dim("units", min=1)
        ids = _example_ids(vocab_size, 3 * multiple, pad_id)
    else:
        seq = Dim("seq", min=min_length, max=max_length) if max_length is not None else Dim("seq", min=min_length)
        steps = max(min_length, 2) + 11
        ids = _example_ids(vocab_size, min(steps, max_length) if max_length is not None else steps, pad_id)
    try:
        with _quiet(), _exportable(predictor.model, config), torch.no_grad():
            program = torch.onnx.export(graph, (ids,), dynamo=True, input_names=["ids"], output_names=["logits"],
                                        dynamic_shapes={"ids": {0: Dim("batch", min=1), 1: seq}},
                                        opset_version=opset, external_data=False, verbose=False,
                                        custom_translation_table={torch.ops.aten.sort.stable: _sort_stable})
            _fold_constants(program.model)
            program.save(str(path))
    except torch.onnx.errors.OnnxExporterError as err:
        first = next((line for line in str(err).splitlines() if "Error" in line), str(err).splitlines()[0])
        raise ModelError(f"could not export the {config.model.type} model to ONNX: {first.strip()}; serve it with "
                         "wordconv.load() (PyTorch) and report this") from None
    _check_dynamic(path)
    return {"name": "ids", "dtype": "int64", "shape": ["batch", "seq"], "pad_id": pad_id, "min_seq": min_length,
            "max_seq": max_length, "seq_multiple": multiple}


def _rewrite(path: Path, fold: bool | None) -> int:
    """:func:`fold_embedding_matmul` (unless ``fold`` is False) and then :func:`push_slices_into_lookup`, and
    :func:`merge_slices`, on the file at ``path``; returns how many embedding lookups were folded."""
    import onnx

    model = onnx.load(str(path))
    limit = 2**31 - 2**26 if fold else FOLD_LIMIT_BYTES
    folded = 0 if fold is False else fold_embedding_matmul(model, limit_bytes=limit)
    pushed = push_slices_into_lookup(model, limit_bytes=limit) if folded else 0
    merged = merge_slices(model)
    if merged or folded or pushed:
        onnx.checker.check_model(model)
        onnx.save(model, str(path))
    return folded


def _rewrite_masks(path: Path) -> int:
    """:func:`mask_padding_in_lookup` on the file at ``path`` (after :func:`_rewrite`, and after quantizing: the int8
    model keeps its Where); returns how many masks became lookups."""
    import onnx

    model = onnx.load(str(path))
    masked = mask_padding_in_lookup(model)
    if masked:
        onnx.checker.check_model(model)
        onnx.save(model, str(path))
    return masked


def _quantize(src: Path, dst: Path) -> None:
    from onnxruntime.quantization import QuantType, quantize_dynamic

    with _quiet():
        quantize_dynamic(src, dst, weight_type=QuantType.QInt8)


@dataclass
class ExportResult:
    """What :func:`export_onnx_detailed` wrote and how it compared with PyTorch."""

    directory: Path
    files: list[Path]
    parity: ParityReport
    int8_parity: ParityReport | None
    removed: list[Path]
    seconds: float
    folded: int


def export_onnx(model_dir: str | Path, output: str | Path | None = None, quantize: str | None = None,
                opset: int | None = None, *, fold_embeddings: bool | None = None) -> Path:
    """Export the text classifier in ``model_dir`` to ONNX; returns the path of ``model.onnx``.

    ``output``: the directory to write (default: ``model_dir``); another directory also gets the model's
    JSON files (and a pretrained encoder's tokenizer), so that :meth:`OnnxPredictor.load` can serve it
    alone, without ``model.safetensors``.  ``quantize="int8"`` also writes ``model.int8.onnx``.
    ``opset``: the ONNX opset (default: the exporter's).  ``fold_embeddings``: fold an embedding lookup
    into the matrix product after it (None: when the table stays under ``FOLD_LIMIT_BYTES``).

    The export is compared with PyTorch on probe texts first (:func:`check_parity`): a difference beyond
    ``PARITY_TOLERANCE`` or another label is a ModelError and nothing is written."""
    return export_onnx_detailed(model_dir, output, quantize, opset, fold_embeddings=fold_embeddings).files[0]


def _config_if_valid(path: Path) -> Config | None:
    """The config at ``path``; None when it is missing or invalid (load_artifact then says what is wrong)."""
    if not path.is_file():
        return None
    try:
        return build_config(read_json(path), source=str(path))
    except (ConfigError, ModelError):
        return None


def export_onnx_detailed(model_dir: str | Path, output: str | Path | None = None, quantize: str | None = None,
                         opset: int | None = None, *, fold_embeddings: bool | None = None,
                         texts: Sequence[str] | None = None) -> ExportResult:
    """:func:`export_onnx`, returning every file written, the parity reports and the files removed (a stale
    ``model.int8.onnx`` when exporting without ``quantize``).  ``texts``: the parity probe (default
    :func:`probe_texts`)."""
    from wordconv.modeldir import load_artifact

    check_format("onnx", quantize)
    _require_onnx()
    t0 = time.perf_counter()
    model_dir = Path(model_dir)
    early = _config_if_valid(model_dir / "config.json")
    if early is not None:  # what cannot be exported fails before the model is built
        check_exportable(early, model_dir)
    art = load_artifact(model_dir)
    check_exportable(art.config, model_dir)
    out = Path(output) if output is not None else model_dir
    if out.exists() and not out.is_dir():
        raise ModelError(f"--output {out} is a file; give a directory")
    reference = Predictor(art, model_dir)
    texts = list(texts) if texts is not None else probe_texts(art.vocab)
    out.mkdir(parents=True, exist_ok=True)
    with contextlib.ExitStack() as stack:  # each file is renamed into place when the block succeeds
        fp32_tmp = stack.enter_context(atomic_path(out / ONNX_FILE))
        inputs = _export_graph(reference, fp32_tmp, opset)
        folded = _rewrite(fp32_tmp, fold_embeddings)
        if quantize == "int8":  # from the graph before _rewrite_masks: a -inf table row has no int8 scale
            int8_tmp = stack.enter_context(atomic_path(out / INT8_FILE))
            _quantize(fp32_tmp, int8_tmp)
        masked = _rewrite_masks(fp32_tmp)
        manifest: dict[str, Any] = {
            "format": "onnx", "opset": _opset(fp32_tmp), "task": art.config.task, "model": art.config.model.type,
            "labels": art.labels, "inputs": [inputs],
            "outputs": [{"name": "logits", "dtype": "float32", "shape": ["batch", len(art.labels)]}],
            "tokenization": _tokenization_entry(reference.model.encoder), "folded_embedding_matmuls": folded,
            "masks_in_lookups": masked,
            "source": {"file": "model.safetensors", "sha256": sha256_file(model_dir / "model.safetensors")},
            "files": {},
        }

        def candidate(path: Path, quantized: bool) -> OnnxPredictor:
            return OnnxPredictor(model_dir, art.config, art.labels, art.vocab, manifest, _session(path, None),
                                 quantized, art.meta, art.metrics)

        parity = _parity(reference, candidate(fp32_tmp, False), texts, (1, 256), PARITY_TOLERANCE)
        if not parity.ok:
            raise ModelError(f"the exported graph does not match the PyTorch model ({parity.summary()}; tolerance "
                             f"{PARITY_TOLERANCE:g}): nothing was written; serve it with wordconv.load() and report "
                             "this")
        manifest["files"]["fp32"] = _file_entry(fp32_tmp, ONNX_FILE)
        manifest["parity"] = parity.to_dict()
        int8_parity = None
        if quantize == "int8":
            int8_parity = _parity(reference, candidate(int8_tmp, True), texts, (256,), PARITY_TOLERANCE)
            manifest["files"]["int8"] = _file_entry(int8_tmp, INT8_FILE)
            manifest["int8_parity"] = int8_parity.to_dict()
        if out.resolve() != model_dir.resolve():
            _copy_side_files(model_dir, out)
    # the ONNX files are in place; onnx.json last, so it never lists a file that is not there yet
    manifest["versions"] = _versions()
    manifest["created_at"] = _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")
    with atomic_path(out / MANIFEST) as tmp:
        write_json(tmp, manifest)
    written = [out / ONNX_FILE] + ([out / INT8_FILE] if quantize else []) + [out / MANIFEST]
    removed: list[Path] = []
    if quantize is None and (out / INT8_FILE).exists():
        (out / INT8_FILE).unlink()  # made from earlier weights or an earlier graph: onnx.json no longer lists it
        removed.append(out / INT8_FILE)
    return ExportResult(out, written, parity, int8_parity, removed, time.perf_counter() - t0, folded)


def _opset(path: Path) -> int:
    import onnx

    model = onnx.load(str(path), load_external_data=False)
    return next(o.version for o in model.opset_import if o.domain in ("", "ai.onnx"))


def _versions() -> dict:
    import onnx
    import onnxruntime
    import onnxscript

    from wordconv import __version__

    return {"wordconv": __version__, "torch": torch.__version__, "onnx": onnx.__version__,
            "onnxscript": onnxscript.__version__, "onnxruntime": onnxruntime.__version__}


def _copy_side_files(model_dir: Path, out: Path) -> None:
    """The JSON files (and a pretrained encoder's tokenizer folder) OnnxPredictor reads, into ``out``."""
    for name in ("config.json", "vocab.json", "labels.json", "meta.json", "metrics.json"):
        if (model_dir / name).is_file():
            with atomic_path(out / name) as tmp:
                shutil.copyfile(model_dir / name, tmp)
    if (model_dir / "encoder").is_dir():
        shutil.copytree(model_dir / "encoder", out / "encoder", dirs_exist_ok=True)


# ------------------------------------------------------------------------------------------------
# command


def export_command(
    model_dir: Annotated[Path, typer.Argument(help="a trained model directory")],
    format: Annotated[str, typer.Option("--format", help="export format: onnx")] = "onnx",
    quantize: Annotated[Optional[str], typer.Option(
        "--quantize", help="also write a quantized model: int8 (ONNX Runtime dynamic quantization)")] = None,
    output: Annotated[Optional[Path], typer.Option(
        "--output", "-o", help="directory to write (default: the model directory)")] = None,
) -> None:
    """Export a text classifier to ONNX (model.onnx, onnx.json), checked against PyTorch before it is written."""
    err = Console(stderr=True)
    out = Console()
    with user_errors(err):
        check_format(format, quantize)
        result = export_onnx_detailed(model_dir, output, quantize)
    for path in result.files:
        size = f" ({path.stat().st_size / 2**20:,.1f} MiB)" if path.suffix == ".onnx" else ""
        out.print(f"wrote [bold]{escape(str(path))}[/]{size}", highlight=False)
    for path in result.removed:
        out.print(f"removed {escape(str(path))} (exported from an earlier model; use --quantize int8 to remake it)",
                  highlight=False)
    mark = "[green]ok[/]" if result.parity.ok else "[red]FAILED[/]"
    out.print(f"parity {mark}: {escape(result.parity.summary())}", highlight=False)
    if result.int8_parity is not None:
        out.print(f"int8: {escape(result.int8_parity.summary())}", highlight=False)
    out.print(f"exported in {result.seconds:.1f}s; serve with wordconv.export.OnnxPredictor.load("
              f"{escape(repr(str(result.directory)))}{', quantized=True' if result.int8_parity else ''})",
              highlight=False)
