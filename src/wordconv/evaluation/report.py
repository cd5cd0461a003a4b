"""Human-facing views of metrics: rich tables and PNG plots (matplotlib, headless)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rich.table import Table

from wordconv.evaluation.metrics import lower_is_better


def report_tables(metrics: dict, title: str = "evaluation") -> list[Table]:
    """The tables that show one evaluation, for its task (``metrics["task"]``, textcat when absent)."""
    task = metrics.get("task", "textcat")
    if task == "multilabel":
        return [multilabel_table(metrics, title)]
    if task == "ner":
        return [entity_table(metrics, title)]
    if task == "qa":
        return [qa_table(metrics, title)]
    if task == "regression":
        tables = [regression_table(metrics, title)]
        if "confusion_matrix" in metrics:
            tables.append(confusion_table(metrics, "rounded levels (rows: gold, columns: predicted)"))
        return tables
    return [metrics_table(metrics, title), confusion_table(metrics)]


def metrics_table(metrics: dict, title: str = "evaluation") -> Table:
    """Text classification: accuracy and per-class / averaged precision, recall, F1."""
    table = Table(title=f"{title}: accuracy {metrics['accuracy']:.4f}, macro F1 {metrics['f1_macro']:.4f} "
                        f"(n={metrics.get('n', '?')})")
    table.add_column("class")
    for col in ("precision", "recall", "f1", "support"):
        table.add_column(col, justify="right")
    for name, row in metrics["per_class"].items():
        table.add_row(name, f"{row['precision']:.4f}", f"{row['recall']:.4f}", f"{row['f1']:.4f}", str(row["support"]))
    for avg in ("macro", "micro", "weighted"):
        table.add_row(f"[bold]{avg} avg", f"{metrics[f'precision_{avg}']:.4f}", f"{metrics[f'recall_{avg}']:.4f}",
                      f"{metrics[f'f1_{avg}']:.4f}", str(metrics.get("n", "")))
    return table


def qa_table(metrics: dict, title: str = "evaluation") -> Table:
    """Extractive QA: the official SQuAD v1.1 exact match and F1 (max over the gold answers)."""
    table = Table(title=f"{title}: exact match {metrics['exact_match']:.2f}, F1 {metrics['f1']:.2f} "
                        f"(n={metrics.get('count', '?')})")
    table.add_column("split")
    for col in ("exact match", "F1", "questions"):
        table.add_column(col, justify="right")
    rows = [(metrics.get("split", "evaluated"), metrics)]
    if isinstance(metrics.get("dev"), dict):
        rows.append(("dev", metrics["dev"]))
    for name, m in rows:
        table.add_row(name, f"{m['exact_match']:.2f}", f"{m['f1']:.2f}", str(m.get("count", "")))
    return table


def entity_table(metrics: dict, title: str = "evaluation") -> Table:
    """Named entities: conlleval's precision, recall and F1 per type and overall, token accuracy."""
    table = Table(title=f"{title}: entity F1 {metrics['f1']:.4f} (P {metrics['precision']:.4f}, "
                        f"R {metrics['recall']:.4f}), token accuracy {metrics['token_accuracy']:.4f}")
    table.add_column("type")
    for col in ("precision", "recall", "f1", "gold", "predicted"):
        table.add_column(col, justify="right")
    for name, row in metrics["per_type"].items():
        table.add_row(name, f"{row['precision']:.4f}", f"{row['recall']:.4f}", f"{row['f1']:.4f}",
                      str(row["support"]), str(row["predicted"]))
    table.add_row("[bold]all", f"{metrics['precision']:.4f}", f"{metrics['recall']:.4f}", f"{metrics['f1']:.4f}",
                  str(metrics["gold_entities"]), str(metrics["predicted_entities"]))
    return table


def multilabel_table(metrics: dict, title: str = "evaluation") -> Table:
    """Multi-label classification: subset accuracy, Hamming loss, per-label scores and thresholds."""
    table = Table(title=f"{title}: subset accuracy {metrics['accuracy']:.4f}, micro F1 {metrics['f1_micro']:.4f}, "
                        f"Hamming loss {metrics['hamming_loss']:.4f} (n={metrics.get('n', '?')})")
    table.add_column("label")
    for col in ("precision", "recall", "f1", "support", "threshold"):
        table.add_column(col, justify="right")
    for name, row in metrics["per_class"].items():
        threshold = f"{row['threshold']:.3f}" if "threshold" in row else "-"
        table.add_row(name, f"{row['precision']:.4f}", f"{row['recall']:.4f}", f"{row['f1']:.4f}", str(row["support"]),
                      threshold)
    for avg in ("micro", "macro", "weighted", "samples"):
        table.add_row(f"[bold]{avg} avg", f"{metrics[f'precision_{avg}']:.4f}", f"{metrics[f'recall_{avg}']:.4f}",
                      f"{metrics[f'f1_{avg}']:.4f}", "", "")
    return table


def regression_table(metrics: dict, title: str = "evaluation") -> Table:
    """Regression: errors, correlations and, for integer levels, the rounded prediction's accuracy."""
    table = Table(title=f"{title}: Pearson r {metrics['pearson']:.4f}, RMSE {metrics['rmse']:.4f} "
                        f"(n={metrics.get('n', '?')})")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for key in ("mse", "rmse", "mae", "pearson", "spearman", "accuracy", "f1_macro"):
        if key in metrics:
            table.add_row(key, f"{metrics[key]:.4f}")
    return table


def confusion_table(metrics: dict, title: str = "confusion matrix (rows: gold, columns: predicted)") -> Table:
    """Counts of gold (rows) against predicted (columns) classes, or rounded levels for regression."""
    labels = [str(v) for v in metrics["levels"]] if metrics.get("task") == "regression" else metrics["labels"]
    table = Table(title=title)
    table.add_column("gold \\ pred")
    for name in labels:
        table.add_column(name, justify="right")
    for name, row in zip(labels, metrics["confusion_matrix"]):
        table.add_row(name, *(str(v) for v in row))
    return table


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # headless: files only
    import matplotlib.pyplot as plt

    return plt


def plot_confusion_matrix(cm: Sequence[Sequence[int]], labels: Sequence[str], path: str | Path,
                          title: str = "confusion matrix") -> Path:
    """Counts and row-normalised shading (recall per gold class), saved as PNG."""
    import numpy as np

    plt = _pyplot()
    cm = np.asarray(cm, dtype=float)
    rows = cm.sum(axis=1, keepdims=True)
    norm = np.divide(cm, rows, out=np.zeros_like(cm), where=rows > 0)
    n = len(labels)
    fig, ax = plt.subplots(figsize=(max(4.5, 1.2 + 0.8 * n), max(3.8, 1.0 + 0.7 * n)))
    im = ax.imshow(norm, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(n), labels, rotation=45, ha="right")
    ax.set_yticks(range(n), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("gold")
    for i in range(n):
        for j in range(n):
            ax.text(j, i, f"{int(cm[i, j])}", ha="center", va="center", color="white" if norm[i, j] > 0.5 else "black")
    fig.colorbar(im, ax=ax, fraction=0.046, label="fraction of gold row")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def plot_learning_curve(history: Sequence[dict], path: str | Path, metric: str = "accuracy") -> Path:
    """Training loss and dev loss/metric per epoch, saved as PNG."""
    plt = _pyplot()
    epochs = [h["epoch"] for h in history]
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(9, 3.4))
    ax1.plot(epochs, [h["train_loss"] for h in history], "o-", label="train")
    if all("dev_loss" in h for h in history):
        ax1.plot(epochs, [h["dev_loss"] for h in history], "o-", label="dev")
    ax1.set_xlabel("epoch")
    ax1.set_ylabel("loss")
    ax1.legend()
    key = f"dev_{metric}"
    if all(key in h for h in history):
        ax2.plot(epochs, [h[key] for h in history], "o-", color="tab:green")
        best = max(history, key=lambda h: -h[key] if lower_is_better(metric) else h[key])
        ax2.axvline(best["epoch"], color="grey", ls="--", lw=1, label=f"best epoch {best['epoch']}")
        ax2.legend()
    ax2.set_xlabel("epoch")
    ax2.set_ylabel(f"dev {metric}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)


def plot_predicted_vs_gold(gold: Sequence[float], predicted: Sequence[float], path: str | Path,
                           title: str = "predicted vs gold") -> Path:
    """Regression: one dot per text (gold on x, prediction on y) and the line y = x, saved as PNG.

    Integer gold levels get a little horizontal jitter (seeded) so that their dots do not stack."""
    import numpy as np

    plt = _pyplot()
    gold = np.asarray(gold, dtype=float)
    predicted = np.asarray(predicted, dtype=float)
    x = gold
    if len(gold) and np.all(gold == np.round(gold)):
        x = gold + np.random.default_rng(0).uniform(-0.15, 0.15, len(gold))
    fig, ax = plt.subplots(figsize=(4.8, 4.4))
    ax.scatter(x, predicted, s=6, alpha=0.35, color="tab:blue", linewidths=0)
    if len(gold):
        lo = float(min(gold.min(), predicted.min()))
        hi = float(max(gold.max(), predicted.max()))
        ax.plot([lo, hi], [lo, hi], color="grey", ls="--", lw=1, label="y = x")
        ax.legend(loc="upper left")
    ax.set_xlabel("gold")
    ax.set_ylabel("predicted")
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
