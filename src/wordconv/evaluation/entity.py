"""Entity-level metrics for named-entity recognition, as the conlleval script computes them.

Entities are read from each sentence's tags with :func:`wordconv.data.conll.tags_to_spans` (conlleval's chunk
rules, so IOB1, IOB2 and BIOES tags all work, invalid sequences included).  A predicted entity is correct when
its type, start and end all equal those of a gold entity.  Precision = correct / predicted entities, recall =
correct / gold entities, F1 = 2PR / (P + R), pooled over all types (micro) and per type; each is 0.0 when its
denominator is zero.  Token accuracy is the fraction of tokens whose predicted tag equals the gold tag.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from wordconv.data.conll import check_tags, tags_to_spans
from wordconv.errors import DataError


def entity_metrics(gold: Sequence[Sequence[str]], pred: Sequence[Sequence[str]]) -> dict:
    """conlleval's metrics for predicted tag sequences against gold ones (one sequence per sentence).

    Returns ``precision``, ``recall``, ``f1``, ``token_accuracy`` (fractions in 0..1), ``gold_entities``,
    ``predicted_entities``, ``correct_entities`` and ``per_type``: for each entity type found in gold or
    predictions (sorted by name), its ``precision``, ``recall``, ``f1``, ``support`` (gold entities) and
    ``predicted`` (predicted entities).  Raises DataError when the numbers of sentences or of tags in a sentence
    differ, or for a tag that is not ``O`` or ``P-TYPE``.
    """
    if len(gold) != len(pred):
        raise DataError(
            f"{len(gold)} gold sentences but {len(pred)} predicted ones. Pass one predicted tag sequence per gold "
            f"sentence, in the same order."
        )
    gold_counts: Counter[str] = Counter()
    pred_counts: Counter[str] = Counter()
    correct_counts: Counter[str] = Counter()
    tokens = correct_tokens = 0
    for index, (gold_tags, pred_tags) in enumerate(zip(gold, pred, strict=True)):
        if len(gold_tags) != len(pred_tags):
            raise DataError(
                f"sentence {index}: {len(gold_tags)} gold tags but {len(pred_tags)} predicted ones. Pass one "
                f"predicted tag per token."
            )
        check_tags(gold_tags, f"sentence {index} (gold)")
        check_tags(pred_tags, f"sentence {index} (predicted)")
        gold_spans = tags_to_spans(gold_tags)
        pred_spans = tags_to_spans(pred_tags)
        gold_counts.update(span[0] for span in gold_spans)
        pred_counts.update(span[0] for span in pred_spans)
        correct_counts.update(span[0] for span in set(gold_spans) & set(pred_spans))
        tokens += len(gold_tags)
        correct_tokens += sum(g == p for g, p in zip(gold_tags, pred_tags, strict=True))
    n_gold, n_pred, n_correct = gold_counts.total(), pred_counts.total(), correct_counts.total()
    per_type = {
        type_: {
            **_scores(correct_counts[type_], gold_counts[type_], pred_counts[type_]),
            "support": gold_counts[type_],
            "predicted": pred_counts[type_],
        }
        for type_ in sorted(gold_counts.keys() | pred_counts.keys())
    }
    return {
        **_scores(n_correct, n_gold, n_pred),
        "token_accuracy": correct_tokens / tokens if tokens else 0.0,
        "per_type": per_type,
        "gold_entities": n_gold,
        "predicted_entities": n_pred,
        "correct_entities": n_correct,
    }


def _scores(correct: int, gold: int, predicted: int) -> dict[str, float]:
    """Precision, recall and F1 from counts, 0.0 where a denominator is zero."""
    precision = correct / predicted if predicted else 0.0
    recall = correct / gold if gold else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"precision": precision, "recall": recall, "f1": f1}
