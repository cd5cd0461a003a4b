"""Explanations: exact per-filter decomposition of textcnn logits, integrated gradients for the other encoders,
offsets into the original text, the per-filter global view and the `explain` command."""

from __future__ import annotations

import json
import math
from types import SimpleNamespace

import pytest
import torch
import typer
from typer.testing import CliRunner

import wordconv
from wordconv.data.batching import pad_batch
from wordconv.errors import ConfigError, DataError, ModelError
from wordconv.explain import decompose, explain, explain_command, top_filter_ngrams
from wordconv.models.registry import model_config_class

from tiny import FAST, make_multilabel, make_sentences, write_labelfirst

# sentiment words among filler words, learnt in about a second: higher lr, no dropout, no early stop
LEARN = ["training.lr=0.005", "training.patience=null", "model.dropout=0.0"]
TEXTS = ["The film was <b>SUPERB</b>, with charming actors!", "a dull plot", "good",
         "This MOVIE is boring &amp; the story... tedious <br /> and weak."]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    d = tmp_path_factory.mktemp("explain")
    return {"train": write_labelfirst(d / "train.txt", make_sentences(80, 1)),
            "test": write_labelfirst(d / "test.txt", make_sentences(20, 3)), "dir": d}


def train(data, model="textcnn", extra=(), epochs=8, task=None):
    held_out = [f"data.test_path={data['test']}", f"data.dev_path={data['test']}"]
    fields = model_config_class(model).model_fields  # fasttext and pretrained have no model.num_filters
    fast = [o for o in FAST if not o.startswith("model.") or o.split("=")[0].removeprefix("model.") in fields]
    return wordconv.train(str(data["train"]), model, epochs=epochs, overrides=[*fast, *held_out, *extra],
                          **({"task": task} if task else {}))


@pytest.fixture(scope="module")
def cnn(data):
    """Kim's CNN (wide 3/4/5 filters, 1-max, ReLU) reading lowercased text without HTML or English stop words."""
    return train(data, extra=[*LEARN, "preprocessing.stopwords=english"])


@pytest.fixture(scope="module")
def attention_cnn(data):
    return train(data, "cnn-attention", extra=LEARN, epochs=4)


def check_offsets(text: str, items) -> None:
    for item in items:
        assert item.text == text[item.start:item.end] and item.start < item.end


# ---- exact decomposition ---------------------------------------------------------------------------


@pytest.mark.parametrize("variant", [[], ["model.padding=valid"], ["model.pooling=kmax", "model.k=2"],
                                     ["model.pooling=avg"], ["model.activation=tanh"]],
                         ids=["max-wide", "valid", "kmax", "avg", "tanh"])
def test_exact_decomposition_sums_to_every_logit(data, cnn, variant):
    model = cnn if not variant else train(data, extra=variant, epochs=2)
    probs = model.predict_proba(TEXTS)
    for d, p in zip(decompose(model, TEXTS), probs):
        assert torch.allclose(torch.softmax(d.logits, 0).float(), p, atol=proba_tolerance(model))
        assert torch.allclose(d.contributions.sum(1) + d.bias, d.logits, atol=1e-5)  # every class
        assert torch.allclose(d.token_scores.sum(1) + d.bias, d.logits, atol=1e-5)
        n = len(d.tokens)
        assert ((d.spans[:, 0] >= 0) & (d.spans[:, 0] < d.spans[:, 1]) & (d.spans[:, 1] <= n)).all()
    for e in explain(model, TEXTS, top_k=None):  # all n-grams: they add up too, for every class
        assert e.method == "exact" and abs(e.delta) < 1e-5
        assert abs(sum(t.score for t in e.tokens) + e.bias - e.logit) < 1e-5
        for name, view in e.per_class.items():
            bias = float(model.model.output.bias.detach()[model.labels.index(name)])
            assert abs(sum(g.score for g in view.ngrams) + bias - view.logit) < 1e-5


def test_dead_relu_filters_contribute_nothing(cnn):
    d = decompose(cnn, [TEXTS[0]])[0]
    assert (d.contributions != 0).any(dim=0).all()  # units worth 0 are left out
    per_filter = cnn.model.encoder.convs[0].out_channels * len(cnn.model.encoder.convs)
    assert len(d.filters) <= per_filter  # 1-max: at most one unit per filter
    assert len(set(d.filters.tolist())) == len(d.filters)


def test_top_ngram_holds_the_sentiment_word(cnn):
    assert cnn.metrics["accuracy"] >= 0.9
    pos, neg = explain(cnn, ["the actors and the plot were SUPERB", "quite a dull story, this movie"], top_k=3)
    assert pos.label == "pos" and "superb" in pos.ngrams[0].text.lower()
    assert neg.label == "neg" and "dull" in neg.ngrams[0].text
    assert pos.ngrams[0].filter is not None and pos.ngrams[0].score > 0
    assert max(pos.tokens, key=lambda t: t.score).text == "SUPERB"
    # best first: positive contributions in decreasing order, then the negative ones
    scores = [g.score for g in pos.ngrams]
    positive = [s for s in scores if s > 0]
    assert scores[:len(positive)] == sorted(positive, reverse=True)


def test_explaining_another_label(cnn):
    e = explain(cnn, ["a superb film"], label="neg")[0]
    assert e.label == "neg" and e.probability < 0.5
    assert e.logit == e.per_class["neg"].logit and e.ngrams == e.per_class["neg"].ngrams


# ---- offsets into the original text ---------------------------------------------------------------


def test_offsets_slice_the_original_text(cnn, attention_cnn):
    text = "The <i>plot</i> was SUPERB, and <b>Lovely</b>... the ACTORS!"
    for model in (cnn, attention_cnn):
        e = explain(model, [text], top_k=None)[0]
        check_offsets(text, e.tokens)
        check_offsets(text, e.ngrams)
        for view in e.per_class.values():
            check_offsets(text, view.ngrams)
        starts = [t.start for t in e.tokens]
        assert starts == sorted(starts)
        assert not any("<" in t.text or ">" in t.text for t in e.tokens)  # HTML tags are not words the model read
        # the tokens are exactly what the model read (same ids as prediction)
        ids = model._to_ids.encode_many([text])[0]
        assert model.artifact.vocab.encode([t.text.lower() for t in e.tokens]) == ids
    words = [t.text for t in explain(cnn, [text])[0].tokens]
    assert "The" not in words and "was" not in words and "SUPERB" in words and "ACTORS" in words  # stop words dropped


def test_to_dict_shape(cnn, attention_cnn):
    for model, method in ((cnn, "exact"), (attention_cnn, "integrated_gradients")):
        d = explain(model, [TEXTS[0]], top_k=2)[0].to_dict()
        json.dumps(d)
        assert list(d) == ["label", "probability", "method", "logit", "bias", "tokens", "ngrams", "attention",
                           "per_class"]
        assert d["method"] == method and d["label"] in model.labels
        assert all(list(t) == ["text", "start", "end", "score"] for t in d["tokens"])
        assert all(list(g) == ["text", "start", "end", "score", "filter"] for g in d["ngrams"])
        assert len(d["ngrams"]) <= 2 and set(d["per_class"]) == set(model.labels)
        assert all(list(v) == ["logit", "ngrams"] for v in d["per_class"].values())
        assert (d["attention"] is None) == (model is cnn)
        assert all((g["filter"] is None) == (method != "exact") for g in d["ngrams"])


# ---- integrated gradients --------------------------------------------------------------------------


def model_ids(model, text: str) -> torch.Tensor:
    """(1, T) ids as the predictor batches them (padded up to the widest filter), on the model's device."""
    ids = pad_batch(model._to_ids.encode_many([text]), pad_id=model._to_ids.pad_id,
                    min_length=model.model.encoder.min_length)[0]
    return ids.to(next(model.model.parameters()).device)


def proba_tolerance(model) -> float:
    """predict_proba runs under bf16 autocast where the model trained so (a GPU); explanations run in float32."""
    return 2e-2 if model._bf16 else 1e-5


def zero_embedding_logits(model, text: str) -> torch.Tensor:
    """The model's logits with every word vector zeroed: the baseline, computed independently."""
    ids = model_ids(model, text)
    mods = [model.model.encoder.embedding] + [m for m in [getattr(model.model.encoder, "bigrams", None)] if m]
    handles = [m.register_forward_hook(lambda mod, inp, out: torch.zeros_like(out)) for m in mods]
    try:
        with torch.no_grad():
            return model.model(ids=ids)["logits"][0]
    finally:
        for h in handles:
            h.remove()


def check_completeness(model, texts, steps=32, rtol=0.02):
    for text, e in zip(texts, explain(model, texts, top_k=None, steps=steps)):
        assert e.method == "integrated_gradients"
        with torch.no_grad():
            logits = model.model(ids=model_ids(model, text))["logits"][0]
        base = zero_embedding_logits(model, text) if hasattr(model.model.encoder, "embedding") else None
        for k, (name, view) in enumerate(e.per_class.items()):
            assert view.logit == pytest.approx(float(logits[k]), abs=1e-5)
            bias = float(base[k]) if base is not None else (e.bias if name == e.label else None)
            if bias is None:
                continue
            total = sum(g.score for g in view.ngrams)  # every token with a nonzero score
            gap = view.logit - bias
            assert abs(total - gap) <= rtol * abs(gap) + 1e-3, (name, total, gap)
        assert abs(e.delta) <= rtol * abs(e.logit - e.bias) + 1e-3


def test_integrated_gradients_completeness_cnn_attention(attention_cnn):
    check_completeness(attention_cnn, TEXTS)
    # more steps: closer
    e8, e64 = (explain(attention_cnn, [TEXTS[3]], steps=s)[0] for s in (2, 64))
    assert abs(e64.delta) <= abs(e8.delta) + 1e-6


@pytest.mark.parametrize("model_type", ["dpcnn", "fasttext", "stacked"])
def test_integrated_gradients_other_encoders(data, model_type):
    model = train(data, model_type, epochs=1)
    check_completeness(model, TEXTS[:3])
    with pytest.raises(ModelError, match="exact.*textcnn"):
        explain(model, ["good"], method="exact")


def test_attention_weights_for_cnn_attention(attention_cnn, cnn):
    text = "the plot was dull, the actors weak"
    e = explain(attention_cnn, [text])[0]
    assert e.attention is not None and len(e.attention) == len(e.tokens)
    assert all(a >= 0 for a in e.attention) and math.isclose(sum(e.attention), 1.0, abs_tol=1e-5)
    with torch.no_grad():
        expected = attention_cnn.model.encoder(model_ids(attention_cnn, text)).attention[0].tolist()
    assert e.attention == pytest.approx(expected, abs=1e-6)
    assert explain(cnn, [text])[0].attention is None


def test_multilabel_is_explained_with_sigmoid_probabilities(data):
    d = data["dir"]
    path = d / "ml.jsonl"
    path.write_text("".join(json.dumps({"text": t, "label": labs}) + "\n" for labs, t in make_multilabel(60, 1)))
    model = wordconv.train(str(path), "textcnn", task="multilabel", epochs=2,
                           overrides=[*FAST, f"data.test_path={path}", f"data.dev_path={path}"])
    e = explain(model, ["the pizza was good"], label="food")[0]
    expected = float(model.predict_proba(["the pizza was good"])[0, 0])
    assert e.probability == pytest.approx(expected, abs=proba_tolerance(model))
    assert abs(e.delta) < 1e-5


def test_pretrained_encoder_words_and_windows(data, tmp_path):
    pytest.importorskip("transformers")
    from tiny_hf import WORDS, write_tiny_bert_words

    bert = write_tiny_bert_words(tmp_path / "bert", WORDS)
    # windows of 6 sub-tokens, 3 apart: a long text is read as several overlapping windows
    model = train(data, "pretrained", epochs=1, extra=[f"model.encoder={bert}", "model.max_length=8",
                                                       "model.truncation=window", "model.window_stride=3"])
    text = "The film was <i>SUPERBLY</i> moving, with charming actors and a lovely story"
    e = explain(model, [text], top_k=None)[0]
    check_offsets(text, e.tokens)
    words = [t.text for t in e.tokens]
    assert "SUPERBLY" in words  # an unknown word's word pieces summed into the word
    assert e.attention is None
    assert abs(e.delta) <= 0.02 * abs(e.logit - e.bias) + 1e-3  # completeness over every window


# ---- the global view -------------------------------------------------------------------------------


def test_global_view_lists_ngrams_per_filter(cnn):
    texts = [t for _, t in make_sentences(60, 4)] + ["<b>SUPERB</b>!"]
    rows = top_filter_ngrams(cnn, texts, top=3, batch_size=16)
    encoder = cnn.model.encoder
    assert len(rows) == encoder.convs[0].out_channels * len(encoder.convs)
    assert [r["filter"] for r in rows] == list(range(len(rows)))
    assert {r["width"] for r in rows} == {3, 4, 5}
    listed = []
    for r in rows:
        assert r["label"] in cnn.labels and len(r["ngrams"]) <= 3
        acts = [g["activation"] for g in r["ngrams"]]
        assert acts == sorted(acts, reverse=True) and all(a > 0 for a in acts)  # ReLU: only windows that fire
        for g in r["ngrams"]:
            assert g["text"] == texts[g["index"]][g["start"]:g["end"]]
            listed.append(g["text"].lower())
    assert any(w in gram for gram in listed for w in ("superb", "dull", "boring", "great", "awful"))
    # the same answer whatever the batch size
    assert top_filter_ngrams(cnn, texts, top=3, batch_size=256) == rows


def test_global_view_needs_a_textcnn(attention_cnn):
    with pytest.raises(ModelError, match="textcnn"):
        top_filter_ngrams(attention_cnn, ["good"])


# ---- errors ----------------------------------------------------------------------------------------


def test_errors(cnn):
    with pytest.raises(DataError, match="empty"):
        explain(cnn, ["a good film", "   "])
    with pytest.raises(DataError, match="no words left"):
        explain(cnn, ["The and of this"])  # all stop words
    with pytest.raises(DataError, match="not one of the model's labels.*neg, pos"):
        explain(cnn, ["good"], label="positive")
    with pytest.raises(ConfigError, match="steps"):
        explain(cnn, ["good"], steps=0)
    with pytest.raises(ConfigError, match="unknown explanation method"):
        explain(cnn, ["good"], method="lime")
    for task in ("regression", "qa"):
        with pytest.raises(ModelError, match="text classifiers"):
            explain(SimpleNamespace(task=task), ["good"])


def test_ner_model_is_refused(data):
    d = data["dir"]
    rows = ["John NN O B-PER", "visited NN O O", "Paris NN O B-LOC", "", "Mary NN O B-PER", "met NN O O",
            "Ann NN O B-PER", ""]
    path = d / "ner.conll"
    path.write_text("\n".join(rows * 6) + "\n", encoding="utf-8")
    tagger = wordconv.train(str(path), "tagger", task="ner", epochs=1, overrides=[
        "embeddings.dim=8", "model.num_filters=8", "model.char_dim=4", "model.char_filters=4",
        "training.progress=false", f"data.dev_path={path}", f"data.test_path={path}"])
    with pytest.raises(ModelError, match="explanations cover text classifiers.*ner"):
        explain(tagger, ["John visited Paris"])
    with pytest.raises(ModelError, match="text classifiers"):
        top_filter_ngrams(tagger, ["John visited Paris"])


# ---- the command -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cli(cnn, data):
    app = typer.Typer()
    app.command("explain")(explain_command)
    app.command("other")(lambda: None)  # two commands: `explain` is a subcommand, as in wordconv's CLI
    model_dir = data["dir"] / "model"
    cnn.save(model_dir)
    return app, model_dir


def test_command_explains_texts(cli):
    app, model_dir = cli
    texts = ["a <b>superb</b> film", "dull"]
    result = CliRunner().invoke(app, ["explain", str(model_dir), *texts, "--top-k", "2"])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["text"] for line in lines] == texts
    assert [line["label"] for line in lines] == ["pos", "neg"]
    assert all(line["method"] == "exact" and len(line["ngrams"]) <= 2 for line in lines)


def test_command_filter_view(cli, data, tmp_path):
    app, model_dir = cli
    out = tmp_path / "filters.json"
    result = CliRunner().invoke(app, ["explain", str(model_dir), "--data", str(data["test"]), "--top", "2",
                                      "--filters", "5", "--output", str(out)])
    assert result.exit_code == 0, result.output
    assert "top n-grams per filter" in result.stdout
    rows = json.loads(out.read_text())
    assert len(rows) == 24 and all(len(r["ngrams"]) <= 2 for r in rows)
    texts = [line.split(" ", 1)[1] for line in data["test"].read_text().splitlines()]  # labels read and dropped
    assert all(texts[g["index"]][g["start"]:g["end"]] == g["text"] for r in rows for g in r["ngrams"])


def test_command_errors(cli):
    app, model_dir = cli
    result = CliRunner().invoke(app, ["explain", str(model_dir)])
    assert result.exit_code != 0 and "nothing to explain" in result.output
    result = CliRunner().invoke(app, ["explain", str(model_dir), "   "])
    assert result.exit_code == 2 and "empty" in result.output  # a DataError's exit code


def test_wordconv_predict_explain_and_the_predictor_method(cli, cnn):
    from wordconv.cli import app as wordconv_app

    _, model_dir = cli
    result = CliRunner().invoke(wordconv_app, ["predict", str(model_dir), "a superb film", "--explain"])
    assert result.exit_code == 0, result.output
    row = json.loads(result.stdout.splitlines()[0])
    assert row["explanation"]["label"] == row["label"] and row["explanation"]["method"] == "exact"
    assert cnn.explain("a superb film")[0].to_dict() == row["explanation"]
    result = CliRunner().invoke(wordconv_app, ["explain", str(model_dir), "dull"])  # mounted on the real CLI
    assert result.exit_code == 0 and json.loads(result.stdout)["label"] == "neg"
