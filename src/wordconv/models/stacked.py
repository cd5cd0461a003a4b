"""The classic stacked Keras text CNN of the tutorial wordconv grew from.

    Embedding -> Conv1D(F, k) + act -> MaxPool1D(p) -> Conv1D(F, k) + act -> GlobalMaxPool1D
              -> Dense(H) + ReLU -> [task head: dropout, linear]

Unlike Kim's parallel filters, the second convolution sees pooled first-layer features, so it
looks at phrases about k * p words wide.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field
from torch import nn

from wordconv.config import EmbeddingConfig, ModelParams
from wordconv.models.base import Encoder, EncoderOutput, WordEmbedding, window_mask
from wordconv.models.registry import register_model
from wordconv.models.textcnn import Activation, make_activation


class StackedCNNConfig(ModelParams):
    type: Literal["stacked"] = "stacked"
    num_filters: int = Field(128, gt=0)  # the Keras example: Conv1D(128, 5)
    kernel_size: int = Field(5, gt=0)  # the Keras example: width 5
    pool_size: int = Field(5, gt=0)  # the Keras example: MaxPooling1D(5)
    hidden_dim: int = Field(128, gt=0)  # the Keras example: Dense(128, relu)
    activation: Activation = "relu"  # the Keras example: Conv1D(..., activation="relu"); the Dense stays ReLU
    dropout: float = Field(0.5, ge=0.0, lt=1.0)  # before the output layer
    max_norm: float | None = Field(None, gt=0.0)  # no constraint in the Keras example


class StackedCNN(Encoder):
    def __init__(self, params: StackedCNNConfig, emb: EmbeddingConfig, vocab_size: int, pad_id: int = 0):
        super().__init__()
        k, p = params.kernel_size, params.pool_size
        self.embedding = WordEmbedding(vocab_size, emb, pad_id)
        self.pad_id, self.k, self.p = pad_id, k, p
        self.conv1 = nn.Conv1d(self.embedding.dim, params.num_filters, k)  # the embedding's width, maybe 2 channels
        self.act = make_activation(params.activation)
        self.pool = nn.MaxPool1d(p)
        self.conv2 = nn.Conv1d(params.num_filters, params.num_filters, k)
        self.dense = nn.Linear(params.num_filters, params.hidden_dim)
        self.output_dim = params.hidden_dim
        # conv1 leaves T-k+1 steps, the pool (T-k+1)//p, and conv2 needs k of those
        self.min_length = k * p + k - 1

    def forward(self, ids: torch.Tensor) -> EncoderOutput:
        lengths = (ids != self.pad_id).sum(dim=1)  # (B,)
        x = self.embedding(ids).transpose(1, 2)  # (B, E, T)
        x = self.act(self.conv1(x))  # (B, F, T-k+1)
        # zero the windows over padding so the pooled features do not depend on batch padding
        x = x * window_mask(lengths, x.shape[2], self.k)[:, None, :]
        x = self.pool(x)  # (B, F, (T-k+1)//p)
        x = self.act(self.conv2(x))  # (B, F, P - k + 1)
        steps1 = (lengths - self.k + 1).clamp(min=1) // self.p  # real pooled steps per text
        keep = window_mask(steps1, x.shape[2], self.k)
        x = x.masked_fill(~keep[:, None, :], float("-inf")).amax(dim=2)  # (B, F) global max pooling
        return EncoderOutput(states=None, mask=None, pooled=torch.relu(self.dense(x)))  # (B, H)


@register_model("stacked", StackedCNNConfig, "the classic Keras Conv1D/MaxPool/Conv1D/GlobalMaxPool stack")
def build_stacked(params: StackedCNNConfig, emb: EmbeddingConfig, vocab_size: int, pad_id: int = 0) -> StackedCNN:
    return StackedCNN(params, emb, vocab_size, pad_id)
