"""Human-facing views of metrics: rich tables and PNG plots (matplotlib, headless)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from rich.table import Table


def metrics_table(metrics: dict, title: str = "evaluation") -> Table:
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


def confusion_table(metrics: dict) -> Table:
    labels = metrics["labels"]
    table = Table(title="confusion matrix (rows: gold, columns: predicted)")
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
        best = max(history, key=lambda h: -h[key] if metric == "loss" else h[key])
        ax2.axvline(best["epoch"], color="grey", ls="--", lw=1, label=f"best epoch {best['epoch']}")
        ax2.legend()
    ax2.set_xlabel("epoch")
    ax2.set_ylabel(f"dev {metric}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return Path(path)
