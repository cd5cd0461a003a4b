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
