"""Chapter 6: deeper CNNs with shortcuts (DPCNN) and attention pooling (CNN + attention).

DPCNN (Johnson & Zhang 2017) stacks [conv, conv, + shortcut, pool/2] blocks: each block halves the
text, the shortcut (x + f(x)) keeps gradients flowing through 15 weight layers.  The CNN with
attention pools each word's convolution features by learned weights instead of 1-max, and the
weights come out to show which words decided.  This example trains both on MR, prints the DPCNN's
layers, checks that the attention weights are a distribution over the sentence's words, and plots
them (``attention.png``).  The measured comparison on the full data sets is in BENCHMARKS.md.

    python examples/ch06_deep_attention.py [--small] [--out DIR]
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch

import wordconv
from wordconv.data.registry import load_data
from wordconv.explain import explain
from _common import check_png, out_dir, parse_args, pyplot, sample


def main() -> None:
    args = parse_args(__doc__)
    out = out_dir(args, "ch06")
    mr = load_data("mr", fold=0)
    train = sample(mr.train, 2000 if args.small else None)
    test = sample(mr.test, 300 if args.small else None)
    texts, labels = [e.text for e in train], [e.label for e in train]
    small = {"embeddings.dim": 32, "training.lr": 3.0e-3} if args.small else {}
    epochs = 3 if args.small else 5

    dpcnn = wordconv.TextClassifier("dpcnn", epochs=epochs, seed=13,
                                    overrides={**small, **({"model.num_filters": 16} if args.small else {})})
    dpcnn.fit(texts, labels)
    encoder = dpcnn.predictor_.model.encoder
    convs = [n for n, mod in encoder.named_modules() if isinstance(mod, torch.nn.Conv1d)]
    print(f"DPCNN: {len(convs)} convolutions ({', '.join(convs[:4])}, ...)")
    assert len(convs) >= 5  # region embedding + [conv, conv] per block: deep, not Kim's single layer

    attn = wordconv.TextClassifier("cnn-attention", epochs=epochs, seed=13,
                                   overrides={**small, **({"model.num_filters": 8, "model.attention_dim": 16}
                                                          if args.small else {})})
    attn.fit(texts, labels)

    test_texts, test_labels = [e.text for e in test], [e.label for e in test]
    for name, clf in [("dpcnn", dpcnn), ("cnn-attention", attn)]:
        acc = clf.score(test_texts, test_labels)
        print(f"{name}: test accuracy {acc:.4f} on {len(test)} MR test sentences")
        assert acc > (0.55 if args.small else 0.7), (name, acc)  # chance: 0.5

    sentence = "the acting is wonderful , but the plot is a tedious mess ."
    e = explain(attn.predictor_, sentence)[0]
    weights = e.attention
    words = [t.text for t in e.tokens]
    print("attention:", ", ".join(f"{w} {a:.2f}" for w, a in zip(words, weights)))
    assert len(weights) == len(words) and abs(sum(weights) - 1.0) < 1e-4 and min(weights) >= 0.0

    plt = pyplot()
    fig, ax = plt.subplots(figsize=(8, 2.6))
    ax.bar(range(len(words)), weights, color="tab:orange")
    ax.set_xticks(range(len(words)), words, rotation=45, ha="right")
    ax.set_ylabel("attention weight")
    ax.set_title(f"CNN + attention pooling: {e.label} ({e.probability:.2f}); weights sum to 1")
    fig.tight_layout()
    fig.savefig(out / "attention.png", dpi=90)
    plt.close(fig)
    check_png(out / "attention.png")
    print(f"plot: {out / 'attention.png'}")


if __name__ == "__main__":
    main()
