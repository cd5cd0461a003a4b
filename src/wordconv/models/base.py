"""The encoder seam shared by every architecture.

Every encoder maps token ids ``[B, T]`` (0 = padding) to an :class:`EncoderOutput`: token states
``[B, T', H]`` (or None when the architecture has no per-token output, e.g. Kim's 1-max pooled
CNN), their mask, and a pooled vector ``[B, H]``.  Tasks put their heads on top and check at
build time that the encoder gives what they need.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from wordconv.config import EmbeddingConfig
from wordconv.data.vocab import Vocab
from wordconv.errors import ConfigError


@dataclass
class EncoderOutput:
    """What every encoder returns: token states and their mask (or None), a pooled vector, attention weights."""

    states: torch.Tensor | None  # (B, T', H) token states, or None
    mask: torch.Tensor | None  # (B, T') True at real tokens
    pooled: torch.Tensor | None  # (B, H) one vector per text
    attention: torch.Tensor | None = None  # (B, T') pooling weights over the states, for inspection


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
    """Word lookup table in Kim's (2014) four modes; the seam every encoder reads words through.

    - ``rand``: one trainable table, U[-a, a] init.
    - ``static``: pretrained vectors, fixed.
    - ``non-static``: pretrained vectors, fine-tuned.
    - ``multichannel``: a fixed and a fine-tuned copy of the pretrained vectors, concatenated, so
      every filter has its own weights for each channel (as a 2-channel conv2d).  Kim's paper
      applies the *same* filter to both channels and adds the results; since a convolution is
      linear that equals one fine-tuned table initialised at twice the vectors, i.e. non-static.

    With pretrained vectors, the last ``config.extra_words`` rows of the vocabulary are words of
    the vector file the training data never had: they keep their pretrained vectors (no gradient
    ever reaches them) in every mode.  ``dim`` is the output width (2 x config.dim in
    multichannel mode): encoders size their first layer by it.  Vectors are put in by
    :meth:`load_pretrained` at training time; a saved model carries them in its weights.
    """

    def __init__(self, vocab_size: int, config: EmbeddingConfig, pad_id: int = 0):
        super().__init__()
        if config.dim is None:
            raise ConfigError("embeddings.dim is not set: it is read from the vector file when training starts")
        self.mode = config.mode
        self.pad_id = pad_id
        self.lr_scale = config.lr_scale  # read by wordconv.finetune.optimizer_groups
        pretrained = config.mode != "rand"
        self.n_extra = config.extra_words if pretrained else 0
        self.n_train = vocab_size - self.n_extra  # rows of the training vocabulary
        if self.n_train < 2:
            raise ConfigError(f"embeddings.extra_words={config.extra_words} leaves no training words in a "
                              f"vocabulary of {vocab_size}")
        self.dim = config.dim * (2 if config.mode == "multichannel" else 1)
        # the table of the training words (static mode: of every word, and fixed)
        rows = vocab_size if config.mode == "static" else self.n_train
        self.table = nn.Embedding(rows, config.dim, padding_idx=pad_id)
        # Kim (2014), CNN_sentence: unknown/random vectors drawn from U[-0.25, 0.25]
        nn.init.uniform_(self.table.weight, -config.init_scale, config.init_scale)
        with torch.no_grad():
            self.table.weight[pad_id].zero_()
            # words never seen in training map to UNK; with min_freq 1 no training token does,
            # so UNK would stay a random vector injecting noise at test time: start it at zero
            self.table.weight[Vocab.unk_id].zero_()
        if config.mode == "static":
            self.table.weight.requires_grad_(False)
        # the fixed rows: extra words (non-static), every word (multichannel's static channel)
        self.fixed: nn.Parameter | None = None
        if config.mode == "multichannel" or (config.mode == "non-static" and self.n_extra):
            fixed_rows = vocab_size if config.mode == "multichannel" else self.n_extra
            self.fixed = nn.Parameter(torch.zeros(fixed_rows, config.dim), requires_grad=False)
        self.dropout = nn.Dropout(config.dropout) if config.dropout > 0 else nn.Identity()

    @torch.no_grad()
    def load_pretrained(self, vectors: torch.Tensor) -> None:
        """Initialise from (vocab_size, dim) vectors: training words first, then the extra words."""
        vocab_size = self.n_train + self.n_extra
        if tuple(vectors.shape) != (vocab_size, self.table.embedding_dim):
            raise ConfigError(f"pretrained vectors have shape {tuple(vectors.shape)}, the embedding expects "
                              f"({vocab_size}, {self.table.embedding_dim})")
        vectors = vectors.to(self.table.weight.dtype)
        if self.mode == "rand":
            raise ConfigError("embeddings.mode is 'rand': random vectors take no pretrained weights")
        self.table.weight.copy_(vectors[: self.table.num_embeddings])
        if self.mode == "multichannel":
            self.fixed.copy_(vectors)
        elif self.fixed is not None:  # non-static: the extra words stay fixed
            self.fixed.copy_(vectors[self.n_train:])

    def _trained(self, ids: torch.Tensor) -> torch.Tensor:
        """The fine-tuned channel: trained rows for training words, fixed rows for extra words."""
        if self.mode == "static" or self.n_extra == 0:
            return self.table(ids)
        extra = ids >= self.n_train  # (B, T)
        own = self.table(ids.clamp(max=self.n_train - 1))  # (B, T, E)
        if self.mode == "multichannel":
            fixed = F.embedding(ids, self.fixed)
        else:
            fixed = F.embedding((ids - self.n_train).clamp(min=0), self.fixed)
        return torch.where(extra[..., None], fixed, own)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        x = self._trained(ids)  # (B, T, E)
        if self.mode == "multichannel":
            x = torch.cat([F.embedding(ids, self.fixed), x], dim=-1)  # (B, T, 2E): static | non-static
        return self.dropout(x)
