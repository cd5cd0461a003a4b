"""Chapter 9: explaining, exporting and serving a model.

Trains a TextCNN on MR and saves it, then:
- explains a prediction exactly (``wordconv.explain.explain``): with 1-max pooling each filter's value
  comes from one n-gram and the output layer is linear, so the logit is the bias plus one part per
  filter, spread over its n-gram's words; the parts must add up to the logit.  ``attribution.png``
  highlights the words (red: for the label, blue: against it).
- exports it to ONNX (``wordconv.export.export_onnx``, parity-checked against PyTorch) and predicts
  with onnxruntime (``OnnxPredictor``): same labels;
- serves it over HTTP on 127.0.0.1 (the app ``wordconv serve`` runs) and asks ``POST /predict`` and
  ``POST /explain``: same answers as in Python.

    python examples/ch09_explain_export_serve.py [--small] [--out DIR]
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import httpx

import wordconv
from wordconv.data.registry import load_data
from wordconv.explain import explain
from wordconv.export import OnnxPredictor, export_onnx
from wordconv.server import create_app, serving
from _common import check_png, out_dir, parse_args, pyplot, sample

TEXTS = ["a gripping, funny and moving film", "an utterly charmless, tedious mess", "the plot is thin but the cast is great"]


def plot_attribution(e, path: Path) -> None:
    plt = pyplot()
    char_in = 0.6 * 13 / 72  # a monospace character at 13 pt is 0.6 em wide, in inches
    width = sum((len(t.text) + 1) * char_in for t in e.tokens) + 0.4
    fig, ax = plt.subplots(figsize=(max(6.0, width), 1.4))
    ax.axis("off")
    scale = max(abs(t.score) for t in e.tokens) or 1.0
    x = 0.2 / fig.get_figwidth()
    for t in e.tokens:
        s = t.score / scale
        color = (1.0, 1.0 - 0.6 * s, 1.0 - 0.6 * s) if s > 0 else (1.0 + 0.6 * s, 1.0 + 0.6 * s, 1.0)
        fig.text(x, 0.45, t.text, fontsize=13, family="monospace", va="center",  # figure coordinates
                 bbox=dict(facecolor=color, edgecolor="none", pad=2))
        x += (len(t.text) + 1) * char_in / fig.get_figwidth()
    ax.set_title(f"{e.label} ({e.probability:.2f}): logit {e.logit:.3f} = bias {e.bias:.3f} + word parts", fontsize=10)
    fig.savefig(path, dpi=90, bbox_inches="tight")
    plt.close(fig)


def main() -> None:
    args = parse_args(__doc__)
    out = out_dir(args, "ch09")
    mr = load_data("mr", fold=0)
    train = sample(mr.train, 1000 if args.small else None)
    clf = wordconv.TextClassifier("textcnn", epochs=2 if args.small else 5, seed=13, overrides={
        "embeddings.dim": 32, "model.num_filters": 16, "training.lr": 3.0e-3} if args.small else {})
    clf.fit([e.text for e in train], [e.label for e in train])
    model_dir = clf.save(out / "model", overwrite=True)
    model = wordconv.load(model_dir)
    labels = [p.label for p in model.predict(TEXTS)]

    # explain: exact parts that add up to the logit
    e = explain(model, TEXTS[0])[0]
    print(f"explain: {e.label} ({e.probability:.3f}) " + " ".join(f"{t.text}:{t.score:+.3f}" for t in e.tokens))
    print("         top n-grams:", [(g.text, round(g.score, 3)) for g in e.ngrams[:3]])
    assert e.method == "exact" and e.label == labels[0]
    assert abs(sum(t.score for t in e.tokens) + e.bias - e.logit) < 1e-4
    plot_attribution(e, out / "attribution.png")
    check_png(out / "attribution.png")

    # export: ONNX with a parity check, then onnxruntime predicts the same labels
    onnx_path = export_onnx(model_dir, out / "onnx")
    onnx_model = OnnxPredictor.load(onnx_path.parent)
    assert [p.label for p in onnx_model.predict(TEXTS)] == labels
    print(f"export: {onnx_path} ({onnx_path.stat().st_size / 1e6:.1f} MB), same labels as PyTorch: {labels}")

    # serve: the HTTP app on a free port of 127.0.0.1
    with serving(create_app(model)) as url:
        predicted = httpx.post(f"{url}/predict", json={"texts": TEXTS}).json()["predictions"]
        explained = httpx.post(f"{url}/explain", json={"text": TEXTS[0]}).json()
        health = httpx.get(f"{url}/health").json()
    print(f"serve: {url}/predict -> {[p['label'] for p in predicted]}; /health -> {health.get('status')}")
    assert [p["label"] for p in predicted] == labels
    print(f"        /explain keys: {sorted(explained)}")
    print(f"plot: {out / 'attribution.png'}")


if __name__ == "__main__":
    main()
