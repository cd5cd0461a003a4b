"""Knowledge distillation: a fine-tuned teacher trains a word CNN (Tang et al. 2019).

    teacher model dir + data -> transfer set (the labelled training texts, Tang et al.'s augmented
    copies, unlabelled in-domain sentences) -> teacher logits (computed once, cached on disk)
    -> the student trains on them through the ordinary Trainer -> an ordinary model directory

The student is a plain text classifier: ``predict``, ``explain``, ``export`` and ``serve`` work on it
unchanged.  What is distillation-specific lives here: the loss (:func:`distillation_loss`), the
augmentation (:func:`augment_texts`), the unlabelled reader (:func:`read_unlabeled`) and the teacher
cache (:class:`TeacherCache`, :func:`teacher_logits`).

Teacher outputs are cached per teacher (the checksum of its weights and labels) and per text (a
hash of it), in parts written atomically as they are computed: an interrupted run loses at most one
part, and a second run over the same texts does no teacher inference at all.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from rich.console import Console

from wordconv.errors import ConfigError, DataError

__all__ = ["MASK", "TeacherCache", "TransferSet", "augment_texts", "distill", "distillation_loss",
           "ensemble_logits", "read_unlabeled", "teacher_logits", "word_neighbours"]

MASK = "[MASK]"  # what a masked word becomes (BERT's mask token; a word of its own for the student)


def distillation_loss(logits: torch.Tensor, teacher: torch.Tensor, labels: torch.Tensor | None = None, *,
                      loss: str = "mse", temperature: float = 1.0, alpha: float = 0.0) -> torch.Tensor:
    """The student's loss against the teacher's logits, mixed with cross-entropy on gold labels.

    ``mse`` (Tang et al. 2019): the squared distance between the logit vectors, summed over the
    classes and averaged over the batch, ``mean_b ||z_s - z_t||^2``.
    ``kl`` (Hinton et al. 2015): ``T^2 * mean_b KL(softmax(z_t / T) || softmax(z_s / T))``; the
    ``T^2`` keeps the gradient's scale as T changes.
    With ``alpha`` > 0 the result is ``alpha * CE + (1 - alpha) * soft``, where CE is the mean
    cross-entropy over the rows whose ``labels`` are >= 0 (a label of -1 means no gold label; a
    batch without any keeps the soft term alone).
    """
    teacher = teacher.to(logits.dtype)
    if loss == "mse":
        soft = (logits - teacher).pow(2).sum(dim=-1).mean()
    elif loss == "kl":
        t = temperature
        soft = F.kl_div(F.log_softmax(logits / t, dim=-1), F.log_softmax(teacher / t, dim=-1),
                        reduction="batchmean", log_target=True) * t * t
    else:
        raise ConfigError(f"distill.loss: {loss!r} is not a distillation loss; use mse or kl")
    if alpha <= 0 or labels is None:
        return soft
    gold = labels >= 0
    if not bool(gold.any()):
        return (1 - alpha) * soft
    ce = F.cross_entropy(logits[gold], labels[gold])
    return alpha * ce + (1 - alpha) * soft


# --------------------------------------------------------------------------------------------
# the transfer set


def word_neighbours(path: str | Path, words: Sequence[str], k: int = 10) -> dict[str, list[str]]:
    """For each of ``words`` that the vector file has, its ``k`` nearest other ``words`` by cosine."""
    from wordconv.embeddings.vectors import load_vectors

    words = list(dict.fromkeys(w for w in words if w))
    pv = load_vectors(path, words, zero_rows=(), lowercase_fallback=False)
    idx = np.flatnonzero(pv.found)
    if len(idx) < 2:
        raise DataError(f"{path}: has vectors for {len(idx)} of the {len(words):,} training words; neighbour "
                        "replacement needs vectors in the training texts' language (or unset distill.neighbours)")
    m = torch.from_numpy(pv.matrix[idx])
    m = m / m.norm(dim=1, keepdim=True).clamp_min(1e-8)
    k = min(k, len(idx) - 1)
    out: dict[str, list[str]] = {}
    for lo in range(0, len(idx), 2048):  # (2048, V) similarities at a time
        sims = m[lo:lo + 2048] @ m.T
        sims[torch.arange(sims.shape[0]), torch.arange(lo, lo + sims.shape[0])] = -2.0  # not itself
        top = sims.topk(k, dim=1).indices.tolist()
        for row, near in enumerate(top):
            out[words[idx[lo + row]]] = [words[idx[j]] for j in near]
    return out


def augment_texts(texts: Sequence[str], copies: int, *, seed: int, p_mask: float = 0.1, p_replace: float = 0.1,
                  p_ngram: float = 0.25, ngram_max: int = 5, neighbours: dict[str, list[str]] | None = None
                  ) -> list[str]:
    """Tang et al.'s augmentation: ``copies`` perturbed versions of each text (whitespace words).

    Each word is, independently, masked (``p_mask``: it becomes :data:`MASK`), replaced
    (``p_replace``: by one of its ``neighbours``, or where it has none by a word drawn from the
    texts' unigram distribution) or kept; then with ``p_ngram`` the copy is cut to a random n-gram
    of it (n from 1 to ``ngram_max``).  Copies equal to an original text or to an earlier copy are
    dropped, so fewer than ``len(texts) * copies`` may come back.  Seeded: the same arguments give
    the same list.  The copies carry no labels: the teacher labels them.
    """
    if copies <= 0:
        return []
    rng = random.Random(seed)
    split = [t.split() for t in texts]
    counts = Counter(w for ws in split for w in ws)
    vocab = list(counts)
    cum = np.cumsum([counts[w] for w in vocab]).tolist()
    seen = set(texts)
    out: list[str] = []
    for words in split:
        if not words:
            continue
        for _ in range(copies):
            new = []
            for w in words:
                r = rng.random()
                if r < p_mask:
                    new.append(MASK)
                elif r < p_mask + p_replace:
                    near = neighbours.get(w) if neighbours else None
                    new.append(rng.choice(near) if near else rng.choices(vocab, cum_weights=cum)[0])
                else:
                    new.append(w)
            if len(new) > 1 and rng.random() < p_ngram:
                n = rng.randint(1, min(ngram_max, len(new)))
                start = rng.randint(0, len(new) - n)
                new = new[start:start + n]
            text = " ".join(new)
            if text not in seen:
                seen.add(text)
                out.append(text)
    return out


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=\S)")
_MARKUP = re.compile(r"<br\s*/?>|<[a-z]+\s*/?>", re.IGNORECASE)


def read_unlabeled(spec: str | Path, data_dir: str | Path | None = None, *, subdir: str | None = None,
                   limit: int | None = None, seed: int = 13, sentences: bool = True, min_words: int = 3,
                   exclude: Sequence[str] = ()) -> list[str]:
    """Unlabelled in-domain texts for the transfer set, from any corpus ``wordconv embeddings train``
    reads (:func:`wordconv.embeddings.word2vec.read_corpus`), e.g. IMDB's 50,000 unlabelled reviews
    (``aclImdb_v1_unsup.tar.gz`` with ``subdir="aclImdb/train/unsup"``).

    With ``sentences`` each document is split into sentences (after ``.``, ``!`` or ``?``; HTML line
    breaks removed).  Pieces under ``min_words`` words, duplicates and texts in ``exclude`` are
    dropped; with ``limit``, a seeded random sample of that many is kept, in sample order.
    """
    from wordconv.embeddings.word2vec import read_corpus

    docs = read_corpus(spec, data_dir, subdir=subdir)
    excluded = set(exclude)
    seen: set[str] = set()
    out: list[str] = []
    for doc in docs:
        pieces = _SENTENCE_END.split(_MARKUP.sub(" ", doc)) if sentences else [doc]
        for piece in pieces:
            piece = " ".join(piece.split())
            if len(piece.split()) >= min_words and piece not in seen and piece not in excluded:
                seen.add(piece)
                out.append(piece)
    if not out:
        raise DataError(f"{spec}: no unlabelled text of {min_words} words or more; pass a corpus with text in it")
    if limit is not None and limit < len(out):
        out = random.Random(seed).sample(out, limit)
    return out


# --------------------------------------------------------------------------------------------
# the teacher and its cache


def text_key(text: str) -> bytes:
    """The cache key of a text: the first 16 bytes of its UTF-8 SHA-256."""
    return hashlib.sha256(text.encode("utf-8")).digest()[:16]


def teacher_id(teacher_dir: str | Path, meta: dict, labels: Sequence[str]) -> str:
    """What identifies a teacher's outputs: its weights' checksum (from meta.json, else computed)
    and its label order."""
    from wordconv.data.download import sha256_file

    weights = (meta.get("checksums") or {}).get("model.safetensors") or sha256_file(
        Path(teacher_dir) / "model.safetensors")
    return hashlib.sha256(json.dumps([weights, list(labels)]).encode()).hexdigest()[:24]


def cache_root(configured: str | None) -> Path:
    if configured:
        return Path(configured).expanduser()
    if os.environ.get("WORDCONV_CACHE"):
        return Path(os.environ["WORDCONV_CACHE"]).expanduser() / "teacher"
    import platformdirs

    return Path(platformdirs.user_cache_dir("wordconv")) / "teacher"


class TeacherCache:
    """One teacher's logits by text key, in ``part-*.safetensors`` files under ``root/teacher_id``.

    Each part holds ``keys`` (N, 16) uint8 and ``logits`` (N, C) float32 and is written atomically;
    a part that cannot be read is skipped (its texts are computed again) with a note.
    """

    def __init__(self, root: str | Path, teacher: str, num_labels: int, console: Console | None = None):
        from safetensors.numpy import load_file

        self.dir = Path(root) / teacher
        self.num_labels = num_labels
        self.table: dict[bytes, np.ndarray] = {}
        self.parts = 0
        for part in sorted(self.dir.glob("part-*.safetensors")):
            try:
                data = load_file(str(part))
                keys, logits = data["keys"], data["logits"]
                if keys.shape[0] != logits.shape[0] or logits.shape[1:] != (num_labels,):
                    raise ValueError(f"shapes {keys.shape} and {logits.shape}")
            except Exception as err:  # a damaged part: recompute its texts
                if console is not None:
                    console.print(f"[yellow]note:[/] skipping the unreadable teacher cache part {part} ({err}); "
                                  "its texts are computed again")
                continue
            self.parts += 1
            for key, row in zip(keys, logits):
                self.table[key.tobytes()] = row

    def __contains__(self, key: bytes) -> bool:
        return key in self.table

    def __len__(self) -> int:
        return len(self.table)

    def add(self, keys: Sequence[bytes], logits: np.ndarray) -> None:
        from safetensors.numpy import save_file

        from wordconv.modeldir import fsync_dir

        self.dir.mkdir(parents=True, exist_ok=True)
        arr = np.frombuffer(b"".join(keys), dtype=np.uint8).reshape(len(keys), 16)
        part = self.dir / f"part-{time.time_ns()}-{os.getpid()}.safetensors"
        tmp = part.with_name(part.name + ".tmp")
        save_file({"keys": arr, "logits": np.ascontiguousarray(logits, dtype=np.float32)}, str(tmp))
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, part)
        fsync_dir(self.dir)
        for key, row in zip(keys, logits):
            self.table[key] = np.asarray(row, dtype=np.float32)


@torch.inference_mode()
def _run_teacher(art, texts: Sequence[str], batch_size: int, device: torch.device, bf16: bool) -> np.ndarray:
    from wordconv.data.text import Preprocessor
    from wordconv.tasks.base import EncodedTexts, text_ids
    from wordconv.training.trainer import autocast

    model = art.model
    to_ids = text_ids(model.encoder, Preprocessor(art.config.preprocessing), art.vocab)
    data = EncodedTexts(to_ids.encode_many(list(texts)), None, model.encoder.min_length, to_ids.pad_id)
    data.device = device
    out = np.empty((len(texts), len(art.labels)), dtype=np.float32)
    for batch in data.batches(batch_size, shuffle=False):
        with autocast(device, bf16):
            logits = model(**batch)["logits"]
        out[batch["index"].numpy()] = logits.float().cpu().numpy()
    return out


def teacher_logits(teacher_dir: str | Path, texts: Sequence[str], *, cache_dir: str | None = None,
                   batch_size: int = 64, device: str = "auto", progress: bool = True,
                   console: Console | None = None, chunk: int = 2048, art: Any = None
                   ) -> tuple[torch.Tensor, dict]:
    """The teacher's logits (N, C) for ``texts``, from the cache where it has them, else computed in
    length-sorted chunks of ``chunk`` texts (each chunk cached as soon as it is done: resumable),
    batched, in bf16 where the device computes it natively.  Returns the logits and a summary
    (texts, computed, cached, seconds, sentences/s of the teacher)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn

    from wordconv.modeldir import load_artifact
    from wordconv.training.trainer import native_bf16, resolve_device

    console = console or Console(stderr=True)
    art = art if art is not None else load_artifact(teacher_dir)
    ident = teacher_id(teacher_dir, art.meta, art.labels)
    cache = TeacherCache(cache_root(cache_dir), ident, len(art.labels), console)
    keys = [text_key(t) for t in texts]
    todo: dict[bytes, str] = {}
    for key, text in zip(keys, texts):
        if key not in cache and key not in todo:
            todo[key] = text
    pending = sorted(todo.items(), key=lambda kv: len(kv[1]))  # similar lengths together: less padding
    seconds = 0.0
    if pending:
        dev = resolve_device(device)
        art.model.to(dev).eval()
        bf16 = native_bf16(dev)
        with Progress(TextColumn("[bold]teacher"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      TimeRemainingColumn(), console=console, disable=not progress, transient=True) as bar:
            job = bar.add_task("teacher", total=len(pending))
            for lo in range(0, len(pending), chunk):
                part = pending[lo:lo + chunk]
                t0 = time.perf_counter()
                logits = _run_teacher(art, [t for _, t in part], batch_size, dev, bf16)
                seconds += time.perf_counter() - t0
                cache.add([k for k, _ in part], logits)
                bar.advance(job, len(part))
    out = torch.from_numpy(np.stack([cache.table[k] for k in keys])) if keys else torch.empty(0, len(art.labels))
    summary = {"texts": len(texts), "computed": len(pending), "cached": len(set(keys)) - len(pending),
               "teacher_seconds": round(seconds, 3), "cache": str(cache.dir)}
    if pending and seconds > 0:
        summary["teacher_sentences_per_second"] = round(len(pending) / seconds, 1)
    return out, summary


def ensemble_logits(teachers: Sequence[str | Path], arts: Sequence[Any], texts: Sequence[str], d: Any,
                    device: str, progress: bool, console: Console) -> tuple[torch.Tensor, dict, list[str]]:
    """The mean of the teachers' logits for ``texts`` (columns in the first teacher's label order),
    each teacher's from its own cache; a summary that adds up their work; and the teachers' ids."""
    outs, summaries = [], []
    for t, a in zip(teachers, arts):
        logits, summary = teacher_logits(t, texts, cache_dir=d.cache_dir, batch_size=d.teacher_batch_size,
                                         device=device, progress=progress, console=console, art=a)
        outs.append(logits[:, [a.labels.index(name) for name in arts[0].labels]])
        summaries.append(summary)
    idents = [s["cache"].rsplit("/", 1)[-1] for s in summaries]
    if len(outs) == 1:
        return outs[0], summaries[0], idents
    seconds = sum(s["teacher_seconds"] for s in summaries)
    computed = sum(s["computed"] for s in summaries)
    summary = {"texts": len(texts), "computed": computed, "cached": sum(s["cached"] for s in summaries),
               "teacher_seconds": round(seconds, 3), "teachers": len(outs),
               "cache": ", ".join(s["cache"] for s in summaries)}
    if computed and seconds > 0:
        summary["teacher_sentences_per_second"] = round(computed / seconds, 1)
    return torch.stack(outs).mean(0), summary, idents


# --------------------------------------------------------------------------------------------
# distill()


@dataclass
class TransferSet:
    """What the student trains on: texts, gold label ids (-1: none), the teacher's logits (N, C)."""

    texts: list[str]
    gold: list[int]
    logits: torch.Tensor
    loss: dict = field(default_factory=dict)  # distillation_loss keywords: loss, temperature, alpha
    sizes: dict = field(default_factory=dict)  # labelled / augmented / unlabelled

    def __post_init__(self) -> None:
        if not (len(self.texts) == len(self.gold) == len(self.logits)):
            raise ValueError(f"transfer set: {len(self.texts)} texts, {len(self.gold)} labels, "
                             f"{len(self.logits)} logit rows")


def distill(teacher: str | Path | Sequence[str | Path], student: str | None = "textcnn", data: str | None = None,
            output: str | Path | None = None, *, config: Any = None, overrides: list[str] | dict | None = None,
            unlabeled: str | None = None, augment: int | None = None, fold: int | None = None,
            epochs: int | None = None, seed: int | None = None, data_dir: str | None = None,
            overwrite: bool = False, progress: bool | None = None, resume: bool = False,
            console: Console | None = None, label_only: bool = False):
    """Distil the fine-tuned classifier in ``teacher`` (a model directory) into a ``student`` word
    model trained on ``data`` (default: the teacher's dataset and fold), and save it to ``output``.

    ``teacher`` may be several model directories (e.g. one encoder fine-tuned with several seeds):
    the ensemble's logits, their mean, are what the student learns; each teacher's outputs are cached
    on their own, and ``meta.json`` records the ensemble's test accuracy beside each teacher's.

    The transfer set is the labelled training texts, ``augment`` perturbed copies of each
    (:func:`augment_texts`) and the ``unlabeled`` corpus (:func:`read_unlabeled`); the teacher
    labels all of them once (cached).  The student trains on :func:`distillation_loss` (settings in
    the config's ``distill`` section), picks its best epoch on gold dev accuracy, is evaluated on the
    test split and saved as an ordinary model directory; ``meta.json`` records the distillation.
    With ``label_only`` it stops once the teachers' outputs for the transfer set are cached and
    returns their summary (dict): label once, then train students with other seeds or settings
    (``distill.transfer_seed`` keeps their transfer set the same) without teacher inference.

    >>> student = wordconv.distill("runs/sst2-minilm", "textcnn", output="runs/sst2-student",
    ...                            augment=10)                                  # doctest: +SKIP
    """
    from wordconv.modeldir import check_output_dir, load_artifact
    from wordconv.pipeline import checkpoint_dir, finish, fit, is_subword, load_splits, resolve_config

    console = console or Console(stderr=True)
    t_start = time.perf_counter()
    teachers = [teacher] if isinstance(teacher, (str, Path)) else list(teacher)
    if not teachers:
        raise ConfigError("distill: no teacher given; pass a fine-tuned text classifier's model directory")
    teacher_arts = [load_artifact(t) for t in teachers]
    for t, a in zip(teachers, teacher_arts):
        if a.config.task != "textcat":
            raise ConfigError(f"{t}: the teacher is a {a.config.task} model; distillation takes a text "
                              "classifier (task textcat)")
        if sorted(a.labels) != sorted(teacher_arts[0].labels):
            raise ConfigError(f"{t}: this teacher predicts {', '.join(a.labels)} but {teachers[0]} predicts "
                              f"{', '.join(teacher_arts[0].labels)}; an ensemble's teachers must share their labels")
    teacher, teacher_art = teachers[0], teacher_arts[0]
    if data is None and config is None:  # the teacher's data as it was split (fold, files, fields, seeds)
        config = {"data": teacher_art.config.data.model_dump(mode="json")}
    sets: dict[str, Any] = {}
    if unlabeled is not None:
        sets["distill.unlabeled"] = unlabeled
    if augment is not None:
        sets["distill.augment"] = augment
    if isinstance(overrides, dict):
        sets.update(overrides)
    elif overrides:
        from wordconv.config import _parse_overrides

        sets.update(_parse_overrides(overrides))
    cfg = resolve_config(config, sets, data=data, model=student, fold=fold, epochs=epochs, seed=seed,
                         data_dir=data_dir, progress=progress)
    if cfg.task != "textcat" or is_subword(cfg) or cfg.data.stream:
        raise ConfigError("the student must be a word-level text classifier (task textcat, a word model such as "
                          "textcnn, data.stream=false)")
    if output is not None and not label_only:
        check_output_dir(output, overwrite)
    d = cfg.distill
    show = cfg.training.progress
    splits = load_splits(cfg)
    if not splits.train:
        raise DataError(f"{splits.name}: the train split is empty; distillation needs the labelled training texts")
    if sorted(splits.labels) != sorted(teacher_art.labels):
        raise DataError(f"{splits.name} has the labels {', '.join(splits.labels)} but the teacher {teacher} predicts "
                        f"{', '.join(teacher_art.labels)}; distil on the data the teacher was trained for")
    splits = replace(splits, labels=list(teacher_art.labels))  # the student's logits line up with the teacher's
    index = {name: i for i, name in enumerate(teacher_art.labels)}
    labelled = [ex.text for ex in splits.train]
    gold = [index[ex.label] for ex in splits.train]
    neighbours = None
    if d.augment and d.p_replace > 0 and d.neighbours:
        from wordconv.embeddings.catalog import resolve_vectors

        path = resolve_vectors(d.neighbours, cfg.data.data_dir, download=True)
        neighbours = word_neighbours(path, [w for t in labelled for w in t.split()], d.neighbours_k)
    transfer_seed = cfg.training.seed if d.transfer_seed is None else d.transfer_seed
    augmented = augment_texts(labelled, d.augment, seed=transfer_seed, p_mask=d.p_mask, p_replace=d.p_replace,
                              p_ngram=d.p_ngram, ngram_max=d.ngram_max, neighbours=neighbours)
    extra: list[str] = []
    if d.unlabeled:
        held_out = [ex.text for ex in splits.dev + splits.test]  # never let the test or dev texts in
        extra = read_unlabeled(d.unlabeled, cfg.data.data_dir, subdir=d.unlabeled_subdir, limit=d.unlabeled_max,
                               seed=transfer_seed, sentences=d.unlabeled_sentences,
                               exclude=[*labelled, *augmented, *held_out])
    texts = labelled + augmented + extra
    if show:
        named = str(teacher) if len(teachers) == 1 else f"ensemble of {len(teachers)}: " + ", ".join(map(str, teachers))
        console.print(f"transfer set: {len(labelled):,} labelled + {len(augmented):,} augmented + {len(extra):,} "
                      f"unlabelled texts; teacher {named}")
    logits, summary, idents = ensemble_logits(teachers, teacher_arts, texts, d, cfg.training.device, show, console)
    if show:
        console.print(f"teacher logits: {summary['computed']:,} computed, {summary['cached']:,} from the cache "
                      f"({summary['cache']})")
    sizes = {"labelled": len(labelled), "augmented": len(augmented), "unlabeled": len(extra)}
    if label_only:
        return dict(summary, transfer=sizes)

    def test_of(a) -> dict | None:
        return {k: a.metrics[k] for k in ("accuracy", "f1_macro") if k in (a.metrics or {})} or None

    teacher_facts = {"teacher_model": teacher_art.config.model.type, "teacher_test": test_of(teacher_art)}
    if len(teachers) > 1:
        # what the student learns is the ensemble: measure it on the test split (each teacher's outputs cached)
        teacher_facts["teacher_test"] = None
        if splits.test:
            test_logits, _, _ = ensemble_logits(teachers, teacher_arts, [ex.text for ex in splits.test], d,
                                                cfg.training.device, False, console)
            from wordconv.evaluation.metrics import classification_metrics

            m = classification_metrics([index[ex.label] for ex in splits.test], test_logits.argmax(-1).tolist(),
                                       teacher_art.labels)
            teacher_facts["teacher_test"] = {"accuracy": m["accuracy"], "f1_macro": m["f1_macro"]}
        teacher_facts["teachers"] = [{"teacher": str(t), "teacher_id": i, "teacher_test": test_of(a)}
                                     for t, i, a in zip(teachers, idents, teacher_arts)]
    del teacher_art, teacher_arts  # the teachers' weights are not needed from here on
    transfer = TransferSet(texts, gold + [-1] * (len(augmented) + len(extra)), logits,
                           loss={"loss": d.loss, "temperature": d.temperature, "alpha": d.alpha},
                           sizes=sizes)
    ckpt = checkpoint_dir(output) if output is not None else None
    art, result = fit(cfg, splits, console, ckpt, resume, transfer=transfer)
    art.meta["distillation"] = {
        "teacher": str(teacher) if len(teachers) == 1 else [str(t) for t in teachers],
        "teacher_id": idents[0] if len(teachers) == 1 else idents, **teacher_facts,
        "transfer": transfer.sizes, "teacher_outputs": {k: v for k, v in summary.items() if k != "cache"},
        **transfer.loss, "seconds": round(time.perf_counter() - t_start, 3),
    }
    return finish(cfg, splits, art, result, output, overwrite, ckpt)

