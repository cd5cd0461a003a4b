"""The `wordconv` command: exit codes, output, and one clear message per bad input (no traceback)."""

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from wordconv.cli import app

from tiny import FAST, make_multilabel, make_scored, write_labelfirst

runner = CliRunner()


def cli(*args):
    result = runner.invoke(app, [str(a) for a in args])
    assert "Traceback" not in result.output
    return result


def fast_sets(*extra):
    return [x for s in FAST + list(extra) for x in ("--set", s)]


@pytest.fixture
def trained(tiny_data, tmp_path):
    out = tmp_path / "model"
    r = cli("train", "--data", tiny_data["train"], "--test", tiny_data["test"], "--output", out, "--epochs", 3,
            *fast_sets())
    assert r.exit_code == 0, r.output
    assert "accuracy" in r.output and "confusion matrix" in r.output
    return out


def test_train_predict_evaluate(trained, tiny_data, tmp_path):
    r = cli("predict", trained, "a great and moving film", "dull", "--top-k", 2)
    assert r.exit_code == 0, r.output
    lines = [json.loads(x) for x in r.stdout.strip().splitlines()]
    assert [x["text"] for x in lines] == ["a great and moving film", "dull"]
    assert all(len(x["top_k"]) == 2 and set(x["probabilities"]) == {"neg", "pos"} for x in lines)

    inp = tmp_path / "texts.txt"
    inp.write_text("great fun\nboring plot\n")
    r = cli("predict", trained, "--input", inp)
    assert r.exit_code == 0 and len(r.stdout.strip().splitlines()) == 2

    r = cli("evaluate", trained, "--data", tiny_data["test"], "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["n"] == 20


def test_models_and_datasets_list():
    r = cli("models")
    assert r.exit_code == 0 and "textcnn" in r.output and "stacked" in r.output
    r = cli("datasets")
    assert r.exit_code == 0 and "mr" in r.output and "sst2" in r.output


@pytest.mark.parametrize("content,pattern", [
    (b"", "empty"),
    (b"pos good film\nneg\n", ":2"),  # a line without text
    (b"\x00\x01\x02\x00" * 64, "binary|not text"),
])
def test_bad_data_files(tmp_path, content, pattern):
    bad = tmp_path / "bad.txt"
    bad.write_bytes(content)
    r = cli("train", "--data", bad, "--output", tmp_path / "out", *fast_sets())
    assert r.exit_code == 2, r.output
    assert "error:" in r.output and "bad.txt" in r.output
    import re
    assert re.search(pattern, r.output), r.output
    assert not (tmp_path / "out").exists()


def test_cp1252_bytes_are_read_not_rejected(tmp_path, tiny_data):
    data = tiny_data["train"].read_bytes() + "pos a na\u00efve, charming film \u2026 \n".encode("cp1252")
    f = tmp_path / "cp1252.txt"
    f.write_bytes(data)
    r = cli("train", "--data", f, "--test", tiny_data["test"], "--output", tmp_path / "m", "--epochs", 1, *fast_sets())
    assert r.exit_code == 0, r.output


def test_missing_file_and_unknown_dataset(tmp_path):
    r = cli("train", "--data", tmp_path / "nope.txt", "--output", tmp_path / "o")
    assert r.exit_code == 2 and "nope.txt" in r.output
    r = cli("train", "--data", "imdbx", "--output", tmp_path / "o")
    assert r.exit_code == 2 and "mr" in r.output  # lists the registry names


def test_config_errors_exit_3(tiny_data, tmp_path):
    r = cli("train", "--data", tiny_data["train"], "--output", tmp_path / "o", "--set", "training.lrate=1")
    assert r.exit_code == 3 and "training.lrate: unknown key" in r.output
    r = cli("train", "--data", tiny_data["train"], "--output", tmp_path / "o", "--set", "model.num_filters=lots")
    assert r.exit_code == 3 and "model.num_filters" in r.output
    assert not (tmp_path / "o").exists()


def test_existing_output_and_missing_model(trained, tiny_data, tmp_path):
    r = cli("train", "--data", tiny_data["train"], "--output", trained, *fast_sets())
    assert r.exit_code == 4 and "--overwrite" in r.output
    r = cli("predict", tmp_path / "no-model", "hello")
    assert r.exit_code == 4 and "does not exist" in r.output
    r = cli("predict", trained)
    assert r.exit_code != 0 and "nothing to predict" in r.output


def test_console_script_installed(tmp_path):
    exe = Path(sys.executable).with_name("wordconv")
    r = subprocess.run([str(exe), "predict", str(tmp_path / "none"), "x"], capture_output=True, text=True)
    assert r.returncode == 4 and "error:" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize("task", ["multilabel", "regression"])
def test_train_predict_evaluate_other_tasks(task, tmp_path):
    if task == "multilabel":  # CSV with "food,sport" label cells; an empty cell: no labels
        def write(path, rows):
            path.write_text("text,label\n" + "".join(f'{t},"{",".join(labels)}"\n' for labels, t in rows))
            return path
        files = [write(tmp_path / f"{name}.csv", make_multilabel(n, seed)) for name, n, seed in (("train", 40, 1),
                                                                                               ("test", 12, 3))]
    else:
        files = [write_labelfirst(tmp_path / f"{name}.txt", make_scored(n, seed)) for name, n, seed in (("train", 40, 1),
                                                                                                       ("test", 12, 3))]
    out = tmp_path / "model"
    r = cli("train", "--task", task, "--data", files[0], "--test", files[1], "--output", out, "--epochs", 2,
            *fast_sets())
    assert r.exit_code == 0, r.output
    # rich wraps at 80 columns where the (machine-dependent) temporary path pushes the words
    assert ("Hamming loss" if task == "multilabel" else "Pearson r") in " ".join(r.output.split())
    assert json.loads((out / "config.json").read_text())["task"] == task

    r = cli("predict", out, "the coach ate pizza", "a superb film")
    assert r.exit_code == 0, r.output
    lines = [json.loads(x) for x in r.stdout.strip().splitlines()]
    assert [x["text"] for x in lines] == ["the coach ate pizza", "a superb film"]
    if task == "multilabel":
        assert all(set(x) == {"text", "labels", "probabilities"} for x in lines)
        assert set(lines[0]["probabilities"]) == {"food", "sport"}
    else:
        assert all(set(x) == {"text", "value"} and isinstance(x["value"], float) for x in lines)

    r = cli("evaluate", out, "--data", files[1])
    assert r.exit_code == 0, r.output
    r = cli("evaluate", out, "--data", files[1], "--json")
    assert r.exit_code == 0 and json.loads(r.stdout)["n"] == 12


def test_train_task_errors(tiny_data, tmp_path):
    r = cli("train", "--task", "ranking", "--data", tiny_data["train"], "--output", tmp_path / "o")
    assert r.exit_code == 3 and "task" in r.output
    r = cli("train", "--task", "regression", "--data", tiny_data["train"], "--output", tmp_path / "o", *fast_sets())
    assert r.exit_code == 2 and re.search(r"train.txt:\d+: label '(pos|neg)' is not a number", r.output), r.output
    r = cli("train", "--task", "multilabel", "--data", tiny_data["train"], "--output", tmp_path / "o",
            "--set", "training.metric=pearson")
    assert r.exit_code == 3 and "training.metric" in r.output and "f1_micro" in r.output
