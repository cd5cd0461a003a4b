"""Kim (2014), "Convolutional Neural Networks for Sentence Classification".

    words -> embeddings (B, T, E)
          -> for each width w: conv1d(E -> F, width w) -> ReLU -> max over time  (B, F)
          -> concat (B, F * len(widths))  -> [task head: dropout 0.5, linear, max-norm 3]

One-max pooling keeps, for each filter, the strongest n-gram anywhere in the text.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field, field_validator
from torch import nn

from wordconv.config import EmbeddingConfig, ModelParams
from wordconv.models.base import Encoder, EncoderOutput, WordEmbedding, window_mask
from wordconv.models.ops import multi_width_conv
from wordconv.models.registry import register_model


class TextCNNConfig(ModelParams):
    type: Literal["textcnn"] = "textcnn"
    filter_widths: list[int] = [3, 4, 5]  # Kim (2014): windows of 3, 4 and 5 words
    num_filters: int = Field(100, gt=0)  # Kim (2014): 100 feature maps per width
    activation: Literal["relu", "tanh"] = "relu"  # Kim (2014): ReLU
    dropout: float = Field(0.5, ge=0.0, lt=1.0)  # Kim (2014): dropout 0.5 on the pooled features
    max_norm: float | None = Field(3.0, gt=0.0)  # Kim (2014): l2 max-norm 3 on output-layer weights
    # "wide": pad (widest - 1) zeros at both ends as Kim's code does, so edge words get every
    # window position and a one-word text works; "valid": windows wholly inside the text only
    padding: Literal["wide", "valid"] = "wide"

    @field_validator("filter_widths")
    @classmethod
    def _widths(cls, v: list[int]) -> list[int]:
        if not v or any(w < 1 for w in v):
            raise ValueError("filter_widths must be a non-empty list of positive integers, e.g. [3, 4, 5]")
        return v


class TextCNN(Encoder):
    def __init__(self, params: TextCNNConfig, emb: EmbeddingConfig, vocab_size: int, pad_id: int = 0):
        super().__init__()
        self.embedding = WordEmbedding(vocab_size, emb, pad_id)
        self.pad_id = pad_id
        self.convs = nn.ModuleList(nn.Conv1d(emb.dim, params.num_filters, w) for w in params.filter_widths)
        self.act = nn.ReLU() if params.activation == "relu" else nn.Tanh()
        self.output_dim = params.num_filters * len(params.filter_widths)
        self.pad = max(params.filter_widths) - 1 if params.padding == "wide" else 0
        self.min_length = 1 if self.pad else max(params.filter_widths)

    def forward(self, ids: torch.Tensor) -> EncoderOutput:
        lengths = (ids != self.pad_id).sum(dim=1)  # (B,) texts are padded at the end
        x = self.embedding(ids)  # (B, T, E)
        # all widths in one GEMM, with `pad` zero vectors at both ends when wide; equal to
        # nn.Conv1d(padding=pad) per width (models/ops.py)
        maps = multi_width_conv(x, [conv.weight for conv in self.convs], self.pad)  # each (B, T+2pad-w+1, F)
        pooled = []
        for conv, c in zip(self.convs, maps):
            keep = window_mask(lengths, c.shape[1], conv.kernel_size[0], self.pad)  # (B, T+2pad-w+1)
            c = c.masked_fill(~keep[:, :, None], float("-inf"))  # windows over padding never win
            # 1-max pooling, then bias and activation: act(max(c) + b) == max(act(c + b)) for monotonic act
            pooled.append(self.act(c.amax(dim=1) + conv.bias))  # (B, F)
        return EncoderOutput(states=None, mask=None, pooled=torch.cat(pooled, dim=1))  # (B, F * n_widths)


@register_model("textcnn", TextCNNConfig, "Kim (2014) CNN: parallel 3/4/5-word filters, 1-max pooling")
def build_textcnn(params: TextCNNConfig, emb: EmbeddingConfig, vocab_size: int, pad_id: int = 0) -> TextCNN:
    return TextCNN(params, emb, vocab_size, pad_id)
