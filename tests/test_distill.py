"""Distillation (issue 11): the loss on hand-computed logits, the augmentation, the teacher cache,
and end-to-end runs where a tiny word-CNN teacher teaches a tiny student."""

from __future__ import annotations

import json
import math

import pytest
import torch
from typer.testing import CliRunner

import wordconv
from wordconv import distillation as D
from wordconv.cli import app
from wordconv.data.text import Preprocessor
from wordconv.data.batching import pad_batch
from wordconv.errors import ConfigError, DataError
from wordconv.pipeline import build_model
from wordconv.training.trainer import native_bf16

from tiny import FAST, make_sentences, write_labelfirst

# ---------------------------------------------------------------------------------------------
# the loss


def test_mse_is_squared_distance_summed_over_classes_and_averaged_over_rows():
    logits = torch.tensor([[1.0, 2.0], [0.0, 0.0]])
    teacher = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
    # row 0: 1 + 4 = 5; row 1: 1 + 1 = 2; mean 3.5
    assert D.distillation_loss(logits, teacher).item() == pytest.approx(3.5)


def test_kl_at_temperature_matches_hand_computation():
    s, t, T = [1.0, 3.0], [2.0, 0.0], 2.0

    def softmax(z):
        e = [math.exp(v / T) for v in z]
        return [v / sum(e) for v in e]

    p, q = softmax(t), softmax(s)
    expected = T * T * sum(pi * math.log(pi / qi) for pi, qi in zip(p, q))
    got = D.distillation_loss(torch.tensor([s]), torch.tensor([t]), loss="kl", temperature=T)
    assert got.item() == pytest.approx(expected, rel=1e-5)
    # equal logits: nothing to learn
    assert D.distillation_loss(torch.tensor([s]), torch.tensor([s]), loss="kl", temperature=T).item() == pytest.approx(0.0, abs=1e-7)


def test_gold_cross_entropy_only_on_rows_with_a_label():
    logits = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    teacher = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    soft = ((1.0 + 0.0) + (0.0 + 1.0)) / 2  # 1.0
    ce0 = -math.log(math.exp(2.0) / (math.exp(2.0) + 1.0))  # row 0, gold class 0
    got = D.distillation_loss(logits, teacher, torch.tensor([0, -1]), alpha=0.25)
    assert got.item() == pytest.approx(0.25 * ce0 + 0.75 * soft, rel=1e-6)
    # no gold label in the batch: the teacher term alone, weighted
    got = D.distillation_loss(logits, teacher, torch.tensor([-1, -1]), alpha=0.25)
    assert got.item() == pytest.approx(0.75 * soft)


def test_unknown_loss_is_a_config_error():
    with pytest.raises(ConfigError, match="mse or kl"):
        D.distillation_loss(torch.zeros(1, 2), torch.zeros(1, 2), loss="l1")


# ---------------------------------------------------------------------------------------------
# the transfer set

TEXTS = ["the film was good and fun", "a dull boring plot", "actors were great", "this is awful"]


def test_augmentation_is_seeded_and_never_returns_an_original():
    a = D.augment_texts(TEXTS, 5, seed=1)
    assert a == D.augment_texts(TEXTS, 5, seed=1)
    assert a != D.augment_texts(TEXTS, 5, seed=2)
    assert not set(a) & set(TEXTS)
    assert len(a) == len(set(a)) <= 5 * len(TEXTS)
    words = {w for t in TEXTS for w in t.split()} | {D.MASK}
    assert all(set(t.split()) <= words for t in a)  # unigram replacements come from the texts


def test_augmentation_operations_each_alone():
    masked = D.augment_texts(TEXTS, 3, seed=0, p_mask=1.0, p_replace=0.0, p_ngram=0.0)
    assert all(set(t.split()) == {D.MASK} for t in masked)
    cut = D.augment_texts(["a b c d e f g h"], 20, seed=0, p_mask=0.0, p_replace=0.0, p_ngram=1.0, ngram_max=3)
    assert cut and all(1 <= len(t.split()) <= 3 and t in "a b c d e f g h" for t in cut)
    near = {"good": ["fine"], "dull": ["flat"]}
    swapped = D.augment_texts(["good dull"], 10, seed=0, p_mask=0.0, p_replace=1.0, p_ngram=0.0, neighbours=near)
    assert swapped == ["fine flat"]
    assert D.augment_texts(TEXTS, 0, seed=0) == []


def test_word_neighbours_from_a_vector_file(tmp_path):
    vec = tmp_path / "v.txt"
    vec.write_text("good 1 0.1 0\ngreat 0.9 0.2 0\nbad -1 0 0.1\nawful -0.9 0 0.2\nfilm 0 0 1\n")
    near = D.word_neighbours(vec, ["good", "bad", "great", "awful", "missing"], k=1)
    assert near == {"good": ["great"], "great": ["good"], "bad": ["awful"], "awful": ["bad"]}
    with pytest.raises(DataError, match="neighbour"):
        D.word_neighbours(vec, ["nothing", "here"])


def test_read_unlabeled_splits_sentences_drops_short_held_out_and_samples(tmp_path):
    corpus = tmp_path / "u.txt"
    corpus.write_text("A fine film. Too short.<br /><br />I would see it again! held out text here\n"
                      "A fine film. Another long sentence here?\n")
    got = D.read_unlabeled(corpus, exclude=["held out text here"], min_words=3)
    assert got == ["A fine film.", "I would see it again!", "Another long sentence here?"]
    assert D.read_unlabeled(corpus, sentences=False, min_words=1)[0].startswith("A fine film. Too short.")
    two = D.read_unlabeled(corpus, limit=2, seed=5)
    assert len(two) == 2 and two == D.read_unlabeled(corpus, limit=2, seed=5)
    assert set(two) <= {*got, "held out text here"}
    empty = tmp_path / "e.txt"
    empty.write_text("a b\n")
    with pytest.raises(DataError, match="no unlabelled text"):
        D.read_unlabeled(empty)


# ---------------------------------------------------------------------------------------------
# teacher and student on tiny data


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    d = tmp_path_factory.mktemp("distill")
    files = {"train": write_labelfirst(d / "train.txt", make_sentences(120, 11)),
             "dev": write_labelfirst(d / "dev.txt", make_sentences(30, 12)),
             "test": write_labelfirst(d / "test.txt", make_sentences(40, 13))}
    unl = d / "unlabeled.txt"
    unl.write_text("".join(t + ".\n" for _, t in make_sentences(60, 14)))
    teacher = d / "teacher"
    wordconv.train(str(files["train"]), "textcnn", teacher, overrides=[
        *FAST, f"data.test_path={files['test']}", f"data.dev_path={files['dev']}", "training.epochs=12",
        "training.patience=null", "training.lr=0.01"])
    return {"dir": d, "teacher": teacher, "unlabeled": unl, **files}


STUDENT = [*FAST, "training.epochs=8", "training.patience=null", "training.lr=0.01"]


def _logits(model, art_config, vocab, texts):
    ids = [vocab.encode(Preprocessor(art_config.preprocessing)(t)) for t in texts]
    batch, _ = pad_batch(ids, pad_id=0, min_length=model.encoder.min_length)
    model.eval()
    with torch.no_grad():
        return model(ids=batch)["logits"]


def test_student_moves_toward_the_teacher_and_round_trips(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("WORDCONV_CACHE", str(tmp_path / "cache"))
    teacher = wordconv.load(tiny["teacher"])
    assert teacher.metrics["accuracy"] >= 0.9  # a teacher worth learning from
    student = wordconv.distill(tiny["teacher"], "textcnn", output=tmp_path / "student", augment=2,
                               overrides=STUDENT)
    texts = [line.split(" ", 1)[1] for line in tiny["test"].read_text().splitlines()]
    t_logits = _logits(teacher.artifact.model, teacher.config, teacher.artifact.vocab, texts)
    s_logits = _logits(student.artifact.model, student.config, student.artifact.vocab, texts)
    torch.manual_seed(0)
    fresh = build_model(student.config, len(student.artifact.vocab), student.labels)
    f_logits = _logits(fresh, student.config, student.artifact.vocab, texts)
    moved = (s_logits - t_logits).pow(2).sum(-1).mean()
    before = (f_logits - t_logits).pow(2).sum(-1).mean()
    assert moved < 0.2 * before, (moved, before)
    assert student.metrics["accuracy"] >= 0.85
    # an ordinary model directory: load it and get identical predictions
    again = wordconv.load(tmp_path / "student")
    assert again.config.task == "textcat" and again.config.distill.augment == 2
    a, b = student.predict(texts), again.predict(texts)
    assert [p.label for p in a] == [p.label for p in b]
    assert [p.score for p in a] == [p.score for p in b]
    meta = json.loads((tmp_path / "student" / "meta.json").read_text())["distillation"]
    assert meta["transfer"]["labelled"] == 120 and meta["transfer"]["augmented"] > 0
    assert meta["teacher_test"]["accuracy"] == pytest.approx(teacher.metrics["accuracy"])


def test_cache_second_run_does_no_teacher_inference_and_a_changed_teacher_invalidates(tiny, tmp_path, monkeypatch):
    calls = []
    real = D._run_teacher

    def counting(art, texts, *args):
        calls.append(len(texts))
        return real(art, texts, *args)

    monkeypatch.setattr(D, "_run_teacher", counting)
    texts = ["a good film", "a dull film", "a good film", "the plot was lovely"]
    cache = tmp_path / "c"
    first, info = D.teacher_logits(tiny["teacher"], texts, cache_dir=str(cache), progress=False, chunk=2)
    assert sum(calls) == 3 and info["computed"] == 3 and torch.equal(first[0], first[2])
    second, info = D.teacher_logits(tiny["teacher"], texts, cache_dir=str(cache), progress=False)
    assert sum(calls) == 3 and info == {**info, "computed": 0, "cached": 3}
    assert torch.equal(first, second)
    # the cached logits are the teacher's own
    teacher = wordconv.load(tiny["teacher"])
    direct = _logits(teacher.artifact.model, teacher.config, teacher.artifact.vocab, texts[:1])
    # the teacher runs in bf16 autocast on CPUs with native bf16 (the cache stores what it computed)
    bf16 = native_bf16(torch.device("cpu"))
    assert torch.allclose(first[:1], direct, atol=3e-2 if bf16 else 1e-5)
    # another teacher (changed weights): nothing reused
    other = tmp_path / "teacher2"
    art = teacher.artifact
    with torch.no_grad():
        art.model.output.bias.add_(1.0)
    from wordconv.modeldir import save_artifact

    save_artifact(other, art)
    _, info = D.teacher_logits(other, texts, cache_dir=str(cache), progress=False)
    assert info["computed"] == 3 and sum(calls) == 6
    # a damaged part is skipped and its texts computed again
    part = next((cache / info["cache"].rsplit("/", 1)[-1]).glob("part-*.safetensors"))
    part.write_bytes(b"not safetensors")
    _, info = D.teacher_logits(other, texts, cache_dir=str(cache), progress=False)
    assert info["computed"] == 3


@pytest.fixture
def transfers(monkeypatch):
    """The transfer sets that distill() hands to the training loop, in call order."""
    from wordconv import pipeline

    seen = []
    real_fit = pipeline.fit

    def spy(*args, transfer=None, **kwargs):
        seen.append(transfer)
        return real_fit(*args, transfer=transfer, **kwargs)

    monkeypatch.setattr(pipeline, "fit", spy)
    return seen


def test_label_free_texts_never_get_gold_labels(tiny, tmp_path, monkeypatch, transfers):
    monkeypatch.setenv("WORDCONV_CACHE", str(tmp_path / "cache"))
    # the test texts also sit in the unlabelled corpus: they must be kept out
    unl = tmp_path / "unl.txt"
    unl.write_text(tiny["unlabeled"].read_text() + tiny["test"].read_text().replace("pos ", "").replace("neg ", ""))
    wordconv.distill(tiny["teacher"], "textcnn", output=None, augment=3, unlabeled=str(unl),
                     overrides=[*FAST, "training.epochs=1"])
    tr = transfers[-1]
    n = tr.sizes["labelled"]
    assert n == 120 and tr.sizes["augmented"] > 0 and tr.sizes["unlabeled"] > 0
    assert all(g >= 0 for g in tr.gold[:n]) and all(g == -1 for g in tr.gold[n:])
    test_texts = {line.split(" ", 1)[1] for line in tiny["test"].read_text().splitlines()}
    assert not test_texts & set(tr.texts[n:])
    assert len(tr.logits) == len(tr.texts)


def test_errors_name_the_problem(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("WORDCONV_CACHE", str(tmp_path / "cache"))
    with pytest.raises(ConfigError, match="word-level text classifier"):
        wordconv.distill(tiny["teacher"], "pretrained", output=None)
    other = tmp_path / "three.txt"
    write_labelfirst(other, [("a", "x y"), ("b", "y z"), ("c", "z x")] * 12)
    with pytest.raises(DataError, match="labels"):
        wordconv.distill(tiny["teacher"], "textcnn", data=str(other), output=None, overrides=FAST)
    with pytest.raises(ConfigError, match="distill.loss"):
        wordconv.distill(tiny["teacher"], "textcnn", output=None, overrides=[*FAST, "distill.loss=l1"])


def test_cli_distill(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("WORDCONV_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "cli-student"
    args = ["distill", "--teacher", str(tiny["teacher"]), "--output", str(out), "--augment", "1", "--epochs", "2",
            "--quiet", "--set", "distill.loss=kl", "--set", "distill.temperature=2", "--set", "distill.alpha=0.5"]
    for s in FAST:
        args += ["--set", s]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "teacher test accuracy" in result.output and (out / "model.safetensors").is_file()
    cfg = json.loads((out / "config.json").read_text())["distill"]
    assert (cfg["loss"], cfg["temperature"], cfg["alpha"]) == ("kl", 2.0, 0.5)
    bad = CliRunner().invoke(app, ["distill", "--teacher", str(tmp_path / "nope"), "--output", str(tmp_path / "x")])
    assert bad.exit_code != 0 and "nope" in bad.output


def _relabelled_copy(src, dst, shift):
    """``src`` with its labels in the other order (output rows swapped to match) and ``shift`` added
    to its logits (given in the new order): the same classifier up to that shift."""
    from wordconv.modeldir import load_artifact, save_artifact

    art = load_artifact(src)
    with torch.no_grad():
        art.model.output.weight.copy_(art.model.output.weight.flip(0))
        art.model.output.bias.copy_(art.model.output.bias.flip(0) + torch.tensor(shift))
    art.labels = art.labels[::-1]
    save_artifact(dst, art)
    return dst


def test_an_ensemble_teaches_the_mean_of_its_teachers_logits(tiny, tmp_path, monkeypatch, transfers):
    monkeypatch.setenv("WORDCONV_CACHE", str(tmp_path / "cache"))
    first = tiny["teacher"]
    second = _relabelled_copy(first, tmp_path / "teacher2", [3.0, -1.0])
    student = wordconv.distill([first, second], "textcnn", output=tmp_path / "student", augment=1,
                               overrides=[*FAST, "training.epochs=1"])
    tr = transfers[-1]
    a, _ = D.teacher_logits(first, tr.texts, progress=False)  # both from the cache now
    b, info = D.teacher_logits(second, tr.texts, progress=False)
    assert info["computed"] == 0
    labels = wordconv.load(first).labels
    assert wordconv.load(second).labels == labels[::-1] and student.labels == labels
    # the second teacher's columns are put in the first's label order before the mean
    assert torch.allclose(tr.logits, (a + b.flip(-1)) / 2, atol=1e-6)
    tol = 3e-2 if native_bf16(torch.device("cpu")) else 1e-5  # the teachers run in bf16 where it is native
    assert torch.allclose(b.flip(-1), a + torch.tensor([-1.0, 3.0]), atol=tol)
    meta = json.loads((tmp_path / "student" / "meta.json").read_text())["distillation"]
    assert meta["teacher"] == [str(first), str(second)] and len(meta["teacher_id"]) == 2
    assert meta["teacher_id"][0] != meta["teacher_id"][1]
    assert [t["teacher"] for t in meta["teachers"]] == [str(first), str(second)]
    assert meta["teacher_outputs"]["teachers"] == 2
    assert meta["teacher_outputs"]["texts"] == len(tr.texts)
    # the ensemble's test accuracy is measured, not copied from a teacher
    test = [line.split(" ", 1) for line in tiny["test"].read_text().splitlines()]
    mean, _, _ = D.ensemble_logits([first, second], [wordconv.load(p).artifact for p in (first, second)],
                                [t for _, t in test], student.config.distill, "cpu", False, None)
    hand = sum(labels[i] == g for i, (g, _) in zip(mean.argmax(-1).tolist(), test)) / len(test)
    assert meta["teacher_test"]["accuracy"] == pytest.approx(hand)
    assert hand < wordconv.load(first).metrics["accuracy"]  # the shift costs the ensemble some: not a copy
    # teachers of other labels cannot be averaged
    other = tmp_path / "three.txt"
    write_labelfirst(other, [("a", "x y"), ("b", "y z"), ("c", "z x")] * 12)
    three = wordconv.train(str(other), "textcnn", tmp_path / "t3", overrides=[*FAST, "training.epochs=1"])
    assert three.labels == ["a", "b", "c"]
    with pytest.raises(ConfigError, match="share their labels"):
        wordconv.distill([first, tmp_path / "t3"], "textcnn", output=None, overrides=FAST)
    with pytest.raises(ConfigError, match="no teacher"):
        wordconv.distill([], "textcnn", output=None, overrides=FAST)


def test_a_fixed_transfer_seed_shares_the_transfer_set_and_its_teacher_outputs(tiny, tmp_path, monkeypatch,
                                                                                  transfers):
    monkeypatch.setenv("WORDCONV_CACHE", str(tmp_path / "cache"))
    runs = []
    for seed, transfer_seed in [(1, 7), (2, 7), (3, None)]:
        runs.append(wordconv.distill(tiny["teacher"], "textcnn", output=tmp_path / f"s{seed}", augment=2,
                                     unlabeled=str(tiny["unlabeled"]), seed=seed,
                                     overrides=[*FAST, "training.epochs=1", "distill.unlabeled_max=20",
                                                f"distill.transfer_seed={transfer_seed or 'null'}"]))
    one, two, three = transfers
    assert one.texts == two.texts and one.texts != three.texts
    outputs = [r.meta["distillation"]["teacher_outputs"] for r in runs]
    assert outputs[0]["computed"] > 0 and outputs[1]["computed"] == 0  # the second run: all from the cache
    assert outputs[2]["computed"] > 0
    assert runs[0].config.training.seed == 1 and runs[1].config.training.seed == 2


def test_cli_distill_with_an_ensemble(tiny, tmp_path, monkeypatch):
    monkeypatch.setenv("WORDCONV_CACHE", str(tmp_path / "cache"))
    second = _relabelled_copy(tiny["teacher"], tmp_path / "teacher2", [0.0, 0.0])
    out = tmp_path / "cli-ensemble"
    args = ["distill", "--teacher", str(tiny["teacher"]), "--teacher", str(second), "--output", str(out),
            "--epochs", "1", "--quiet"]
    for s in FAST:
        args += ["--set", s]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "teacher ensemble (2) test accuracy" in result.output
    meta = json.loads((out / "meta.json").read_text())["distillation"]
    # the same classifier twice: the ensemble is as accurate as the teacher (up to bf16 rounding ties)
    assert meta["teacher_test"]["accuracy"] == pytest.approx(wordconv.load(tiny["teacher"]).metrics["accuracy"],
                                                             abs=0.05)


def test_cli_label_only_fills_the_cache_and_the_student_then_does_no_teacher_inference(tiny, tmp_path,
                                                                                        monkeypatch):
    monkeypatch.setenv("WORDCONV_CACHE", str(tmp_path / "cache"))
    common = ["--teacher", str(tiny["teacher"]), "--augment", "2", "--unlabeled", str(tiny["unlabeled"]),
              "--unlabeled-max", "30", "--set", "distill.transfer_seed=5", "--quiet"]
    for s in FAST:
        common += ["--set", s]
    result = CliRunner().invoke(app, ["distill", *common, "--label-only"])
    assert result.exit_code == 0, result.output
    assert "teacher outputs cached for" in result.output and "computed, 0 already cached" in result.output
    assert not list(tmp_path.glob("student*"))
    result = CliRunner().invoke(app, ["distill", *common, "--output", str(tmp_path / "student"), "--epochs", "1",
                                      "--seed", "9"])
    assert result.exit_code == 0, result.output
    outputs = json.loads((tmp_path / "student" / "meta.json").read_text())["distillation"]["teacher_outputs"]
    assert outputs["computed"] == 0 and outputs["cached"] > 120
    missing = CliRunner().invoke(app, ["distill", *common])
    assert missing.exit_code != 0 and "--output" in missing.output
