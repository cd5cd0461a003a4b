"""The bad-input matrix (RELIABILITY.md): every case through the real `wordconv` command, each with one clear
message naming the file / line / field and the fix, a non-zero exit code, no traceback, and no output
written.  Inputs that are merely unusual (a BOM, CRLF, cp1252, a 1 MB line) are read correctly instead."""

from __future__ import annotations

import errno
import json
import re
import pytest
from typer.testing import CliRunner

from tiny import FAST, make_sentences, write_labelfirst
from wordconv.cli import app
from wordconv.data.readers import read_examples

runner = CliRunner()
SETS = [x for s in FAST + ["training.epochs=1"] for x in ("--set", s)]


def cli(*args):
    result = runner.invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), repr(result.exception)
    return result


GOOD = "".join(f"{lab} {text}\n" for lab, text in make_sentences(20, seed=4))
ROWS = make_sentences(20, seed=6)  # enough rows that the case itself, not the size, is what fails
CSV_ROWS = "".join(f"{text},{lab}\n" for lab, text in ROWS)
JSONL_ROWS = "".join(json.dumps({"text": text, "label": lab}) + "\n" for lab, text in ROWS)

# case -> (file name, bytes, extra train options, what the message must say)
BAD_FILES = {
    "empty-file": ("train.txt", b"", [], r"train\.txt.*(empty|no examples)"),
    "whitespace-only": ("train.txt", b"\n \n\t\n", [], r"train\.txt.*(empty|no examples)"),
    "binary-file": ("train.txt", bytes(range(256)) * 40, [], r"train\.txt.*(binary|NUL)"),
    "line-without-label": ("train.txt", (GOOD + "lonelyword\n").encode(), [], r"train\.txt:21\b"),
    "one-label-only": ("train.txt", "".join(f"pos {t}\n" for _, t in ROWS).encode(), [], r"at least 2 labels"),
    "csv-missing-column": ("train.csv", b"sentence,label\nhello,pos\nbye,neg\n", [],
                           r"train\.csv.*'text'.*(--text-field|text_field)"),
    "csv-nan-text": ("train.csv", b"text,label\ngood film,pos\n,neg\nnan,pos\n", [], r"train\.csv:3\b.*text"),
    "csv-duplicated-header": ("train.csv", ("text,text,label\n" + "".join(f"{t},x,{lab}\n" for lab, t in ROWS)).encode(),
                              [], r"train\.csv.*(duplicate|twice)"),
    "csv-short-row": ("train.csv", b"text,label\ngood,pos\njust text\n", [], r"train\.csv:3\b"),
    "jsonl-malformed": ("train.jsonl", b'{"text": "good", "label": "pos"}\n{"text": "bad", "label": \n', [],
                        r"train\.jsonl:2\b.*(JSON|json)"),
    "jsonl-not-an-object": ("train.jsonl", b'{"text": "good", "label": "pos"}\n["bad", "neg"]\n', [],
                            r"train\.jsonl:2\b"),
    "jsonl-wrong-type": ("train.jsonl", ('{"text": 5, "label": "neg"}\n' + JSONL_ROWS).encode(), [],
                         r"train\.jsonl:1\b.*text"),
    "conll-malformed": ("train.conll", b"EU NNP B-NP B-ORG\nrejects VBZ\n\n", ["--task", "ner", "--model", "tagger"],
                        r"train\.conll:2\b"),
    "squad-malformed": ("train.json", b'{"data": [{"title": "T", "paragraphs": [{"qas": []}]}]}',
                        ["--task", "qa", "--model", "qanet", "--set", "training.epochs=1"], r"train\.json.*context"),
}


@pytest.mark.parametrize("case", list(BAD_FILES))
def test_train_refuses_bad_file(case, tmp_path):
    name, content, extra, pattern = BAD_FILES[case]
    path = tmp_path / name
    path.write_bytes(content)
    out = tmp_path / "out"
    sets = [] if "--task" in extra else SETS  # the word-CNN test settings do not apply to NER/QA models
    r = cli("train", "--data", path, "--output", out, *extra, *sets)
    assert r.exit_code != 0, r.output
    assert r.output.count("error:") == 1, r.output
    assert re.search(pattern, " ".join(r.output.split()), re.S), r.output
    assert not out.exists() and not (tmp_path / "out.checkpoint").exists()


# unusual but valid encodings and line endings: read correctly (texts and labels as written)
def test_bom_crlf_cp1252_latin1_are_read(tmp_path):
    rows = [("pos", "a café film"), ("neg", "naïve plot")]
    for name, data in {
        "bom.txt": "\ufeff" + "".join(f"{a} {b}\n" for a, b in rows),
        "crlf.txt": "".join(f"{a} {b}\r\n" for a, b in rows),
    }.items():
        (tmp_path / name).write_text(data, encoding="utf-8", newline="")
    (tmp_path / "cp1252.txt").write_bytes("".join(f"{a} {b} \u2019\n" for a, b in rows).encode("cp1252"))
    (tmp_path / "latin1.txt").write_bytes("".join(f"{a} {b} \xff\n" for a, b in rows).encode("latin-1"))
    for name in ("bom.txt", "crlf.txt"):
        ex = read_examples(tmp_path / name)
        assert [(e.label, e.text) for e in ex] == rows, name
    assert [e.text for e in read_examples(tmp_path / "cp1252.txt")] == ["a café film \u2019", "naïve plot \u2019"]
    assert [e.label for e in read_examples(tmp_path / "latin1.txt")] == ["pos", "neg"]
    assert read_examples(tmp_path / "latin1.txt")[1].text.startswith("naïve plot")


def test_a_one_megabyte_line_is_read_and_trained(tmp_path):
    long = " ".join(["film"] * 250_000)  # 1.25 MB on one line
    path = tmp_path / "train.txt"
    path.write_text(GOOD + f"pos {long}\n", encoding="utf-8")
    assert len(read_examples(path)[-1].text) == len(long)
    r = cli("train", "--data", path, "--output", tmp_path / "m", *SETS)
    assert r.exit_code == 0, r.output


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("bad")
    write_labelfirst(d / "train.txt", make_sentences(40, seed=1))
    write_labelfirst(d / "test.txt", make_sentences(10, seed=2))
    r = cli("train", "--data", d / "train.txt", "--test", d / "test.txt", "--output", d / "m", *SETS)
    assert r.exit_code == 0, r.output
    return d / "m"


def test_unknown_label_at_evaluation(model_dir, tmp_path):
    path = tmp_path / "eval.txt"
    path.write_text("pos good film\nmaybe an odd film\n", encoding="utf-8")
    r = cli("evaluate", model_dir, "--data", path)
    assert r.exit_code != 0
    assert "maybe" in r.output and "eval.txt:2" in " ".join(r.output.split()), r.output


def test_numeric_looking_labels_stay_names(tmp_path):
    path = tmp_path / "train.txt"
    path.write_text("".join(f"{'1' if lab == 'pos' else '0'} {text}\n" for lab, text in make_sentences(30, seed=5)))
    r = cli("train", "--data", path, "--output", tmp_path / "m", *SETS)
    assert r.exit_code == 0, r.output
    assert json.loads((tmp_path / "m" / "labels.json").read_text()) == ["0", "1"]
    r = cli("predict", tmp_path / "m", "good")
    assert r.exit_code == 0 and json.loads(r.stdout)["label"] in ("0", "1")


@pytest.mark.parametrize("text", ["!!! ...", "good"], ids=["zero-tokens", "shorter-than-filter"])
def test_texts_with_no_or_few_tokens_are_predicted(model_dir, text):
    # no word the vocabulary knows, or fewer words than the widest filter (5): a prediction, not a crash
    r = cli("predict", model_dir, text)
    assert r.exit_code == 0, r.output
    assert set(json.loads(r.stdout)["probabilities"]) == {"neg", "pos"}


@pytest.mark.parametrize("text", ["", "   "], ids=["empty", "blank"])
def test_empty_texts_are_refused_clearly(model_dir, text):
    r = cli("predict", model_dir, text)
    assert r.exit_code != 0 and "text 0 is empty" in r.output


@pytest.mark.parametrize(("option", "pattern"), [
    ("model.no_such_key=1", r"model\.no_such_key"),
    ("training.epochs=many", r"training\.epochs.*integer"),
    ("training.lr=-1", r"training\.lr"),
    ("embeddings.mode=sideways", r"embeddings\.mode.*(rand|static)"),
], ids=["unknown-key", "wrong-type", "out-of-range", "bad-choice"])
def test_bad_config_values(model_dir, tmp_path, option, pattern):
    data = model_dir.parent / "train.txt"
    r = cli("train", "--data", data, "--output", tmp_path / "o", "--set", option)
    assert r.exit_code == 3, r.output
    assert re.search(pattern, " ".join(r.output.split())), r.output
    assert not (tmp_path / "o").exists()


def test_bad_config_file(model_dir, tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text("training:\n  epochs: [1\n", encoding="utf-8")
    r = cli("train", "--data", model_dir.parent / "train.txt", "--output", tmp_path / "o", "--config", cfg)
    assert r.exit_code != 0 and "c.yaml" in r.output


def test_existing_output_directory(model_dir):
    r = cli("train", "--data", model_dir.parent / "train.txt", "--output", model_dir, *SETS)
    assert r.exit_code != 0 and "--overwrite" in r.output
    assert (model_dir / "model.safetensors").is_file()  # untouched


def test_no_disk_space_for_the_artifact(model_dir, tmp_path, monkeypatch):
    import wordconv.modeldir as modeldir

    def full_disk(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(modeldir, "save_model", full_disk)
    out = tmp_path / "m"
    r = cli("train", "--data", model_dir.parent / "train.txt", "--output", out, *SETS)
    assert r.exit_code != 0
    assert "No space left on device" in r.output and "disk space" in r.output
    assert not out.exists() and not list(tmp_path.glob(".m.tmp-*"))  # nothing half-written
