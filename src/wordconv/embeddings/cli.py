"""`wordconv embeddings ...`: train word2vec, vectors from an encoder, list named vector sets, nearest neighbours.

Each command parses its options, calls one library function and prints.  Errors the user can fix are printed
as one message (no traceback) with the error's exit code, as in the main CLI.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from wordconv.userio import user_errors

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    help="Pretrained word vectors: train word2vec on your corpus, read vectors off an encoder, list vector sets, "
         "show neighbours.",
)
err = Console(stderr=True)
out = Console()


DataDirOpt = Annotated[
    Optional[str], typer.Option("--data-dir", help="local data mirror (embeddings/, datasets) [env WORDCONV_DATA]")
]


@app.command()
def train(
    corpus: Annotated[str, typer.Option("--corpus", help="text file (one document per line), CSV/TSV/JSONL, "
                                        "folder or .tar.gz of .txt files, or a dataset name")],
    output: Annotated[Path, typer.Option("--output", "-o", help="vectors to write: .vec/.txt text, .bin binary, "
                                         "+.gz compressed")],
    dim: Annotated[int, typer.Option(help="vector dimensions")] = 300,
    window: Annotated[int, typer.Option(help="context window (words each side)")] = 5,
    min_count: Annotated[int, typer.Option("--min-count", help="ignore words rarer than this")] = 5,
    sg: Annotated[bool, typer.Option("--sg/--cbow", help="skip-gram or CBOW")] = True,
    negative: Annotated[int, typer.Option(help="negative samples")] = 5,
    epochs: Annotated[int, typer.Option(help="passes over the corpus")] = 5,
    sample: Annotated[float, typer.Option(help="downsampling of frequent words (0: off, for tiny corpora)")] = 1e-3,
    workers: Annotated[int, typer.Option(help="training threads (1: reproducible output)")] = 2,
    seed: Annotated[int, typer.Option(help="random seed")] = 13,
    lowercase: Annotated[bool, typer.Option("--lowercase/--no-lowercase", help="lowercase tokens, as wordconv "
                                            "models do by default")] = True,
    data_dir: DataDirOpt = None,
    format: Annotated[Optional[str], typer.Option("--format", help="corpus format: lines, labelfirst, csv, tsv, "
                                                  "jsonl, folder (default: by suffix)")] = None,
    text_field: Annotated[str, typer.Option("--text-field", help="text column/key of a CSV/TSV/JSONL corpus")] = "text",
    subdir: Annotated[Optional[str], typer.Option("--subdir", help="only the .txt files under this folder of a "
                                                  "folder/.tar.gz corpus (e.g. aclImdb/train/unsup)")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bars")] = False,
) -> None:
    """Train word2vec on a corpus with wordconv's tokenizer and write the vectors."""
    from wordconv.data.text import PreprocessConfig
    from wordconv.embeddings.word2vec import read_corpus, train_word2vec

    with user_errors(err):
        texts = read_corpus(corpus, data_dir, text_field=text_field, format=format, subdir=subdir)
        stats = train_word2vec(
            texts, output, preprocessing=PreprocessConfig(lowercase=lowercase, max_length=None), dim=dim,
            window=window, min_count=min_count, sg=sg, negative=negative, epochs=epochs, sample=sample,
            workers=workers, seed=seed, progress=not quiet,
        )
    out.print(
        f"trained {'skip-gram' if sg else 'CBOW'} on {stats['documents']:,} documents ({stats['tokens']:,} tokens) "
        f"in {stats['seconds']:.1f}s: {stats['words']:,} words x {stats['dim']} dimensions saved to "
        f"[bold]{escape(str(output))}[/] ({stats['format']})",
        highlight=False,
        soft_wrap=True,
    )


@app.command("from-encoder")
def from_encoder(
    output: Annotated[Path, typer.Option("--output", "-o", help="vectors to write: .vec/.txt text, .bin binary, "
                                         "+.gz compressed")],
    corpus: Annotated[Optional[str], typer.Option("--corpus", help="take the words from this corpus (as for "
                                                  "`train`), most frequent first")] = None,
    words: Annotated[Optional[Path], typer.Option("--words", help="or from this file: a vector file's words, or one "
                                                  "word per line")] = None,
    join: Annotated[Optional[str], typer.Option("--join", help="a vector file (or named set) whose vector of each word "
                                                "goes in front of the encoder's; words it lacks are left out. "
                                                "Alone, its words are the words to encode")] = None,
    encoder: Annotated[Optional[str], typer.Option("--encoder", help="a local Hugging Face encoder folder (default: "
                                                   "the packaged all-MiniLM-L6-v2)")] = None,
    min_count: Annotated[int, typer.Option("--min-count", help="with --corpus: ignore words rarer than this")] = 5,
    max_words: Annotated[Optional[int], typer.Option("--max-words", help="keep only the most frequent words")] = None,
    center: Annotated[bool, typer.Option("--center/--no-center", help="subtract the mean vector")] = True,
    std: Annotated[Optional[float], typer.Option("--std", help="scale to this mean per-dimension standard deviation "
                                                 "(0: keep unit-length vectors; default: that of U[-0.25, 0.25])")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", help="words per encoder batch")] = 256,
    lowercase: Annotated[bool, typer.Option("--lowercase/--no-lowercase", help="with --corpus: lowercase tokens, as "
                                            "wordconv models do by default")] = True,
    data_dir: DataDirOpt = None,
    format: Annotated[Optional[str], typer.Option("--format", help="corpus format (default: by suffix)")] = None,
    text_field: Annotated[str, typer.Option("--text-field", help="text column/key of a CSV/TSV/JSONL corpus")] = "text",
    subdir: Annotated[Optional[str], typer.Option("--subdir", help="only the .txt files under this folder of a "
                                                  "folder/.tar.gz corpus")] = None,
    quiet: Annotated[bool, typer.Option("--quiet", "-q", help="no progress bars")] = False,
) -> None:
    """Static word vectors from a sentence encoder: each word encoded alone (Model2Vec's idea), for the word CNNs."""
    from wordconv.data.text import PreprocessConfig
    from wordconv.embeddings.catalog import resolve_vectors
    from wordconv.embeddings.from_encoder import UNIFORM_STD, corpus_words, encoder_word_vectors, read_word_list
    from wordconv.embeddings.word2vec import read_corpus
    from wordconv.errors import ConfigError

    with user_errors(err):
        joined = resolve_vectors(join, data_dir) if join is not None else None
        if corpus is not None and words is not None:
            raise ConfigError("pass one of --corpus (count the words of a corpus) or --words (a word list or vector "
                              "file), not both")
        if corpus is None and words is None:
            if joined is None:
                raise ConfigError("pass one of --corpus (count the words of a corpus), --words (a word list or vector "
                                  "file) or --join (a vector file whose words are encoded)")
            words = joined
        if max_words is not None and max_words < 1:
            raise ConfigError(f"--max-words {max_words} must be 1 or more")
        if corpus is not None:
            texts = read_corpus(corpus, data_dir, text_field=text_field, format=format, subdir=subdir)
            vocab = corpus_words(texts, preprocessing=PreprocessConfig(lowercase=lowercase, max_length=None),
                                 min_count=min_count, max_words=max_words)
        else:
            vocab = read_word_list(words)[:max_words]
        stats = encoder_word_vectors(vocab, output, encoder=encoder, batch_size=batch_size, center=center,
                                     std=UNIFORM_STD if std is None else (std or None), join=joined,
                                     progress=not quiet)
    joined_note = (f" after {stats['joined_dim']} of {escape(str(join))}" +
                   (f" ({stats['left_out']:,} words it lacks left out)" if stats["left_out"] else "")
                   if stats["joined_dim"] else "")
    out.print(
        f"encoded {stats['words']:,} words with {escape(stats['encoder'])} in {stats['seconds']:.1f}s: "
        f"{stats['dim']} dimensions{joined_note} saved to [bold]{escape(str(output))}[/] ({stats['format']})",
        highlight=False,
        soft_wrap=True,
    )


@app.command()
def neighbours(
    vectors: Annotated[str, typer.Argument(help="a vector file, or a named set (see `wordconv embeddings list`)")],
    word: Annotated[str, typer.Argument(help="the word to look up")],
    k: Annotated[int, typer.Option("-k", "--k", help="how many neighbours")] = 10,
    limit: Annotated[Optional[int], typer.Option(help="read only the first LIMIT words (the most frequent)")] = None,
    format: Annotated[Optional[str], typer.Option("--format", help="word2vec-bin, word2vec or glove "
                                                  "(default: detected)")] = None,
    data_dir: DataDirOpt = None,
) -> None:
    """Print the K nearest neighbours of WORD by cosine similarity."""
    from wordconv.embeddings.catalog import resolve_vectors
    from wordconv.embeddings.word2vec import nearest_neighbours

    with user_errors(err):
        path = resolve_vectors(vectors, data_dir)
        pairs = nearest_neighbours(path, word, k, format=format, limit=limit)
    table = Table(title=f"neighbours of {escape(word)!r}")
    table.add_column("word")
    table.add_column("cosine", justify="right")
    for other, score in pairs:
        table.add_row(escape(other), f"{score:.4f}")
    out.print(table)


@app.command("list")
def list_(data_dir: DataDirOpt = None) -> None:
    """List the named pretrained vector sets and which are available locally."""
    from wordconv.embeddings.catalog import catalog_table

    with user_errors(err):
        rows = catalog_table(data_dir)
    table = Table(title="word vectors")
    table.add_column("name", no_wrap=True)
    for column in ("dim", "format", "cased", "local"):
        table.add_column(column)
    table.add_column("where", overflow="fold")
    for row in rows:
        table.add_row(
            row["name"], str(row["dim"]), row["format"], "no" if row["lowercase"] else "yes",
            "yes" if row["available"] else "no", escape(row["where"]),
        )
    out.print(table)
