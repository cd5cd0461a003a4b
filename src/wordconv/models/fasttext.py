"""Joulin et al. (2017), "Bag of Tricks for Efficient Text Classification": the fastText classifier.

    words -> word vectors (B, T, E)                 bigrams (w_t, w_t+1) -> hashed bucket ids (B, T-1)
                                                                         -> bigram vectors (B, T-1, E)
          -> mean over the text's words and bigrams together                             (B, E)
          -> [task head: linear]

A linear model over a bag of n-grams: no convolution, no nonlinearity, word order only through
the bigrams.  It is the baseline every results table carries, to show what the convolutions add
over counting words.

This is fastText's *architecture* trained by wordconv's Trainer (Adam, full softmax, our
tokenizer and vocabulary), not the fastText library: no hierarchical softmax, no learning-rate
decay, bigrams hashed from our vocabulary ids rather than from the strings.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field
from torch import nn

from wordconv.config import EmbeddingConfig, ModelParams
from wordconv.models.base import Encoder, EncoderOutput, WordEmbedding
from wordconv.models.registry import register_model

# fastText's Dictionary::addWordNgrams folds the next word into an n-gram hash with this multiplier
HASH_MULTIPLIER = 116049371


class FastTextConfig(ModelParams):
    type: Literal["fasttext"] = "fasttext"
    word_ngrams: Literal[1, 2] = 2  # Joulin et al. (2017), Table 1: bigrams add up to ~4 points over words alone
    # hash buckets for bigrams. fastText's default is 2M (Joulin et al. 2017 use 10-d vectors); with
    # 300-d vectors 2M rows would be 600M weights, 100k is 30M.  MR's ~94k distinct training bigrams
    # (most seen once) then often share a bucket: raise buckets, or lower embeddings.dim as the paper
    # does, to trade memory for fewer collisions
    buckets: int = Field(100_000, gt=0)
    dropout: float = Field(0.0, ge=0.0, lt=1.0)  # Joulin et al. (2017): a linear model, no dropout
    max_norm: float | None = Field(None, gt=0.0)  # Joulin et al. (2017): no weight constraint


def bigram_ids(ids: torch.Tensor, buckets: int) -> torch.Tensor:
    """(B, T) word ids -> (B, T-1) bucket ids of each pair (w_t, w_t+1): (a * M + b) mod buckets."""
    return (ids[:, :-1] * HASH_MULTIPLIER + ids[:, 1:]) % buckets


class FastText(Encoder):
    def __init__(self, params: FastTextConfig, emb: EmbeddingConfig, vocab_size: int, pad_id: int = 0):
        super().__init__()
        self.embedding = WordEmbedding(vocab_size, emb, pad_id)
        self.pad_id = pad_id
        self.buckets = params.buckets
        self.bigrams = None
        if params.word_ngrams == 2:
            # as wide as the word vectors (two channels may double that), so they can be averaged together
            self.bigrams = nn.Embedding(params.buckets, self.embedding.dim)
            dim = self.embedding.dim
            nn.init.uniform_(self.bigrams.weight, -1.0 / dim, 1.0 / dim)  # fastText: input rows U[-1/dim, 1/dim]
        self.output_dim = self.embedding.dim
        self.min_length = 1

    def forward(self, ids: torch.Tensor) -> EncoderOutput:
        # (B,) texts are padded at the end; an empty text keeps its first slot (a zero vector)
        lengths = (ids != self.pad_id).sum(dim=1).clamp(min=1)
        mask = torch.arange(ids.shape[1], device=ids.device)[None, :] < lengths[:, None]  # (B, T)
        total = (self.embedding(ids) * mask[:, :, None]).sum(dim=1)  # (B, E) sum of word vectors
        count = lengths.to(total.dtype)  # (B,)
        if self.bigrams is not None:
            pairs = mask[:, 1:]  # (B, T-1) both words real (padding only follows the text)
            g = self.bigrams(bigram_ids(ids, self.buckets))  # (B, T-1, E)
            total = total + (g * pairs[:, :, None]).sum(dim=1)  # (B, E) plus the bigram vectors
            count = count + pairs.sum(dim=1)
        pooled = total / count[:, None]  # (B, E) fastText averages words and n-grams together
        return EncoderOutput(states=None, mask=None, pooled=pooled)


@register_model("fasttext", FastTextConfig, "fastText-style linear baseline: averaged word + hashed bigram vectors")
def build_fasttext(params: FastTextConfig, emb: EmbeddingConfig, vocab_size: int, pad_id: int = 0) -> FastText:
    return FastText(params, emb, vocab_size, pad_id)
