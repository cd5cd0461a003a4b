"""Open-domain question answering: find the answer in a document collection, not in a given paragraph.

    corpus (folder of .txt/.md, .jsonl, SQuAD JSON) -> passages (paragraph chunks)   once, saved as an index
    question -> retriever (BM25 / dense MiniLM / their fusion) -> top-k passages
             -> the reader (any task-qa model) reads each passage -> best span over them
                start + end score - rank_weight * ln(retrieval rank)

``rank_weight`` trusts the retriever's order over the reader's span scores, which need not compare across
passages: for the convolutional reader on SQuAD, 8 (chosen on the dev articles) lifted open-domain F1
from 24.46 to 38.80 on the test articles (BENCHMARKS.md); 0 ranks by the span score alone.

``wordconv qa MODEL_DIR --corpus PATH --question Q`` keeps the index in the wordconv cache (one per
corpus path and retriever; ``--index DIR`` to choose) and reuses it while the corpus is unchanged.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from wordconv.errors import ConfigError, ModelError


@dataclass
class OpenAnswer:
    """An answer found in a collection: the span, the passage it was read from and how it ranked."""

    answer: str
    score: float  # the reader's probability of the span within its passage
    span_score: float  # the reader's start + end score: the best over the passages wins
    doc: str  # the passage's document (file name or title)
    passage: int  # the passage's id in the index
    start: int  # character offsets of the answer in the passage's text
    end: int
    doc_start: int  # ... and in its document
    doc_end: int
    retrieval_rank: int  # 1 = the retriever's first passage
    retrieval_score: float
    context: str  # the passage's text

    def to_dict(self) -> dict:
        return asdict(self)


def default_index_dir(corpus: str | Path, method: str) -> Path:
    """Where ``wordconv qa`` keeps a corpus's index: ``<cache>/indexes/<name>-<hash of the path>-<method>``."""
    from wordconv.data.download import cache_dir

    path = Path(corpus).expanduser().resolve()
    digest = hashlib.sha256(str(path).encode("utf-8")).hexdigest()[:12]
    return cache_dir() / "indexes" / f"{path.name}-{digest}-{method}"


def read_open(predictor, index, questions: Sequence[str] | str, k: int = 5, batch_size: int = 64,
              rank_weight: float = 0.0) -> list[OpenAnswer]:
    """Each question's answer from the ``k`` passages ``index`` retrieves for it (in question order): the span
    with the highest ``span_score - rank_weight * ln(retrieval rank)`` over them."""
    if not (0 <= rank_weight < math.inf):
        raise ConfigError(f"rank_weight (--rank-weight) must be 0 or more (0: the reader's span score alone), "
                          f"got {rank_weight}")
    if predictor.task != "qa":
        raise ModelError(f"open-domain QA needs a reader (a task qa model); this model is {predictor.task}")
    if isinstance(questions, str):
        questions = [questions]
    hits = index.search_many(list(questions), k)
    flat_q, flat_c, owner = [], [], []
    for i, (q, found) in enumerate(zip(questions, hits)):
        for h in found:
            flat_q.append(q)
            flat_c.append(h.passage.text)
            owner.append((i, h))
    read = predictor.answer(flat_q, flat_c, batch_size=batch_size) if flat_q else []
    best: list[OpenAnswer | None] = [None] * len(questions)
    rank_score = [float("-inf")] * len(questions)
    for (i, hit), pred in zip(owner, read):
        score = pred.span_score - rank_weight * math.log(hit.rank)  # rank 1: no penalty
        if best[i] is not None and score <= rank_score[i]:
            continue
        rank_score[i] = score
        p = hit.passage
        best[i] = OpenAnswer(pred.answer, pred.score, pred.span_score, p.doc, p.id, pred.start, pred.end,
                             p.start + pred.start, p.start + pred.end, hit.rank, round(float(hit.score), 6), p.text)
    return [b if b is not None else OpenAnswer("", 0.0, float("-inf"), "", -1, 0, 0, 0, 0, 0, 0.0, "")
            for b in best]
