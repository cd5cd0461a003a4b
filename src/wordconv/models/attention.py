"""A CNN whose features are pooled by attention instead of max-pooling.

    words -> embeddings (B, T, E)
          -> for each width w: conv1d(E -> F, width w, "same") -> activation     (B, T, F)
          -> concat: one feature vector per word                                   (B, T, H = F * len(widths))
          -> [multihead only] h + MultiheadAttention(h, h, h)   words see words    (B, T, H)
          -> additive attention pooling (Bahdanau et al. 2015; Yang et al. 2016):
                 u_t = tanh(W h_t + b)                                             (B, T, A)
                 a   = softmax_t(v . u_t)          over the text's real words     (B, T)
                 pooled = sum_t a_t h_t                                            (B, H)
          -> [task head: dropout 0.5, linear, max-norm 3]

Where 1-max pooling keeps one window per filter, attention pooling mixes the whole feature
vectors of the words it weighs most; the weights come out in ``EncoderOutput.attention`` (B, T)
to show which words decided.  With ``attention: multihead`` the per-head self-attention maps of
the last forward pass are kept in ``encoder.head_attention`` (B, heads, T, T).

Each width's window is centred on its word ((w - 1) // 2 words before, w // 2 after), so the
feature vector at t belongs to word t.  Padding words are zeroed before the convolutions (as
the convolution's own zero padding would be), and get exactly zero attention weight.
"""

from __future__ import annotations

from typing import Literal

import torch
from pydantic import Field, field_validator, model_validator
from torch import nn

from wordconv.config import EmbeddingConfig, ModelParams
from wordconv.models.base import Encoder, EncoderOutput, WordEmbedding
from wordconv.models.ops import multi_width_conv
from wordconv.models.registry import register_model
from wordconv.models.textcnn import Activation, check_filter_widths, make_activation


class AttentionCNNConfig(ModelParams):
    type: Literal["cnn-attention"] = "cnn-attention"
    filter_widths: list[int] = [3, 4, 5]  # Kim (2014): windows of 3, 4 and 5 words
    num_filters: int = Field(100, gt=0)  # Kim (2014): 100 feature maps per width
    activation: Activation = "relu"  # Kim (2014): ReLU
    # "additive": Yang et al. (2016) word attention over the conv features; "multihead": a
    # self-attention layer (Vaswani et al. 2017) lets words exchange features first
    attention: Literal["additive", "multihead"] = "additive"
    attention_dim: int = Field(100, gt=0)  # Yang et al. (2016): 100-dimensional word attention
    heads: int = Field(4, gt=0)  # multihead only: 300 features / 4 = 75 per head, near Vaswani's 64
    dropout: float = Field(0.5, ge=0.0, lt=1.0)  # Kim (2014): dropout 0.5 on the pooled features
    max_norm: float | None = Field(3.0, gt=0.0)  # Kim (2014): l2 max-norm 3 on output-layer weights

    _widths = field_validator("filter_widths")(classmethod(lambda cls, v: check_filter_widths(v)))

    @model_validator(mode="after")
    def _heads_divide(self) -> "AttentionCNNConfig":
        features = self.num_filters * len(self.filter_widths)
        if self.attention == "multihead" and features % self.heads:
            raise ValueError(f"heads={self.heads} must divide num_filters x len(filter_widths) = {features} "
                             f"(each head gets an equal share of the features)")
        return self


class AdditivePooling(nn.Module):
    """pooled = sum_t a_t h_t with a = softmax(v . tanh(W h_t + b)) over real positions."""

    def __init__(self, dim: int, attention_dim: int):
        super().__init__()
        self.proj = nn.Linear(dim, attention_dim)  # W, b
        self.context = nn.Linear(attention_dim, 1, bias=False)  # v: Yang et al.'s learned "context vector"

    def forward(self, h: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        u = torch.tanh(self.proj(h))  # (B, T, A)
        scores = self.context(u).squeeze(-1)  # (B, T)
        weights = torch.softmax(scores.masked_fill(~mask, float("-inf")), dim=1)  # (B, T) exactly 0 on padding
        return torch.einsum("bt,bth->bh", weights, h), weights  # (B, H), (B, T)


class AttentionCNN(Encoder):
    def __init__(self, params: AttentionCNNConfig, emb: EmbeddingConfig, vocab_size: int, pad_id: int = 0):
        super().__init__()
        self.embedding = WordEmbedding(vocab_size, emb, pad_id)
        self.pad_id = pad_id
        widths = params.filter_widths
        self.convs = nn.ModuleList(nn.Conv1d(self.embedding.dim, params.num_filters, w) for w in widths)
        self.act = make_activation(params.activation)
        # zeros at both ends so every width has a window centred on every word
        self.pad = max(w // 2 for w in widths)
        hidden = params.num_filters * len(widths)  # H
        self.self_attention = None
        if params.attention == "multihead":
            self.self_attention = nn.MultiheadAttention(hidden, params.heads, batch_first=True)
        self.pooling = AdditivePooling(hidden, params.attention_dim)
        self.head_attention: torch.Tensor | None = None  # (B, heads, T, T) of the last forward, multihead only
        self.output_dim = hidden
        self.min_length = 1

    def forward(self, ids: torch.Tensor) -> EncoderOutput:
        steps = ids.shape[1]
        # (B,) texts are padded at the end; an empty text keeps its first slot so softmax has a word
        lengths = (ids != self.pad_id).sum(dim=1).clamp(min=1)
        mask = torch.arange(steps, device=ids.device)[None, :] < lengths[:, None]  # (B, T)
        x = self.embedding(ids) * mask[:, :, None]  # (B, T, E)
        maps = multi_width_conv(x, [conv.weight for conv in self.convs], self.pad)  # each (B, T+2pad-w+1, F)
        features = []
        for conv, c in zip(self.convs, maps):
            w = conv.kernel_size[0]
            start = self.pad - (w - 1) // 2  # the window whose centre is word 0
            features.append(self.act(c[:, start:start + steps] + conv.bias))  # (B, T, F)
        h = torch.cat(features, dim=2) * mask[:, :, None]  # (B, T, H) zero at padding
        if self.self_attention is not None:
            z, head_maps = self.self_attention(h, h, h, key_padding_mask=~mask, need_weights=True,
                                               average_attn_weights=False)  # (B, T, H), (B, heads, T, T)
            self.head_attention = head_maps.detach()
            h = (h + z) * mask[:, :, None]  # residual (Vaswani et al. 2017); padding stays zero
        pooled, weights = self.pooling(h, mask)  # (B, H), (B, T)
        return EncoderOutput(states=h, mask=mask, pooled=pooled, attention=weights)


@register_model("cnn-attention", AttentionCNNConfig,
                "CNN features per word pooled by additive (or multi-head self-) attention; weights returned")
def build_attention_cnn(params: AttentionCNNConfig, emb: EmbeddingConfig, vocab_size: int,
                        pad_id: int = 0) -> AttentionCNN:
    return AttentionCNN(params, emb, vocab_size, pad_id)
