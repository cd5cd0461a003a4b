"""Johnson & Zhang (2017), "Deep Pyramid Convolutional Neural Networks for Text Categorization".

    words -> embeddings (B, T, E)
          -> region embedding: conv1d(E -> F, width 3, "same")                       (B, T, F)
          -> x + conv(act(conv(act(x))))                 first block, no downsampling (B, T, F)
          -> repeat: x = maxpool(size 3, stride 2)(x)        the length halves       (B, ceil(T/2), F)
                     x = x + conv(act(conv(act(x))))         pre-activation, shortcut
             until the text is one position long (or max_blocks blocks)
          -> max over the remaining positions                                        (B, F)
          -> [task head: dropout 0.5, linear]

Every convolution has F filters and "same" padding, so each downsampling halves the work of the
next block: the whole pyramid costs less than twice its first block, however deep it goes.
The shortcuts are identities (no dimension matching), which is what lets it train deep.

Batch padding: states at padding positions are set to zero after every convolution (as if the
text were alone and the convolution padded it with zeros), to -inf before each pooling (as
max-pooling pads), and each text's length is halved with the pooling's own arithmetic.  Each
text stops downsampling once it is one position long, so a text's prediction never depends on
how long its batch neighbours are.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F
from pydantic import Field, field_validator
from torch import nn

from wordconv.config import EmbeddingConfig, ModelParams
from wordconv.models.base import Encoder, EncoderOutput, WordEmbedding
from wordconv.models.ops import multi_width_conv
from wordconv.models.registry import register_model
from wordconv.models.textcnn import Activation, make_activation


class DPCNNConfig(ModelParams):
    type: Literal["dpcnn"] = "dpcnn"
    num_filters: int = Field(250, gt=0)  # Johnson & Zhang (2017): 250 feature maps in every layer
    # Johnson & Zhang (2017): "3 conv, 250" in every block (Fig. 1); the region embedding too
    kernel_size: int = Field(3, gt=0)
    # downsampling blocks. Johnson & Zhang (2017): 15 weight layers = region embedding + the first
    # block's 2 convolutions + 6 downsampling blocks of 2 (texts up to 64 words reach one position).
    # None = until every text is one position long; the depth then depends on the text, so all
    # downsampling blocks share one pair of convolutions (as common PyTorch ports do)
    max_blocks: int | None = Field(6, ge=0)
    activation: Activation = "relu"  # Johnson & Zhang (2017): ReLU, before each convolution (pre-activation)
    dropout: float = Field(0.5, ge=0.0, lt=1.0)  # Johnson & Zhang (2017): dropout 0.5 on the input to the top layer
    max_norm: float | None = Field(None, gt=0.0)  # Johnson & Zhang (2017) use weight decay, not max-norm

    @field_validator("kernel_size")
    @classmethod
    def _odd(cls, v: int) -> int:
        if v % 2 == 0:
            raise ValueError(f"kernel_size must be odd (3, 5, ...) so each window is centred on its position; got {v}")
        return v


def _halve(lengths: torch.Tensor) -> torch.Tensor:
    """Lengths after maxpool(size 3, stride 2, padding 1): floor((L + 2 - 3) / 2) + 1 = ceil(L / 2)."""
    return (lengths - 1) // 2 + 1


def _mask(lengths: torch.Tensor, steps: int) -> torch.Tensor:
    """(B, steps, 1) True at a text's real positions."""
    return (torch.arange(steps, device=lengths.device)[None, :] < lengths[:, None])[:, :, None]


def same_conv(x: torch.Tensor, conv: nn.Conv1d, mask: torch.Tensor) -> torch.Tensor:
    """conv1d with k // 2 zeros at both ends (output length = input length), padding positions zeroed.

    (B, L, C_in) -> (B, L, C_out).  Run as one GEMM (models/ops.py): several times faster than
    nn.Conv1d on CPU for these small channel counts.
    """
    return (multi_width_conv(x, [conv.weight], conv.kernel_size[0] // 2)[0] + conv.bias) * mask


class PreActConv(nn.Module):
    """act -> conv1d(F -> F, width k, "same") -> zero the padding positions."""

    def __init__(self, channels: int, kernel_size: int, activation: str):
        super().__init__()
        self.act = make_activation(activation)
        self.conv = nn.Conv1d(channels, channels, kernel_size)  # holds the weights; applied by same_conv

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        # (B, L, F) -> (B, L, F); act(0) need not be 0 (sigmoid), so mask before the conv as well
        return same_conv(self.act(x) * mask, self.conv, mask)


class Block(nn.Module):
    """x + conv(act(conv(act(x)))): two pre-activation convolutions around an identity shortcut."""

    def __init__(self, channels: int, kernel_size: int, activation: str):
        super().__init__()
        self.conv1 = PreActConv(channels, kernel_size, activation)
        self.conv2 = PreActConv(channels, kernel_size, activation)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return x + self.conv2(self.conv1(x, mask), mask)  # (B, L, F)


class DPCNN(Encoder):
    def __init__(self, params: DPCNNConfig, emb: EmbeddingConfig, vocab_size: int, pad_id: int = 0):
        super().__init__()
        f, k = params.num_filters, params.kernel_size
        self.embedding = WordEmbedding(vocab_size, emb, pad_id)
        self.pad_id = pad_id
        # region embedding: each position becomes an F-vector of the k-word region around it
        self.region = nn.Conv1d(self.embedding.dim, f, k)  # applied "same" by same_conv
        self.first = Block(f, k, params.activation)
        self.max_blocks = params.max_blocks
        # per-block weights as in the paper; one shared block when the depth is open-ended
        n_weights = 1 if params.max_blocks is None else params.max_blocks
        self.blocks = nn.ModuleList(Block(f, k, params.activation) for _ in range(n_weights))
        self.output_dim = f
        self.min_length = 1  # every convolution is "same"-padded and pooling pads too

    def forward(self, ids: torch.Tensor) -> EncoderOutput:
        # (B,) texts are padded at the end; an empty text keeps its first (padding) slot
        lengths = (ids != self.pad_id).sum(dim=1).clamp(min=1)
        mask = _mask(lengths, ids.shape[1])  # (B, T, 1)
        x = self.embedding(ids) * mask  # (B, T, E)
        x = same_conv(x, self.region, mask)  # (B, T, F) region embedding
        x = self.first(x, mask)  # (B, T, F)
        depth = 0
        while self.max_blocks is None or depth < self.max_blocks:
            active = lengths > 1  # (B,) texts still longer than one position
            if not active.any():
                break
            # max-pooling pads with -inf: padding positions must not win over real (negative) values
            px = x.masked_fill(~mask, float("-inf")).transpose(1, 2)  # (B, F, L)
            # size 3, stride 2, one -inf at both ends: the length halves, rounded up
            px = F.max_pool1d(px, kernel_size=3, stride=2, padding=1).transpose(1, 2)  # (B, ceil(L/2), F)
            new_lengths = torch.where(active, _halve(lengths), lengths)
            new_mask = _mask(new_lengths, px.shape[1])  # (B, ceil(L/2), 1)
            px = px.masked_fill(~new_mask, 0.0)  # windows past the text (-inf, or one beyond an even length)
            block = self.blocks[0 if self.max_blocks is None else depth]
            y = block(px, new_mask)  # (B, ceil(L/2), F)
            # a text already one position long skips the block: its depth depends on itself alone
            x = torch.where(active[:, None, None], y, x[:, : y.shape[1]])
            lengths, mask = new_lengths, new_mask
            depth += 1
        pooled = x.masked_fill(~mask, float("-inf")).amax(dim=1)  # (B, F) max over what is left
        return EncoderOutput(states=None, mask=None, pooled=pooled)


@register_model("dpcnn", DPCNNConfig,
                "Johnson & Zhang (2017) deep pyramid CNN: conv blocks with shortcuts, length halved per block")
def build_dpcnn(params: DPCNNConfig, emb: EmbeddingConfig, vocab_size: int, pad_id: int = 0) -> DPCNN:
    return DPCNN(params, emb, vocab_size, pad_id)
