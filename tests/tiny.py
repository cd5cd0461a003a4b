"""Tiny generated data and settings shared by the tests."""

from __future__ import annotations

import os
import random
from pathlib import Path

POS = ["good", "great", "lovely", "superb", "fun", "moving", "brilliant", "charming"]
NEG = ["bad", "awful", "dull", "boring", "tedious", "weak", "clumsy", "lifeless"]
FILLER = ["the", "film", "movie", "is", "a", "plot", "story", "was", "actors", "and", "with", "quite", "of", "this"]


def make_sentences(n: int, seed: int) -> list[tuple[str, str]]:
    """Sentences whose label is given by a sentiment word among filler words."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        label = "pos" if i % 2 == 0 else "neg"
        words = rng.sample(FILLER, rng.randint(2, 8))
        words.insert(rng.randrange(len(words) + 1), rng.choice(POS if label == "pos" else NEG))
        out.append((label, " ".join(words)))
    return out


def write_labelfirst(path: Path, rows: list[tuple[str, str]]) -> Path:
    path.write_text("".join(f"{label} {text}\n" for label, text in rows), encoding="utf-8")
    return path


# small, fast model settings for unit tests
FAST = ["embeddings.dim=16", "model.num_filters=8", "training.batch_size=8", "training.progress=false"]


def shared_data_dir() -> Path | None:
    """The real datasets mirror (../shared/data or $WORDCONV_DATA), if present."""
    env = os.environ.get("WORDCONV_DATA")
    for cand in ([Path(env)] if env else []) + [Path(__file__).resolve().parents[2] / "shared" / "data"]:
        if (cand / "mr").is_dir():
            return cand
    return None


# multi-label: two independent topics, each signalled by one of its words; a text may have both or neither
SPORT = ["goal", "match", "team", "coach", "league", "striker"]
FOOD = ["pizza", "soup", "bread", "cheese", "pasta", "salad"]


def make_multilabel(n: int, seed: int) -> list[tuple[list[str], str]]:
    """(labels, text) pairs: label "sport" / "food" when a word of that topic is in the text; the four label
    sets (none, sport, food, both) take turns."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        labels = [name for name, on in (("food", i % 4 in (2, 3)), ("sport", i % 4 in (1, 3))) if on]
        words = rng.sample(FILLER, rng.randint(2, 6))
        for topic in labels:
            words.insert(rng.randrange(len(words) + 1), rng.choice(SPORT if topic == "sport" else FOOD))
        out.append((labels, " ".join(words)))
    return out


# regression: a rating level 0..4 given by one word of that level among filler words
LEVEL_WORDS = [["terrible", "awful"], ["bad", "weak"], ["okay", "average"], ["good", "nice"], ["superb", "brilliant"]]


def make_scored(n: int, seed: int) -> list[tuple[int, str]]:
    """(level, text) pairs, levels 0..4 taking turns."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        level = i % 5
        words = rng.sample(FILLER, rng.randint(2, 7))
        words.insert(rng.randrange(len(words) + 1), rng.choice(LEVEL_WORDS[level]))
        out.append((level, " ".join(words)))
    return out
