"""Tiny randomly initialised Hugging Face models, written by the tests (no hub, seconds on CPU).

A BERT with a WordPiece tokenizer and a GPT-2 with a word-level tokenizer, both over the tiny
sentences' words in a fixed order (a trained tokenizer breaks frequency ties differently from one
process to the next), saved as ordinary local model folders.
"""

from __future__ import annotations

from pathlib import Path

from tiny import FILLER, FOOD, NEG, POS, SPORT

WORDS = POS + NEG + FILLER + SPORT + FOOD


def _vocab(specials: list[str]) -> dict[str, int]:
    words = specials + [w for i, w in enumerate(WORDS) if w not in WORDS[:i]]
    return {w: i for i, w in enumerate(words)}


def write_tiny_bert(folder: Path, layers: int = 2, hidden: int = 32, seed: int = 0, positions: int = 64) -> Path:
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import BertConfig, BertModel, BertTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok = Tokenizer(models.WordPiece(_vocab(specials), unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", tok.token_to_id("[CLS]")), ("[SEP]", tok.token_to_id("[SEP]"))])
    fast = BertTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                             sep_token="[SEP]", mask_token="[MASK]")
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=tok.get_vocab_size(), hidden_size=hidden, num_hidden_layers=layers,
                        num_attention_heads=2, intermediate_size=2 * hidden, max_position_embeddings=positions)
    folder.mkdir(parents=True, exist_ok=True)
    BertModel(config).save_pretrained(folder)
    fast.save_pretrained(folder)
    return folder


def write_tiny_gpt2(folder: Path, layers: int = 2, hidden: int = 32, seed: int = 0) -> Path:
    import torch
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import GPT2Config, GPT2Model, PreTrainedTokenizerFast

    tok = Tokenizer(models.WordLevel(_vocab(["<|endoftext|>"]), unk_token="<|endoftext|>"))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>", bos_token="<|endoftext|>",
                                   unk_token="<|endoftext|>")
    torch.manual_seed(seed)
    config = GPT2Config(vocab_size=tok.get_vocab_size(), n_embd=hidden, n_layer=layers, n_head=2, n_positions=64,
                        bos_token_id=fast.eos_token_id, eos_token_id=fast.eos_token_id)
    folder.mkdir(parents=True, exist_ok=True)
    GPT2Model(config).save_pretrained(folder)
    fast.save_pretrained(folder)
    return folder


def write_tiny_bert_words(folder: Path, words: list[str], layers: int = 2, hidden: int = 32, seed: int = 0,
                          positions: int = 64) -> Path:
    """A tiny uncased BERT whose WordPiece vocabulary holds ``words`` (lowercased) and the single letters
    (also as ``##`` continuations), so an unknown word splits into several pieces."""
    import string

    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import BertConfig, BertModel, BertTokenizerFast

    specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    entries = specials + sorted({w.lower() for w in words}) + list(string.ascii_lowercase) + [
        "##" + c for c in string.ascii_lowercase]
    vocab: dict[str, int] = {}
    for w in entries:
        vocab.setdefault(w, len(vocab))
    tok = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", pair="[CLS] $A [SEP] $B [SEP]",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])])
    fast = BertTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                             sep_token="[SEP]", mask_token="[MASK]")
    torch.manual_seed(seed)
    config = BertConfig(vocab_size=len(vocab), hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=2,
                        intermediate_size=2 * hidden, max_position_embeddings=positions)
    folder.mkdir(parents=True, exist_ok=True)
    BertModel(config).save_pretrained(folder)
    fast.save_pretrained(folder)
    return folder
