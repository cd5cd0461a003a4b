"""Chapter 2: word embeddings — random vs pretrained (GloVe) vs word2vec trained from scratch.

Looks up nearest neighbours by cosine similarity in three tables over the same words:
random vectors (U[-0.25, 0.25], what ``embeddings.mode=rand`` starts from), the pretrained GloVe 6B
50-d subset that ships with the data mirror (``glove-6b-50d-10k``), and skip-gram word2vec trained
here on MR's sentences (``wordconv.embeddings.word2vec.train_word2vec``).  Random vectors carry no
meaning; the trained ones put related words together.  ``embeddings_pca.png`` shows a few words of
each table in two dimensions.

    python examples/ch02_embeddings.py [--small] [--out DIR]
"""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import numpy as np

from wordconv.data.registry import load_data
from wordconv.embeddings.catalog import resolve_vectors
from wordconv.embeddings.vectors import iter_vectors
from wordconv.embeddings.word2vec import nearest_neighbours, train_word2vec
from _common import check_png, out_dir, parse_args, pyplot

WORDS = ["good", "great", "excellent", "bad", "awful", "terrible", "film", "movie", "story", "actor", "actress"]


def read_table(path: Path) -> dict[str, np.ndarray]:
    return {word: np.asarray(vector, dtype=np.float32) for word, vector in iter_vectors(path)}


def cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def main() -> None:
    args = parse_args(__doc__)
    out = out_dir(args, "ch02")

    # pretrained: GloVe 6B 50d, the 10,000 most frequent words (from $WORDCONV_DATA/embeddings)
    glove_path = resolve_vectors("glove-6b-50d-10k")
    glove = read_table(glove_path)

    # trained from scratch: skip-gram word2vec on every MR sentence (10,662; a few seconds)
    mr = load_data("mr", fold=0)
    texts = [e.text for e in mr.train + mr.dev + mr.test]
    w2v_path = out / "mr-sg.vec"
    stats = train_word2vec(texts, w2v_path, dim=50 if args.small else 100, min_count=3,
                           epochs=3 if args.small else 20, workers=1, seed=13, progress=False)
    print(f"word2vec on MR: {stats}")
    w2v = read_table(w2v_path)

    # random: Kim's U[-0.25, 0.25] for the same words as GloVe
    rng = np.random.default_rng(13)
    random_table = {w: rng.uniform(-0.25, 0.25, 50).astype(np.float32) for w in glove}

    for name, table, path in [("random", random_table, None), ("GloVe 50d", glove, glove_path),
                              ("word2vec (MR)", w2v, w2v_path)]:
        if path is not None:
            near = nearest_neighbours(path, "good", k=8)
        else:
            q = table["good"]
            near = sorted(((w, cosine(q, v)) for w, v in table.items() if w != "good"), key=lambda p: -p[1])[:8]
        print(f"{name:14s} good -> " + ", ".join(f"{w} {s:.2f}" for w, s in near))

    glove_near = [w for w, _ in nearest_neighbours(glove_path, "good", k=10)]
    assert {"better", "really", "bad"} & set(glove_near), glove_near
    # antonyms share contexts: distributional vectors put "good" near "bad" (a known limit of them)
    assert cosine(glove["good"], glove["great"]) > 0.6
    assert abs(cosine(random_table["good"], random_table["great"])) < 0.5  # random: no relation
    w2v_near = [w for w, _ in nearest_neighbours(w2v_path, "film", k=10)]
    print(f"word2vec (MR)  film -> {', '.join(w2v_near)}")
    assert "movie" in w2v_near, w2v_near  # the same word in MR's reviews

    # two dimensions of each table (PCA over the shown words)
    plt = pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(13, 4.2))
    for ax, (name, table) in zip(axes, [("random U[-0.25, 0.25]", random_table), ("GloVe 6B 50d", glove),
                                        ("word2vec trained on MR", w2v)]):
        words = [w for w in WORDS if w in table]
        m = np.stack([table[w] for w in words])
        m = m - m.mean(axis=0)
        xy = m @ np.linalg.svd(m, full_matrices=False)[2][:2].T
        ax.scatter(xy[:, 0], xy[:, 1], s=12)
        for (x, y), w in zip(xy, words):
            ax.annotate(w, (x, y), fontsize=9)
        ax.set_title(name)
        ax.set_xticks([])
        ax.set_yticks([])
    fig.suptitle("the same words in three embedding tables (PCA to 2-D)")
    fig.tight_layout()
    fig.savefig(out / "embeddings_pca.png", dpi=90)
    plt.close(fig)
    check_png(out / "embeddings_pca.png")
    print(f"plot: {out / 'embeddings_pca.png'}")


if __name__ == "__main__":
    main()
