"""Kim (2014), "Convolutional Neural Networks for Sentence Classification".

    words -> embeddings (B, T, E)
          -> for each width w: conv1d(E -> F, width w) -> activation -> pool over time   (B, F * P)
          -> concat (B, F * P * len(widths))  -> [task head: dropout 0.5, linear, max-norm 3]

Pooling (P values per filter):
    max   1-max (Kim 2014): the strongest n-gram anywhere in the text               P = 1
    avg   the mean of act(conv) over the text's windows                              P = 1
    kmax  the k strongest windows, kept in text order (Kalchbrenner et al. 2014)    P = k

Windows that cover only padding are masked before pooling, so a text's features do not depend on
how much padding its batch needed.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field, field_validator
from torch import nn

from wordconv.config import EmbeddingConfig, ModelParams
from wordconv.models.base import Encoder, EncoderOutput, WordEmbedding, window_mask
from wordconv.models.ops import FOLD_LIMIT_BYTES, multi_width_conv, shift_sum, stack_taps
from wordconv.models.registry import register_model

# every one is monotonic non-decreasing, so act(max(c) + b) == max(act(c + b)) and k-max can pick
# windows before the activation
Activation = Literal["relu", "tanh", "sigmoid", "identity"]


def make_activation(name: str) -> nn.Module:
    """The activation module for a config's ``activation`` name (shared by the CNN encoders)."""
    return {"relu": nn.ReLU, "tanh": nn.Tanh, "sigmoid": nn.Sigmoid, "identity": nn.Identity}[name]()


def check_filter_widths(v: list[int]) -> list[int]:
    """Config check shared by the CNNs with parallel filter widths."""
    if not v or any(w < 1 for w in v):
        raise ValueError("filter_widths must be a non-empty list of positive integers, e.g. [3, 4, 5]")
    return v


class TextCNNConfig(ModelParams):
    type: Literal["textcnn"] = "textcnn"
    filter_widths: list[int] = [3, 4, 5]  # Kim (2014): windows of 3, 4 and 5 words
    num_filters: int = Field(100, gt=0)  # Kim (2014): 100 feature maps per width
    activation: Activation = "relu"  # Kim (2014): ReLU (tanh, sigmoid, identity for comparison)
    # Kim (2014): 1-max; Zhang & Wallace (2015) found 1-max beat k-max and average pooling
    pooling: Literal["max", "avg", "kmax"] = "max"
    k: int = Field(4, gt=0)  # kmax only: Kalchbrenner et al. (2014) top-level k-max pooling, k_top = 4
    dropout: float = Field(0.5, ge=0.0, lt=1.0)  # Kim (2014): dropout 0.5 on the pooled features
    max_norm: float | None = Field(3.0, gt=0.0)  # Kim (2014): l2 max-norm 3 on output-layer weights
    # "wide": pad (widest - 1) zeros at both ends as Kim's code does, so edge words get every
    # window position and a one-word text works; "valid": windows wholly inside the text only
    padding: Literal["wide", "valid"] = "wide"

    _widths = field_validator("filter_widths")(classmethod(lambda cls, v: check_filter_widths(v)))


def kmax_pool(c: torch.Tensor, keep: torch.Tensor, k: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The k largest of each map (B, L, F) over real windows ``keep`` (B, L), in text order.

    Returns values (B, k, F) and a (B, k, F) mask that is False at filler slots: a text with
    fewer than k real windows gets its n < k values first, then k - n fillers (the caller sets
    them to 0 after the activation), so the result is the same whatever padding follows it.
    """
    c = c.masked_fill(~keep[:, :, None], float("-inf"))  # padding windows are never chosen
    if c.shape[1] < k:  # fewer windows than k at all: room for the fillers
        c = nn.functional.pad(c, (0, 0, 0, k - c.shape[1]), value=float("-inf"))
    # a stable sort: among equal values the earliest window wins, whatever the batch's length
    top, idx = c.sort(dim=1, descending=True, stable=True)
    top, idx = top[:, :k], idx[:, :k]  # (B, k, F)
    filler = torch.isinf(top)
    # back into text order; fillers sort after every real window
    order = torch.where(filler, idx + c.shape[1], idx).argsort(dim=1)  # (B, k, F)
    return top.gather(1, order), ~filler.gather(1, order)


FOLD_CHUNK_FLOATS = 1 << 21  # folded inference: rows per chunk so their tap products hold ~2M floats (8 MB)


class TextCNN(Encoder):
    def __init__(self, params: TextCNNConfig, emb: EmbeddingConfig, vocab_size: int, pad_id: int = 0):
        super().__init__()
        self.embedding = WordEmbedding(vocab_size, emb, pad_id)
        self.pad_id = pad_id
        dim = self.embedding.dim  # E: the embedding's output width (two channels may double it)
        self.convs = nn.ModuleList(nn.Conv1d(dim, params.num_filters, w) for w in params.filter_widths)
        self.act = make_activation(params.activation)
        self.pooling, self.k = params.pooling, params.k
        per_filter = params.k if params.pooling == "kmax" else 1
        self.output_dim = params.num_filters * per_filter * len(params.filter_widths)
        self.pad = max(params.filter_widths) - 1 if params.padding == "wide" else 0
        self.min_length = 1 if self.pad else max(params.filter_widths)
        self.fold_first_layer(False)

    def fold_first_layer(self, enabled: bool = True) -> None:
        """Inference: look the first layer's tap products up in the table E @ W (vocabulary x filter taps),
        computed once, instead of a GEMM per batch (what the ONNX export's graph rewrite does).  Used only
        in eval mode without gradients; rebuilt when the weights change; skipped above FOLD_LIMIT_BYTES."""
        self._fold_enabled, self._fold, self._fold_key = enabled, None, None

    def _folded_table(self) -> torch.Tensor | None:
        emb, weights = self.embedding, [conv.weight for conv in self.convs]
        if not isinstance(emb, WordEmbedding):  # swapped out (the ONNX export's one-table stand-in)
            return None
        rows = emb.n_train + emb.n_extra
        if rows * sum(w.shape[0] * w.shape[2] for w in weights) * 4 > FOLD_LIMIT_BYTES:
            return None
        key = tuple((p.data_ptr(), p._version) for p in (*emb.parameters(), *weights))
        if self._fold_key != key:
            device = weights[0].device
            with torch.no_grad(), torch.autocast(device.type, enabled=False):
                table = emb(torch.arange(rows, device=device)[None])[0].float()  # (V, E): row i = id i's input
                self._fold = table @ stack_taps(weights).float()  # (V, F * sum(widths))
            self._fold_key = key
        return self._fold

    def forward(self, ids: torch.Tensor) -> EncoderOutput:
        lengths = (ids != self.pad_id).sum(dim=1)  # (B,) texts are padded at the end
        weights = [conv.weight for conv in self.convs]
        table = None
        if (self._fold_enabled and not self.training and not torch.is_grad_enabled()
                and not torch.compiler.is_exporting() and not torch.jit.is_tracing()):
            table = self._folded_table()
        if table is not None:  # each token's tap products looked up, then the same shift-and-add
            rows = max(1, FOLD_CHUNK_FLOATS // (ids.shape[1] * table.shape[1]))
            if ids.shape[0] > rows:  # a few rows at a time: their tap products stay in cache
                return EncoderOutput(states=None, mask=None, pooled=torch.cat(
                    [self(ids[i:i + rows]).pooled for i in range(0, ids.shape[0], rows)]))
            widths = [w.shape[2] for w in weights]
            y = table.index_select(0, ids.reshape(-1)).view(*ids.shape, -1)  # (2-3x F.embedding's speed here)
            maps = shift_sum(y, widths, weights[0].shape[0], self.pad)
        else:
            x = self.embedding(ids)  # (B, T, E)
            # all widths in one GEMM, with `pad` zero vectors at both ends when wide; equal to
            # nn.Conv1d(padding=pad) per width (models/ops.py)
            maps = multi_width_conv(x, weights, self.pad)  # each (B, L, F), L = T+2pad-w+1
        pooled = []
        for conv, c in zip(self.convs, maps):
            keep = window_mask(lengths, c.shape[1], conv.kernel_size[0], self.pad)  # (B, L) windows over words
            if self.pooling == "max":
                c = c.masked_fill(~keep[:, :, None], float("-inf"))  # windows over padding never win
                # 1-max pooling, then bias and activation: act(max(c) + b) == max(act(c + b)) for monotonic act
                pooled.append(self.act(c.amax(dim=1) + conv.bias))  # (B, F)
            elif self.pooling == "avg":
                h = self.act(c + conv.bias) * keep[:, :, None]  # (B, L, F) activation before averaging
                pooled.append(h.sum(dim=1) / keep.sum(dim=1, keepdim=True))  # (B, F) window_mask keeps >= 1
            else:  # kmax: choose on the raw maps (monotonic act keeps the order), then bias and act
                top, real = kmax_pool(c, keep, self.k)  # (B, k, F) each
                h = self.act(top.masked_fill(~real, 0.0) + conv.bias).masked_fill(~real, 0.0)  # fillers are 0
                pooled.append(h.transpose(1, 2).flatten(1))  # (B, F * k): each filter's k values together
        return EncoderOutput(states=None, mask=None, pooled=torch.cat(pooled, dim=1))  # (B, output_dim)


@register_model("textcnn", TextCNNConfig, "Kim (2014) CNN: parallel 3/4/5-word filters, 1-max (or avg, k-max) pooling")
def build_textcnn(params: TextCNNConfig, emb: EmbeddingConfig, vocab_size: int, pad_id: int = 0) -> TextCNN:
    return TextCNN(params, emb, vocab_size, pad_id)
