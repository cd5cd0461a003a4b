"""Safe loading: nothing in wordconv unpickles (weights and resume state are safetensors, the rest JSON)."""

import re
from pathlib import Path

import wordconv

SRC = Path(wordconv.__file__).parent
UNSAFE = re.compile(r"^\s*(import pickle|from pickle|import dill|import joblib)|torch\.load\(|allow_pickle=True|"
                    r"weights_only=False|pickle\.loads?\(", re.M)


def test_no_module_unpickles():
    files = sorted(SRC.rglob("*.py"))
    assert len(files) > 30
    found = [f"{f.relative_to(SRC)}: {m.group(0).strip()}" for f in files
             for m in UNSAFE.finditer(f.read_text(encoding="utf-8"))]
    assert found == []


def test_the_pattern_catches_what_it_should():
    for line in ("import pickle", "state = torch.load(path)", "np.load(p, allow_pickle=True)", "pickle.loads(b)"):
        assert UNSAFE.search(line), line
    assert not UNSAFE.search("np.load(p, allow_pickle=False)")
