"""Chapter 1: convolution, pooling and activations on a real sentence — what each filter sees.

Trains a small TextCNN on MR, then redoes its forward pass by hand on one MR test sentence:
embedding lookup -> one dot product per filter and window (a 1-D convolution) -> activation ->
pooling over time.  The hand-made 1-max features must equal the model's own, and the plot
``filter_activations.png`` shows each width-3 filter's response at every trigram of the sentence.

    python examples/ch01_convolution.py [--small] [--out DIR]
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch
import torch.nn.functional as F

import wordconv
from wordconv.data.registry import load_data
from wordconv.data.text import Preprocessor
from _common import check_png, out_dir, parse_args, pyplot, sample


def main() -> None:
    args = parse_args(__doc__)
    out = out_dir(args, "ch01")
    torch.manual_seed(13)
    mr = load_data("mr", fold=0)
    train = sample(mr.train, 1500 if args.small else None)
    overrides = {"embeddings.dim": 32, "model.num_filters": 8} if args.small else {}
    clf = wordconv.TextClassifier("textcnn", epochs=2 if args.small else 5, seed=13, overrides=overrides)
    clf.fit([e.text for e in train], [e.label for e in train])
    predictor = clf.predictor_
    encoder = predictor.model.encoder

    sentence = mr.test[0].text  # a real MR test sentence
    tokens = [t.text for t in Preprocessor(predictor.config.preprocessing).tokens(sentence)]
    ids = torch.tensor([predictor.artifact.vocab.encode(tokens)])  # (1, T)
    print(f"sentence: {sentence}\ntokens:   {tokens}")

    with torch.no_grad():
        x = encoder.embedding(ids)  # (1, T, E): one vector per word
        pooled_by_hand, maps = [], {}
        for conv in encoder.convs:  # one Conv1d per filter width w: weight (F, E, w)
            w = conv.kernel_size[0]
            # Kim's "wide" convolution: w-1 zero vectors at both ends, so edge words get every position
            c = F.conv1d(x.transpose(1, 2), conv.weight, conv.bias, padding=encoder.pad)  # (1, F, T + 2pad - w + 1)
            first = encoder.pad - (w - 1)  # skip the windows that see only padding (the model masks them)
            c = c[:, :, first:first + len(tokens) + w - 1]
            maps[w] = c[0]  # (F, windows)
            pooled_by_hand.append(torch.relu(c).amax(dim=2))  # ReLU, then 1-max pooling over time
        pooled_by_hand = torch.cat(pooled_by_hand, dim=1)
        pooled_model = encoder(ids).pooled
    assert torch.allclose(pooled_by_hand, pooled_model, atol=1e-5), "hand-made features differ from the model's"
    print(f"1-max features by hand == the model's ({pooled_model.shape[1]} values)")

    # activations and poolings side by side, on the width-3 maps
    c3 = maps[3]  # (F, windows)
    for name, act in [("relu", torch.relu), ("tanh", torch.tanh), ("sigmoid", torch.sigmoid), ("identity", lambda v: v)]:
        h = act(c3)
        k = min(2, h.shape[1])
        show = lambda v: " ".join(f"{x:+.3f}" for x in v.flatten().tolist())  # noqa: E731
        print(f"{name:8s} filters 0-2: 1-max {show(h.amax(1)[:3])} | avg {show(h.mean(1)[:3])} | "
              f"{k}-max {show(h.topk(k, dim=1).values[:3])}")
    assert (torch.relu(c3) >= 0).all() and (torch.sigmoid(c3) < 1).all()

    # what each width-3 filter sees: its response at every trigram (the padded edges included)
    padded = ["<pad>"] * 2 + tokens + ["<pad>"] * 2
    grams = [" ".join(padded[i:i + 3]) for i in range(c3.shape[1])]
    best = c3.argmax(dim=1)
    for f in range(min(4, c3.shape[0])):
        print(f"filter {f}: strongest trigram '{grams[best[f]]}' ({c3[f, best[f]]:.3f})")
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(max(6, 0.45 * len(grams)), 0.35 * c3.shape[0] + 2))
    im = ax.imshow(torch.relu(c3).numpy(), aspect="auto", cmap="viridis")
    ax.set_xticks(range(len(grams)), grams, rotation=70, ha="right", fontsize=7)
    ax.set_yticks(range(c3.shape[0]), [f"filter {f}" for f in range(c3.shape[0])], fontsize=7)
    ax.set_title("ReLU(conv) of each width-3 filter at each trigram; 1-max pooling keeps each row's maximum")
    fig.colorbar(im, ax=ax)
    fig.tight_layout()
    fig.savefig(out / "filter_activations.png", dpi=90)
    plt.close(fig)
    check_png(out / "filter_activations.png")
    print(f"plot: {out / 'filter_activations.png'}")


if __name__ == "__main__":
    main()
