"""The encoder seam shared by every architecture.

Every encoder maps token ids ``[B, T]`` (0 = padding) to an :class:`EncoderOutput`: token states
``[B, T', H]`` (or None when the architecture has no per-token output, e.g. Kim's 1-max pooled
CNN), their mask, and a pooled vector ``[B, H]``.  Tasks put their heads on top and check at
build time that the encoder gives what they need.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from wordconv.config import EmbeddingConfig
from wordconv.data.vocab import Vocab


@dataclass
class EncoderOutput:
    states: torch.Tensor | None  # (B, T', H) token states, or None
    mask: torch.Tensor | None  # (B, T') True at real tokens
    pooled: torch.Tensor | None  # (B, H) one vector per text


class Encoder(nn.Module):
    """Base class: subclasses set ``output_dim`` and ``min_length`` and implement ``forward``."""

    output_dim: int
    # the shortest input the architecture accepts; batches are padded up to it so that a
    # one-word text still fills the widest filter
    min_length: int = 1

    def forward(self, ids: torch.Tensor) -> EncoderOutput:  # pragma: no cover - interface
        raise NotImplementedError


def window_mask(lengths: torch.Tensor, steps: int, width: int, pad: int = 0) -> torch.Tensor:
    """(B, steps) True where a width-``width`` window holds real words, not only padding.

    ``pad`` zero vectors were put before the text ("wide" convolution, Kim's code: pad =
    widest filter - 1): then every window that overlaps at least one word counts.  With
    ``pad=0`` only windows wholly inside the text count, and a text shorter than the window
    keeps its first window (batches are padded up to the widest filter).  Masking the rest
    makes a prediction independent of how much padding its batch happened to need.
    """
    pos = torch.arange(steps, device=lengths.device)[None, :]
    if pad == 0:
        return pos < (lengths - width + 1).clamp(min=1)[:, None]
    last = pad + lengths.clamp(min=1) - 1  # an empty text keeps the window on its first slot
    return (pos >= pad - width + 1) & (pos <= last[:, None])


class WordEmbedding(nn.Module):
    """Word lookup table; the seam where pretrained vectors and Kim's channels plug in."""

    def __init__(self, vocab_size: int, config: EmbeddingConfig, pad_id: int = 0):
        super().__init__()
        self.dim = config.dim
        self.table = nn.Embedding(vocab_size, config.dim, padding_idx=pad_id)
        # Kim (2014), CNN_sentence: unknown/random vectors drawn from U[-0.25, 0.25]
        nn.init.uniform_(self.table.weight, -config.init_scale, config.init_scale)
        with torch.no_grad():
            self.table.weight[pad_id].zero_()
            # words never seen in training map to UNK; with min_freq 1 no training token does,
            # so UNK would stay a random vector injecting noise at test time: start it at zero
            self.table.weight[Vocab.unk_id].zero_()
        self.dropout = nn.Dropout(config.dropout) if config.dropout > 0 else nn.Identity()

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.dropout(self.table(ids))  # (B, T, E)
