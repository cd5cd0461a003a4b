"""ONNX export: every text-classification encoder exports, matches PyTorch, and serves through OnnxPredictor."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
import typer
from typer.testing import CliRunner

import wordconv
from wordconv.errors import ConfigError, ModelError
from wordconv.export import (
    INT8_FILE, MANIFEST, ONNX_FILE, OnnxPredictor, check_parity, export_command, export_onnx, export_onnx_detailed,
)

from tiny import FAST, make_scored, make_sentences, write_labelfirst
from tiny_hf import write_tiny_bert

for _module in ("onnx", "onnxscript", "onnxruntime"):  # wordconv[onnx]
    pytest.importorskip(_module)

WORD_SETS = [o for o in FAST if not o.startswith("model.")]
# case -> (model type, settings); small, DPCNN shallow (its export unrolls every downsampling block), k-max with
# more windows than a one-word text has (the export pads for it)
CASES = {
    "textcnn": ("textcnn", ["model.num_filters=8"]),
    "textcnn-kmax": ("textcnn", ["model.num_filters=8", "model.pooling=kmax", "model.k=6"]),
    "stacked": ("stacked", ["model.num_filters=8", "model.hidden_dim=8"]),
    "dpcnn": ("dpcnn", ["model.num_filters=8", "model.max_blocks=2"]),
    "cnn-attention": ("cnn-attention", ["model.num_filters=8"]),
    "fasttext": ("fasttext", ["model.buckets=1000"]),
    "pretrained": ("pretrained", []),
    # pretrained vectors with extra words (a second, fixed table) and two channels: exported as one table
    "textcnn-vectors": ("textcnn", ["model.num_filters=8", "embeddings.mode=non-static", "embeddings.vectors={vectors}"]),
    "textcnn-multichannel": ("textcnn", ["model.num_filters=8", "embeddings.mode=multichannel",
                                         "embeddings.vectors={vectors}"]),
}
# one word, short, medium, long (past the tiny BERT's 62-token window), unknown words, punctuation
TEXTS = ["good", "a dull film", "the story was quite moving and the actors were brilliant",
         " ".join(["the plot was tedious and boring"] * 12), "zzz qqq", "superb !", "awful , awful , awful .",
         "this movie is a lovely and charming story with fun actors"]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("data")
    rows = make_sentences(80, 1)
    # 16-d vectors for the training words and for words only the test texts have (the extra words)
    words = sorted({w for _, text in rows for w in text.split()}) + ["zzz", "qqq", "lovely", "tedious"]
    g = np.random.default_rng(0)
    lines = [f"{len(words)} 16"] + [w + " " + " ".join(f"{x:.4f}" for x in g.normal(size=16)) for w in words]
    (d / "vectors.vec").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return {"train": write_labelfirst(d / "train.txt", rows),
            "test": write_labelfirst(d / "test.txt", make_sentences(40, 3)), "vectors": d / "vectors.vec"}


@pytest.fixture(scope="module")
def bert(tmp_path_factory):
    return write_tiny_bert(tmp_path_factory.mktemp("hf") / "bert")


def train(case: str, data, bert, out):
    model_type, sets = CASES[case]
    if model_type == "pretrained":
        # fp32: on CPUs with native bf16 an encoder would default to bf16 autocast, and the export is fp32
        sets = [f"model.encoder={bert}", "training.batch_size=8", "training.progress=false", "training.bf16=false"]
    else:
        sets = WORD_SETS + [o.format(vectors=data["vectors"]) for o in sets]
    return wordconv.train(str(data["train"]), model_type, out, epochs=2, overrides=sets)


@pytest.fixture(scope="module")
def exported(data, bert, tmp_path_factory):
    """case -> a trained model directory with model.onnx (textcnn: also model.int8.onnx)."""
    cache: dict = {}

    def get(case: str):
        if case not in cache:
            out = tmp_path_factory.mktemp(case) / "model"
            train(case, data, bert, out)
            export_onnx_detailed(out, quantize="int8" if case in ("textcnn", "pretrained") else None)
            cache[case] = out
        return cache[case]

    return get


def test_textcnn_export_writes_files_and_manifest(exported):
    out = exported("textcnn")
    assert (out / ONNX_FILE).is_file() and (out / INT8_FILE).is_file()
    manifest = json.loads((out / MANIFEST).read_text())
    assert isinstance(manifest["opset"], int) and manifest["task"] == "textcat" and manifest["model"] == "textcnn"
    ids = manifest["inputs"][0]
    assert (ids["name"], ids["dtype"], ids["shape"], ids["pad_id"]) == ("ids", "int64", ["batch", "seq"], 0)
    assert manifest["outputs"] == [{"name": "logits", "dtype": "float32", "shape": ["batch", 2]}]
    from wordconv.data.download import sha256_file as _sha256

    assert manifest["source"]["sha256"] == _sha256(out / "model.safetensors")
    assert manifest["files"]["fp32"]["sha256"] == _sha256(out / ONNX_FILE)
    assert manifest["parity"]["ok"] and manifest["parity"]["max_logit_diff"] <= 1e-4
    assert manifest["folded_embedding_matmuls"] == 1  # Embedding -> filters of every width: one lookup
    assert not list(out.glob(".*.tmp"))  # temporary files renamed or removed


@pytest.mark.parametrize("case", ["textcnn-vectors", "textcnn-multichannel"])
def test_two_table_embeddings_fold_into_one_lookup(case, exported):
    out = exported(case)
    embedding = wordconv.load(out).model.encoder.embedding
    assert embedding.n_extra > 0 and embedding.fixed is not None  # the model really has two tables
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["folded_embedding_matmuls"] == 1 and manifest["parity"]["ok"]
    import onnx

    ops = {n.op_type for n in onnx.load(str(out / ONNX_FILE)).graph.node}
    assert "MatMul" not in ops and "Conv" not in ops  # the filters live in the lookup table now


def test_one_table_gives_the_same_logits_and_is_swapped_back(exported):
    from wordconv.export import _OneTable, _one_table_embeddings

    predictor = wordconv.load(exported("textcnn-vectors"))
    model = predictor.model.eval()
    original = model.encoder.embedding
    ids = torch.tensor([[2, 5, 7, len(predictor.artifact.vocab) - 1, 0]])
    assert ids[0, 3] >= original.n_train  # an extra word: read from the fixed table
    with torch.no_grad():
        want = model(ids=ids)["logits"]
        with _one_table_embeddings(model):
            assert isinstance(model.encoder.embedding, _OneTable)
            got = model(ids=ids)["logits"]
    torch.testing.assert_close(got, want, rtol=0, atol=1e-6)
    assert model.encoder.embedding is original  # the model is left as it was


@pytest.mark.parametrize("case", list(CASES))
def test_onnx_matches_pytorch(case, exported):
    out = exported(case)
    report = check_parity(out, TEXTS, batch_sizes=(1, 3, 256))
    assert report.ok, report.summary()
    assert report.max_logit_diff <= 1e-4 and report.label_agreement == 1.0
    torch_model, onnx_model = wordconv.load(out), OnnxPredictor.load(out)
    assert onnx_model.labels == torch_model.labels and onnx_model.task == "textcat"
    for size in (1, 256):
        want, got = torch_model.predict(TEXTS, top_k=2), onnx_model.predict(TEXTS, top_k=2, batch_size=size)
        assert [p.label for p in got] == [p.label for p in want]
        assert [[lab for lab, _ in p.top_k] for p in got] == [[lab for lab, _ in p.top_k] for p in want]
        assert all(abs(g.score - w.score) < 1e-5 for g, w in zip(got, want))
        probs = onnx_model.predict_proba(TEXTS, batch_size=size)
        assert isinstance(probs, torch.Tensor) and probs.shape == (len(TEXTS), 2)
        torch.testing.assert_close(probs, torch_model.predict_proba(TEXTS), atol=1e-5, rtol=0)


@pytest.mark.parametrize("case", list(CASES))
def test_batch_and_length_axes_are_dynamic(case, exported):
    out = exported(case)
    torch_model, onnx_model = wordconv.load(out), OnnxPredictor.load(out)
    subword = case == "pretrained"
    low, pad = (0, -1) if subword else (2, 0)
    high = torch_model.model.encoder.hf_config.vocab_size if subword else len(torch_model.artifact.vocab)
    g = torch.Generator().manual_seed(0)
    for batch, length in [(1, 3), (7, 50), (2, 1), (4, 17)]:
        length = max(length, torch_model.model.encoder.min_length)
        ids = torch.randint(low, high, (batch, length), generator=g)
        ids[0, max(1, length // 3):] = pad  # a shorter text in the batch
        with torch.no_grad():
            want = torch_model.model(ids=ids)["logits"]
        got = onnx_model.logits(ids)
        assert got.shape == (batch, 2)
        np.testing.assert_allclose(got, want.numpy(), atol=1e-4, rtol=0)


@pytest.mark.parametrize("case", ["textcnn", "pretrained"])
def test_int8_model_loads_and_mostly_agrees(case, exported, data):
    out = exported(case)
    int8 = OnnxPredictor.load(out, quantized=True)
    assert int8.quantized and "int8" in repr(int8)
    texts = [line.split(" ", 1)[1].strip() for line in data["test"].read_text().splitlines()]
    want = [p.label for p in wordconv.load(out).predict(texts)]
    got = [p.label for p in int8.predict(texts)]
    assert np.mean([a == b for a, b in zip(got, want)]) >= 0.8
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["files"]["int8"]["bytes"] < manifest["files"]["fp32"]["bytes"]
    assert 0.0 <= manifest["int8_parity"]["label_agreement"] <= 1.0


def test_evaluate_and_empty_input(exported, data):
    out = exported("textcnn")
    onnx_model = OnnxPredictor.load(out)
    rows = [line.split(" ", 1) for line in data["test"].read_text().splitlines()]
    texts, labels = [t.strip() for _, t in rows], [lab for lab, _ in rows]
    assert onnx_model.evaluate(texts, labels)["accuracy"] == pytest.approx(
        wordconv.load(out).evaluate(texts, labels)["accuracy"])
    assert onnx_model.predict([]) == [] and onnx_model.predict_proba([]).shape == (0, 2)
    assert onnx_model.predict("superb")[0].label == wordconv.load(out).predict("superb")[0].label
    reference = wordconv.load(out)
    assert onnx_model.metrics == reference.metrics and onnx_model.meta == reference.meta
    assert onnx_model.config == reference.config and onnx_model.config.model.type == "textcnn"


def test_export_to_another_directory_serves_without_weights(exported, tmp_path):
    src = exported("fasttext")
    out = tmp_path / "deploy"
    assert export_onnx(src, out) == out / ONNX_FILE
    assert not (out / "model.safetensors").exists() and (out / "vocab.json").is_file()
    served = OnnxPredictor.load(out)
    assert [p.label for p in served.predict(TEXTS)] == [p.label for p in wordconv.load(src).predict(TEXTS)]


def test_pretrained_export_serves_from_its_own_tokenizer(exported, tmp_path):
    src = exported("pretrained")
    out = tmp_path / "deploy"
    export_onnx(src, out)
    assert (out / "encoder" / "tokenizer.json").is_file()
    served = OnnxPredictor.load(out)
    want = wordconv.load(src).predict_proba(TEXTS)
    torch.testing.assert_close(served.predict_proba(TEXTS), want, atol=1e-5, rtol=0)


def test_stale_export_and_missing_files_are_clear_errors(exported, tmp_path):
    src = exported("textcnn")
    out = tmp_path / "model"
    shutil.copytree(src, out)
    (out / INT8_FILE).unlink()
    with pytest.raises(ModelError, match="--quantize int8"):
        OnnxPredictor.load(out, quantized=True)
    shutil.copyfile(exported("textcnn-kmax") / "model.safetensors", out / "model.safetensors")
    with pytest.raises(ModelError, match="other weights.*wordconv export"):
        OnnxPredictor.load(out)
    (out / MANIFEST).unlink()
    with pytest.raises(ModelError, match="wordconv export"):
        OnnxPredictor.load(out)
    with pytest.raises(ModelError, match="does not exist"):
        OnnxPredictor.load(tmp_path / "nope")


def test_reexport_without_quantize_removes_the_stale_int8(exported, tmp_path):
    out = tmp_path / "model"
    shutil.copytree(exported("textcnn"), out)
    result = export_onnx_detailed(out)
    assert result.removed == [out / INT8_FILE] and not (out / INT8_FILE).exists()
    assert "int8" not in json.loads((out / MANIFEST).read_text())["files"]


def test_bad_arguments_and_unsupported_models(data, tmp_path, exported):
    with pytest.raises(ModelError, match="does not exist"):
        export_onnx(tmp_path / "nope")
    with pytest.raises(ConfigError, match="int4"):
        export_onnx(exported("textcnn"), quantize="int4")
    scored = write_labelfirst(tmp_path / "scored.txt", [(str(y), t) for y, t in make_scored(30, 0)])
    regression = tmp_path / "regression"
    wordconv.train(str(scored), "textcnn", regression, task="regression", epochs=1, overrides=FAST)
    with pytest.raises(ModelError, match="task regression"):
        export_onnx(regression)
    windowed = tmp_path / "windowed"
    shutil.copytree(exported("pretrained"), windowed)
    config = json.loads((windowed / "config.json").read_text())
    config["model"]["truncation"] = "window"
    (windowed / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelError, match="truncation=window"):
        export_onnx(windowed)
    unbounded = tmp_path / "unbounded"
    shutil.copytree(exported("dpcnn"), unbounded)
    config = json.loads((unbounded / "config.json").read_text())
    config["model"]["max_blocks"], config["preprocessing"]["max_length"] = None, None
    (unbounded / "config.json").write_text(json.dumps(config))
    with pytest.raises(ModelError, match="max_blocks"):
        export_onnx(unbounded)


def cli_app() -> typer.Typer:
    app = typer.Typer()
    app.command("export")(export_command)

    @app.callback()
    def main() -> None:  # a group, so that `export` is a subcommand as in the wordconv CLI
        pass

    return app


def test_export_command(exported, tmp_path):
    out = tmp_path / "model"
    shutil.copytree(exported("fasttext"), out)
    runner = CliRunner()
    result = runner.invoke(cli_app(), ["export", str(out), "--quantize", "int8"])
    assert result.exit_code == 0, result.output
    assert "model.onnx" in result.output and "model.int8.onnx" in result.output and "parity ok" in result.output
    assert (out / INT8_FILE).is_file()
    result = runner.invoke(cli_app(), ["export", str(out), "--format", "tflite"])
    assert result.exit_code == ConfigError.exit_code and "tflite" in result.output and "Traceback" not in result.output
    result = runner.invoke(cli_app(), ["export", str(tmp_path / "nope")])
    assert result.exit_code == ModelError.exit_code and "does not exist" in result.output


# ------------------------------------------------------------------------------------------------
# serving speed: numpy batches, ids remembered per piece, the padding mask as a lookup

def task_path_probs(model: OnnxPredictor, texts: list[str], batch_size: int) -> torch.Tensor:
    """predict_proba as the task computes it from ``encode``: texts sorted by length and cut into batches
    (EncodedTexts.batches, torch padding), each batch's softmax put back in input order."""
    probs = torch.empty(len(texts), len(model.labels))
    for batch in model.encode(texts).batches(batch_size, shuffle=False):
        probs[batch["index"]] = torch.softmax(torch.from_numpy(model.logits(batch["ids"])), dim=-1)
    return probs


@pytest.mark.parametrize("case", ["textcnn", "dpcnn", "pretrained"])
def test_predict_proba_equals_the_task_path(case, exported, data):
    out = exported(case)
    model = OnnxPredictor.load(out)
    rows = [line.split(" ", 1)[1].strip() for line in data["test"].read_text().splitlines()]
    texts = (rows + TEXTS) * 2  # 96 texts of mixed lengths
    reference = wordconv.load(out).predict_proba(texts)
    for batch_size in (1, 3, 7, 256):
        for n in (1, 2, 4, 15, len(texts)):  # one text, a batch boundary, several batches
            got = model.predict_proba(texts[:n], batch_size=batch_size)
            assert got.shape == (n, 2) and got.dtype == torch.float32
            assert torch.equal(got, task_path_probs(model, texts[:n], batch_size)), (batch_size, n)  # the same batches
            torch.testing.assert_close(got, reference[:n], atol=1e-5, rtol=0)  # input order kept
        assert model.predict_proba([], batch_size=batch_size).shape == (0, 2)
        labels = [p.label for p in model.predict(texts, batch_size=batch_size)]
        assert labels == [model.labels[i] for i in task_path_probs(model, texts, batch_size).argmax(dim=1).tolist()]


def test_predict_paths_keep_validation_and_metrics(exported, data):
    from wordconv.errors import DataError

    from wordconv.export import _PieceWordIds

    out = exported("textcnn")
    model = OnnxPredictor.load(out)
    assert isinstance(model._to_ids, _PieceWordIds)  # the regex tokenizer: ids remembered per piece
    with pytest.raises(ConfigError, match="batch_size"):
        model.predict_proba(TEXTS, batch_size=0)
    with pytest.raises(DataError, match="text 1 is empty"):
        model.predict_proba(["good", "  "])
    with pytest.raises(DataError, match="expected a string"):
        model.predict(["good", 3])
    rows = [line.split(" ", 1) for line in data["test"].read_text().splitlines()]
    texts, labels = [t.strip() for _, t in rows], [lab for lab, _ in rows]
    reference = wordconv.load(out).evaluate(texts, labels)
    got = model.evaluate(texts, labels, batch_size=3)
    assert got["accuracy"] == pytest.approx(reference["accuracy"])
    assert got["confusion_matrix"] == reference["confusion_matrix"]
    with pytest.raises(DataError):
        model.evaluate(texts[:2], ["positive", "no-such-label"])


def fuzz_texts(n: int, seed: int = 0) -> list[str]:
    """Texts mixing what the regex tokenizer treats specially: clitics, hyphens, numbers, punctuation, HTML,
    combining marks, CJK, final sigma, and whitespace of every kind."""
    import random

    rng = random.Random(seed)
    alphabet = (list("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789") * 3 + [" "] * 30
                + list("-'\u2019.,_<>/!?()`\"&;:#@$%*")
                + ["\t", "\n", "\xa0", "\u3000", "\x1c", "\x1f", "\u2028", "\x85", "\u200b", "\ufeff", "\u00e9",
                   "\u0301", "\u0308", "\u4e2d", "\u6587", "\ud55c", "\u03a3", "\u03c3", "\u0391\u03a3", "\u0130",
                   "\u00df", "\ufb01", "\u2167", "\u00b2", "\u0661", "\U0001f642", "n't", "'s", "'ve", "N'T", "<br />",
                   "<i>", "</p>", "<!-- c -->", "<a href='x y'>", "3.5", "1,000", "o'clock", "well-made", "don't",
                   "they'd've", "\u2019re", " 's ", "can't", "__", "_x_"])
    return ["".join(rng.choice(alphabet) for _ in range(rng.randint(1, 40))) for _ in range(n)]


@pytest.mark.parametrize("settings", [{}, {"normalize": "kim"}, {"remove_punct": True, "stopwords": "english"},
                                      {"lowercase": False, "strip_html": False}, {"tokenizer": "whitespace"},
                                      {"max_length": 5}, {"max_length": 6, "truncation": "tail"},
                                      {"max_length": 7, "truncation": "head"}])
def test_piecewise_ids_equal_word_ids(settings):
    from wordconv.data.text import PreprocessConfig, Preprocessor
    from wordconv.data.vocab import Vocab
    from wordconv.export import _PieceWordIds
    from wordconv.tasks.base import WordIds

    config = PreprocessConfig(**settings)
    texts = fuzz_texts(3000) + [t for _, t in make_sentences(200, 5)] + ["<b>bold</b> don't", "ΑΣ ΒΣ. σ"]
    vocab = Vocab.build([Preprocessor(config)(t) for t in texts[::2]])  # half the words known, half <unk>
    want, got = WordIds(Preprocessor(config), vocab), _PieceWordIds(Preprocessor(config), vocab)
    assert got.encode_many(texts) == want.encode_many(texts)
    assert got.encode_many(texts) == want.encode_many(texts)  # and again, from the remembered pieces
    assert got.preprocessor.truncated == want.preprocessor.truncated
    got._pieces.clear()
    got._pieces.limit = 50  # a full memo starts over and still gives the same ids
    assert got.encode_many(texts[:500]) == want.encode_many(texts[:500]) and len(got._pieces) <= 50


def test_padding_mask_becomes_a_lookup_bit_for_bit(exported, tmp_path):
    import onnx
    import onnxruntime as ort

    from wordconv.export import _export_graph, _rewrite, mask_padding_in_lookup
    from wordconv.inference import Predictor

    out = exported("textcnn")
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["masks_in_lookups"] == 3  # one per filter width
    served = onnx.load(str(out / ONNX_FILE))
    assert not [n for n in served.graph.node if n.op_type == "Where" and n.input[1] in
                {t.name for t in served.graph.initializer if onnx.numpy_helper.to_array(t).dtype == np.float32}]
    int8 = onnx.load(str(out / INT8_FILE))  # quantized before the rewrite: no -inf row to scale
    assert sum(n.op_type == "Where" for n in int8.graph.node) == 3

    path = tmp_path / "model.onnx"
    _export_graph(Predictor.load(out), path, None)
    _rewrite(path, None)
    before = onnx.load(str(path))
    after = onnx.load(str(path))
    assert mask_padding_in_lookup(after) == 3 and mask_padding_in_lookup(after) == 0
    onnx.checker.check_model(after)
    run = {name: ort.InferenceSession(m.SerializeToString(), providers=["CPUExecutionProvider"]).run
           for name, m in (("before", before), ("after", after))}
    vocab_size = len(json.loads((out / "vocab.json").read_text())["itos"])
    g = torch.Generator().manual_seed(0)
    for batch, length in [(1, 1), (5, 9), (3, 30), (8, 2)]:
        ids = torch.randint(2, min(vocab_size, 50), (batch, length), generator=g)
        ids[0, max(1, length // 2):] = 0  # a shorter text
        if batch > 2:
            ids[2, :] = 0  # a text with no known word left at all
        feed = {"ids": ids.numpy()}
        np.testing.assert_array_equal(run["after"](None, feed)[0], run["before"](None, feed)[0])
