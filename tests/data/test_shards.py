"""Sharded, memory-mapped token ids: the same batches as in-memory data, a safe cache, training within a memory limit."""

from __future__ import annotations

import json
import math
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from wordconv.config import build_config
from wordconv.data.readers import Example, iter_examples, read_examples
from wordconv.data.shards import (
    ShardedTexts,
    TokenTable,
    cache_key,
    label_names,
    read_manifest,
    shard_cache,
    token_counts,
    tokenizer_settings,
    vocab_from_counts,
    write_shards,
)
from wordconv.data.text import PreprocessConfig, Preprocessor
from wordconv.data.vocab import Vocab
from wordconv.errors import ConfigError, DataError
from wordconv.pipeline import build_model
from wordconv.tasks.base import WordIds
from wordconv.tasks.multilabel import MultiLabelClassification
from wordconv.tasks.regression import Regression
from wordconv.tasks.textcat import TextClassification
from wordconv.training.trainer import Trainer

from tiny import make_multilabel, make_scored, make_sentences, write_labelfirst

PRE = PreprocessConfig()


def _sentences(tmp_path: Path, n: int = 60, seed: int = 1) -> tuple[Path, list[Example]]:
    path = write_labelfirst(tmp_path / "train.txt", make_sentences(n, seed))
    return path, read_examples(path)


def _shards(path: Path, directory: Path, **kwargs) -> Path:
    return write_shards(iter_examples(path), TokenTable(Preprocessor(PRE)), directory, **kwargs)


def _rows(data, batch_size: int, shuffle: bool, seed: int = 0) -> tuple[list[dict], dict[int, tuple]]:
    """The batches, and each text's (unpadded ids, label) by its index."""
    batches = list(data.batches(batch_size, shuffle=shuffle, generator=torch.Generator().manual_seed(seed)))
    by_index = {}
    for batch in batches:
        for row, i in enumerate(batch["index"].tolist()):
            assert i not in by_index, f"index {i} yielded twice"
            ids = batch["ids"][row, : batch["lengths"][row]].tolist()
            by_index[i] = (ids, batch["labels"][row].tolist() if "labels" in batch else None)
    return batches, by_index


# --------------------------------------------------------------------------------------------
# the same data as in memory


@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("shard_tokens", [30, 10**6])
def test_batches_match_encoded_texts(tmp_path, shuffle, shard_tokens):
    path, examples = _sentences(tmp_path)
    directory = _shards(path, tmp_path / "shards", shard_tokens=shard_tokens, chunk_size=7)
    manifest = read_manifest(directory)
    assert (len(manifest["shards"]) > 5) == (shard_tokens == 30)
    pre = Preprocessor(PRE)
    vocab = vocab_from_counts(token_counts(directory))
    assert vocab == Vocab.build([pre(ex.text) for ex in examples])  # counted while tokenizing: the same vocabulary
    task = TextClassification(label_names(directory))
    sharded = ShardedTexts(directory, vocab=vocab, targets=lambda exs: task.targets(exs, "train"), min_length=5)
    memory = task.encode(examples, WordIds(pre, vocab), 5, "train")
    assert len(sharded) == len(memory) == 60 and sharded.num_tokens() == memory.num_tokens()
    assert sharded.labels == memory.labels

    batches, got = _rows(sharded, 8, shuffle)
    _, expected = _rows(memory, 8, shuffle)
    assert got == expected  # every text exactly once, with its ids and label
    assert len(batches) == math.ceil(60 / 8) and all(len(b["index"]) == 8 for b in batches[:-1])
    reference = next(memory.batches(8, shuffle=False))
    for batch in batches:
        assert batch.keys() == reference.keys()
        assert all(batch[k].dtype == reference[k].dtype for k in batch)
        width = max(int(batch["lengths"].max()), 5)  # pad_batch's rule: the longest text, at least min_length
        assert batch["ids"].shape == (len(batch["index"]), width)
        pad = torch.arange(width)[None, :] >= batch["lengths"][:, None]
        assert (batch["ids"][pad] == 0).all()
    if shuffle:
        again, _ = _rows(sharded, 8, shuffle, seed=0)
        other, _ = _rows(sharded, 8, shuffle, seed=1)
        order = [b["index"].tolist() for b in batches]
        assert order == [b["index"].tolist() for b in again] != [b["index"].tolist() for b in other]


def test_model_ids_empty_texts_and_long_texts(tmp_path):
    """Ids written with a fixed vocabulary are used as they are; empty texts and a text longer than a shard work."""
    vocab = Vocab(["<pad>", "<unk>", "a", "b"])
    texts = ["", "a b a", "", "b " * 40, "c"]
    examples = [Example(t, str(i % 2), f"mem:{i}") for i, t in enumerate(texts)]
    directory = write_shards(examples, WordIds(Preprocessor(PRE), vocab), tmp_path / "s", shard_tokens=4)
    assert read_manifest(directory)["id_space"] == "model"
    with pytest.raises(ConfigError, match="leave vocab unset"):
        ShardedTexts(directory, vocab=vocab)
    data = ShardedTexts(directory, min_length=3, pad_id=-1)
    _, got = _rows(data, 2, shuffle=True)
    assert got == {0: ([], None), 1: ([2, 3, 2], None), 2: ([], None), 3: ([3] * 40, None), 4: ([1], None)}
    # shards [0, 1], [2] (no ids at all), [3] (longer than a shard), [4]; short batches are carried over
    assert [s["examples"] for s in read_manifest(directory)["shards"]] == [2, 1, 1, 1]
    batches = list(data.batches(2, shuffle=False))
    assert [b["index"].tolist() for b in batches] == [[0, 1], [2, 3], [4]]
    assert batches[0]["ids"].tolist() == [[-1, -1, -1], [2, 3, 2]]  # an empty text is all padding, min_length wide
    assert batches[1]["ids"].tolist() == [[-1] * 40, [3] * 40] and batches[1]["lengths"].tolist() == [0, 40]
    assert batches[2]["ids"].tolist() == [[1, -1, -1]]


def test_regression_and_multilabel_targets_as_in_memory(tmp_path):
    scored = write_labelfirst(tmp_path / "scored.txt", [(str(level), text) for level, text in make_scored(20, 3)])
    multi = tmp_path / "multi.jsonl"
    multi.write_text("".join(json.dumps({"text": t, "label": labels}) + "\n" for labels, t in make_multilabel(20, 4)))
    cases = [(scored, Regression(), {}), (multi, None, {"multilabel": True})]
    for path, task, read in cases:
        directory = write_shards(iter_examples(path, **read), TokenTable(Preprocessor(PRE)), tmp_path / path.stem,
                                 shard_tokens=25)
        task = task or MultiLabelClassification(sorted(label_names(directory)))
        vocab = vocab_from_counts(token_counts(directory))
        sharded = ShardedTexts(directory, vocab=vocab, targets=lambda exs: task.targets(exs, "train"))
        memory = task.encode(read_examples(path, **read), WordIds(Preprocessor(PRE), vocab), 1, "train")
        assert sharded.labels == memory.labels
        assert _rows(sharded, 4, shuffle=True)[1] == _rows(memory, 4, shuffle=True)[1]
        assert next(sharded.batches(4, shuffle=False))["labels"].dtype == torch.float32


def test_bad_labels_name_the_line(tmp_path):
    path, _ = _sentences(tmp_path, 10)
    directory = _shards(path, tmp_path / "s")
    task = TextClassification(["neg", "other"])
    with pytest.raises(DataError, match=rf"{path}:1: label 'pos' was not seen in training"):
        ShardedTexts(directory, vocab=Vocab.build([]), targets=lambda exs: task.targets(exs, "dev"))
    unlabelled = write_shards(iter_examples(path, require_labels=False), TokenTable(Preprocessor(PRE)),
                              tmp_path / "u")
    with pytest.raises(DataError, match=rf"{path}:1: the text has no label \(10 texts"):
        ShardedTexts(unlabelled, vocab=Vocab.build([]), targets=lambda exs: task.targets(exs, "dev"))
    with pytest.raises(ConfigError, match="pass the vocabulary"):
        ShardedTexts(directory)


def test_iter_examples_streams_what_read_examples_reads(tmp_path):
    lines = tmp_path / "a.txt"
    lines.write_bytes("\ufeffpos a good film\r\n\n   \nneg a dull one\n".encode())
    jsonl = tmp_path / "b.jsonl"
    jsonl.write_text('{"text": "a b", "label": "x,y"}\n\n{"text": "c", "label": ["p"]}\n{"text": "d", "label": ""}\n')
    assert list(iter_examples(lines)) == read_examples(lines)
    assert list(iter_examples(jsonl, multilabel=True)) == read_examples(jsonl, multilabel=True)
    bad = tmp_path / "bad.txt"
    bad.write_text("pos fine\nneg\n")
    stream = iter_examples(bad)
    assert next(stream).text == "fine"  # lazily: the bad line is read only when reached
    with pytest.raises(DataError, match=rf"{bad}:2: the line has a label \('neg'\) but no text"):
        next(stream)
    (tmp_path / "blank.txt").write_text("\n\n")
    with pytest.raises(DataError, match="only blank lines"):
        list(iter_examples(tmp_path / "blank.txt"))


# --------------------------------------------------------------------------------------------
# the cache


def test_cache_is_reused_and_keyed_by_data_and_tokenizer(tmp_path):
    path, _ = _sentences(tmp_path)
    built = []

    def examples():
        built.append(1)
        return iter_examples(path)

    def cache(settings=tokenizer_settings(PRE), files=(path,)):
        return shard_cache(files, settings, examples, TokenTable(Preprocessor(PRE)), tmp_path / "cache",
                           shard_tokens=50)

    first = cache()
    stamp = (first / "manifest.json").stat().st_mtime_ns
    assert cache() == first and len(built) == 1  # reused: not read again
    assert (first / "manifest.json").stat().st_mtime_ns == stamp
    # the vocabulary cut is applied after the cache, so it does not change the key
    assert cache(tokenizer_settings(PreprocessConfig(min_freq=3, max_vocab=5))) == first and len(built) == 1
    assert cache(tokenizer_settings(PreprocessConfig(lowercase=False))) != first and len(built) == 2
    edited = tmp_path / "edited.txt"
    edited.write_bytes(path.read_bytes() + b"pos one more\n")
    assert cache(files=(edited,)) != first and len(built) == 3
    moved = tmp_path / "moved.txt"
    moved.write_bytes(path.read_bytes())
    assert cache_key([moved], tokenizer_settings(PRE)) == cache_key([path], tokenizer_settings(PRE))
    assert read_manifest(first)["key"] == cache_key([path], tokenizer_settings(PRE))


def test_damaged_cache_is_an_error_when_opened_and_rebuilt_by_the_cache(tmp_path, caplog):
    path, _ = _sentences(tmp_path)
    calls = []

    def cache():
        calls.append(1)
        return shard_cache([path], {}, lambda: iter_examples(path), TokenTable(Preprocessor(PRE)),
                           tmp_path / "cache", shard_tokens=50)

    directory = cache()
    (directory / "manifest.json").write_text('{"format": "wordconv-shards", "vers')
    with pytest.raises(DataError, match=rf"{directory}/manifest.json: cannot be read .* delete the folder"):
        ShardedTexts(directory, vocab=Vocab.build([]))
    assert cache() == directory and "rebuilding the shard cache" in caplog.text
    ShardedTexts(directory, vocab=Vocab.build([]))  # whole again

    ids = directory / "shard-00001.ids.npy"
    ids.write_bytes(ids.read_bytes()[:-4])  # one id short
    with pytest.raises(DataError, match=rf"{ids}: holds int32 .* the manifest expects .* delete the folder"):
        read_manifest(directory)
    (directory / "shard-00000.labels.npy").unlink()
    with pytest.raises(DataError, match="shard-00000.labels.npy: missing from the shard cache"):
        read_manifest(directory)
    with pytest.raises(DataError, match="has no manifest.json"):
        read_manifest(tmp_path)
    before = len(caplog.records)
    cache()
    assert len(caplog.records) > before
    _, got = _rows(ShardedTexts(directory, vocab=vocab_from_counts(token_counts(directory))), 16, shuffle=False)
    assert sorted(got) == list(range(60))


class Interrupted(Exception):
    pass


def test_interrupted_write_leaves_no_cache(tmp_path):
    path, _ = _sentences(tmp_path)

    def failing():
        for i, example in enumerate(iter_examples(path)):
            if i == 45:  # several shards are written by then
                raise Interrupted
            yield example

    cache_dir = tmp_path / "cache"
    with pytest.raises(Interrupted):
        shard_cache([path], {}, failing, TokenTable(Preprocessor(PRE)), cache_dir, shard_tokens=20)
    assert list(cache_dir.iterdir()) == []  # not even the temporary folder
    with pytest.raises(Interrupted):
        write_shards(failing(), TokenTable(Preprocessor(PRE)), tmp_path / "direct", shard_tokens=20)
    assert not (tmp_path / "direct").exists()
    directory = shard_cache([path], {}, lambda: iter_examples(path), TokenTable(Preprocessor(PRE)), cache_dir)
    assert len(ShardedTexts(directory, vocab=Vocab.build([]))) == 60
    with pytest.raises(ConfigError, match="already exists"):
        write_shards(iter_examples(path), TokenTable(Preprocessor(PRE)), directory)
    with pytest.raises(DataError, match="no examples"):
        write_shards([], TokenTable(Preprocessor(PRE)), tmp_path / "empty")
    assert not (tmp_path / "empty").exists()


# --------------------------------------------------------------------------------------------
# training


def test_trainer_overfits_sharded_texts(tmp_path):
    path, _ = _sentences(tmp_path, 40, seed=5)
    directory = _shards(path, tmp_path / "shards", shard_tokens=64)
    assert len(read_manifest(directory)["shards"]) > 3
    vocab = vocab_from_counts(token_counts(directory))
    task = TextClassification(sorted(label_names(directory)))
    cfg = build_config({"model": {"type": "textcnn", "num_filters": 8}, "embeddings": {"dim": 16},
                        "training": {"epochs": 30, "batch_size": 8, "lr": 0.01, "progress": False,
                                     "patience": None}})
    torch.manual_seed(0)
    model = build_model(cfg, len(vocab), task.labels)
    train = ShardedTexts(directory, vocab=vocab, targets=lambda exs: task.targets(exs, "train"),
                         min_length=model.encoder.min_length)
    result = Trainer(model, task, cfg.training).fit(train, None)
    metrics, _ = task.evaluate(model, train, 16)
    assert metrics["accuracy"] == 1.0, result.history[-1]
    assert result.train_tokens == 30 * train.num_tokens()


# --------------------------------------------------------------------------------------------
# a corpus larger than memory

MEMORY_CHILD = r'''
"""Train on a corpus larger than an address-space limit, then show that the limit stops an in-memory load."""
import gc
import itertools
import json
import random
import resource
import sys
import time
from pathlib import Path

import torch

from wordconv.config import build_config
from wordconv.data.readers import iter_examples
from wordconv.data.shards import ShardedTexts, TokenTable, shard_cache, token_counts, vocab_from_counts
from wordconv.data.text import PreprocessConfig, Preprocessor
from wordconv.pipeline import build_model
from wordconv.tasks.base import WordIds
from wordconv.tasks.textcat import TextClassification
from wordconv.training.trainer import Trainer

MB = 1 << 20
tmp, headroom, corpus_size = Path(sys.argv[1]), int(sys.argv[2]) * MB, int(sys.argv[3]) * MB
torch.set_num_threads(1)


def vm(field="VmSize"):
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024


def write_corpus(path, size):
    """Label-first lines of random words, a cue word giving the label; written a line at a time."""
    rng = random.Random(0)
    words = ["".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=rng.randint(2, 8))) for _ in range(300)]
    pool = []
    for i in range(4000):
        label, cue = ("pos", "superb") if i % 2 == 0 else ("neg", "dreadful")
        line = rng.choices(words, k=rng.randint(20, 40))
        line.insert(rng.randrange(len(line)), cue)
        pool.append(f"{label} {' '.join(line)}\n")
    written = lines = 0
    with open(path, "w", encoding="utf-8") as f:
        while written < size:
            line = rng.choice(pool)
            f.write(line)
            written, lines = written + len(line), lines + 1
    return written, lines


def train_streamed(corpus):
    """Tokenize into shards once, the vocabulary from the counts, one epoch of a tiny TextCNN on the shards."""
    pre = Preprocessor(PreprocessConfig(tokenizer="whitespace"))
    directory = shard_cache([corpus], {"tokenizer": "whitespace"}, lambda: iter_examples(corpus),
                            TokenTable(pre), tmp / "cache", shard_tokens=MB // 4)
    vocab = vocab_from_counts(token_counts(directory))
    task = TextClassification(["neg", "pos"])
    cfg = build_config({"model": {"type": "textcnn", "num_filters": 4}, "embeddings": {"dim": 8},
                        "training": {"epochs": 1, "batch_size": 512, "progress": False, "patience": None}})
    model = build_model(cfg, len(vocab), task.labels)
    train = ShardedTexts(directory, vocab=vocab, targets=lambda exs: task.targets(exs, "train"),
                         min_length=model.encoder.min_length)
    result = Trainer(model, task, cfg.training).fit(train, None)
    return directory, vocab, pre, len(train), result.history[-1]["train_loss"]


write_corpus(tmp / "small.txt", MB)  # full batches of the longest texts: their activations
train_streamed(tmp / "small.txt")  # warm-up: every code path, thread pool and allocator arena exists now
corpus = tmp / "corpus.txt"
corpus_bytes, lines = write_corpus(corpus, corpus_size)
gc.collect()
baseline = vm()
resource.setrlimit(resource.RLIMIT_AS, (baseline + headroom, resource.RLIM_INFINITY))
t0 = time.perf_counter()
directory, vocab, pre, examples, loss = train_streamed(corpus)
seconds = time.perf_counter() - t0
shard_bytes = sum(p.stat().st_size for p in directory.glob("shard-*.npy"))
after = vm()

# the same corpus held as EncodedTexts holds it (a list of token ids per text), under the same limit
kept, outcome = [], "fits in memory"
to_ids = WordIds(pre, vocab)
try:
    stream = iter_examples(corpus)
    while chunk := list(itertools.islice(stream, 1024)):
        kept.extend(to_ids.encode_many([ex.text for ex in chunk]))
except MemoryError:
    outcome = "MemoryError"
del kept[-1024:]  # room to measure in: what the lists of the whole corpus would take (ids are shared ints)
loaded = len(kept)
list_bytes = (sys.getsizeof(kept) + sum(map(sys.getsizeof, kept))) * lines // max(loaded, 1)
kept = None
print(json.dumps({"baseline": baseline, "headroom": headroom, "corpus_bytes": corpus_bytes, "lines": lines,
                  "shard_bytes": shard_bytes, "examples": examples, "train_loss": loss,
                  "vm_after_training": after - baseline, "stream_train_seconds": round(seconds, 1),
                  "in_memory": outcome, "loaded": loaded,
                  "ids_as_lists_bytes": list_bytes}))
'''


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads VmSize from /proc (Linux)")
def test_trains_on_a_corpus_larger_than_the_memory_limit(tmp_path):
    """RLIMIT_AS caps the child's address space at what it uses after a warm-up run (torch, the model, the
    trainer, one epoch over a 1 MiB corpus in full batches) plus 24 MiB.  The corpus is 48 MiB of text (~8M
    tokens, 35 MiB of shards); its ids as Python lists, as EncodedTexts holds them, need ~3.5x the headroom.
    Streaming tokenizes it and trains one epoch within the limit; loading the ids into lists under the same
    limit fails with MemoryError part way (RLIMIT_AS counts the mapped shards too: one shard at a time)."""
    script = tmp_path / "child.py"
    script.write_text(MEMORY_CHILD)
    # glibc malloc with fixed thresholds: big blocks are mapped and unmapped, freed heap is trimmed, so the address
    # space follows what is live (by default it keeps freed memory by a history-dependent rule, and the same run
    # sometimes has 20 MiB more or less room under the limit)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "MALLOC_MMAP_THRESHOLD_": "131072", "MALLOC_TRIM_THRESHOLD_": "1048576"}
    started, cpu = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run([sys.executable, str(script), str(tmp_path), "24", "48"], capture_output=True, text=True,
                          env=env, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    used = resource.getrusage(resource.RUSAGE_CHILDREN)
    report["seconds"] = round(time.perf_counter() - started, 1)
    report["cpu_seconds"] = round(used.ru_utime + used.ru_stime - cpu.ru_utime - cpu.ru_stime, 1)
    print(report)
    headroom = report["headroom"]
    assert report["corpus_bytes"] > 2 * headroom and report["shard_bytes"] > headroom  # larger than the limit
    assert report["examples"] == report["lines"] and math.isfinite(report["train_loss"])  # every text trained on
    assert report["in_memory"] == "MemoryError" and 0 < report["loaded"] < report["lines"]  # the limit bites
    assert report["ids_as_lists_bytes"] > 3 * headroom
