"""The word vocabulary: token <-> id, built from training data, saved as JSON."""

from __future__ import annotations

import json
import operator
import os
import tempfile
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from wordconv.errors import ConfigError, DataError

__all__ = ["PAD", "UNK", "Vocab"]

PAD, UNK = "<pad>", "<unk>"
_SPECIALS = (PAD, UNK)


class Vocab:
    """A list of tokens; a token's id is its position.  ``itos[0]`` is PAD, ``itos[1]`` UNK.

    ``counts`` holds the training counts of the words (not the specials) when the vocabulary
    was built from data; it is empty for one made from a plain list.
    """

    pad_id = 0
    unk_id = 1

    def __init__(self, itos: list[str], counts: Mapping[str, int] | None = None):
        itos = list(itos)
        if len(itos) < 2 or itos[0] != PAD or itos[1] != UNK:
            raise DataError(
                f"a vocabulary must start with {PAD!r} and {UNK!r} (ids 0 and 1); "
                f"got {itos[:2]!r}"
            )
        for i, token in enumerate(itos):
            if not isinstance(token, str) or not token:
                raise DataError(
                    f"vocabulary entry {i} is {token!r}; every entry must be a non-empty string"
                )
        stoi = {token: i for i, token in enumerate(itos)}
        if len(stoi) != len(itos):
            dup = sorted(t for t, c in Counter(itos).items() if c > 1)
            raise DataError(
                f"the vocabulary lists {', '.join(map(repr, dup[:5]))} more than once; "
                "each token must appear once"
            )
        counts = dict(counts or {})
        for token, count in counts.items():
            if token not in stoi or token in _SPECIALS:
                raise DataError(f"count given for {token!r}, which is not a word of the vocabulary")
            if not isinstance(count, int) or isinstance(count, bool) or count < 0:
                raise DataError(f"the count of {token!r} is {count!r}; counts must be integers >= 0")
        self.itos: list[str] = itos
        self.stoi: dict[str, int] = stoi
        self.counts: dict[str, int] = counts

    # -- building ------------------------------------------------------------------------------

    @classmethod
    def build(
        cls,
        token_lists: Iterable[list[str]],
        min_freq: int = 1,
        max_size: int | None = None,
    ) -> Vocab:
        """The vocabulary of ``token_lists`` (the training texts): PAD, UNK, then the words seen
        at least ``min_freq`` times by descending count, ties alphabetically; at most
        ``max_size`` words besides the specials.  Tokens equal to PAD/UNK are not counted."""
        if isinstance(min_freq, bool) or not isinstance(min_freq, int) or min_freq < 1:
            raise ConfigError(f"min_freq is {min_freq!r}; it must be an integer >= 1")
        if max_size is not None and (
            isinstance(max_size, bool) or not isinstance(max_size, int) or max_size < 0
        ):
            raise ConfigError(f"max_vocab is {max_size!r}; it must be null or an integer >= 0")
        counter: Counter[str] = Counter()
        for tokens in token_lists:
            counter.update(tokens)
        for special in _SPECIALS:
            counter.pop(special, None)
        words = sorted(
            (w for w, c in counter.items() if c >= min_freq), key=lambda w: (-counter[w], w)
        )
        if max_size is not None:
            words = words[:max_size]
        return cls([PAD, UNK, *words], counts={w: counter[w] for w in words})

    # -- lookup --------------------------------------------------------------------------------

    def __len__(self) -> int:
        return len(self.itos)

    def __contains__(self, token: object) -> bool:
        return token in self.stoi

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Vocab):
            return NotImplemented
        return self.itos == other.itos and self.counts == other.counts

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        head = ", ".join(map(repr, self.itos[2:7]))
        return f"Vocab({len(self)} tokens: {PAD!r}, {UNK!r}, {head}{', ...' if len(self) > 7 else ''})"

    def index(self, token: str) -> int:
        """The id of ``token``; UNK's id for a token not in the vocabulary."""
        return self.stoi.get(token, self.unk_id)

    def encode(self, tokens: Iterable[str]) -> list[int]:
        get = self.stoi.get
        unk = self.unk_id
        return [get(t, unk) for t in tokens]

    def decode(self, ids: Iterable[int]) -> list[str]:
        """The tokens of ``ids`` (ints, or a 1-d tensor/array)."""
        if hasattr(ids, "tolist"):
            ids = ids.tolist()
        itos = self.itos
        n = len(itos)
        out = []
        for i in ids:
            try:
                j = operator.index(i)
            except TypeError:
                j = -1
            if isinstance(i, bool) or not 0 <= j < n:
                raise DataError(f"id {i!r} is not in the vocabulary (valid ids: 0..{n - 1})")
            out.append(itos[j])
        return out

    # -- persistence ---------------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        """``{"itos": [...], "counts": [...]}``; counts aligned with itos (0 for the specials),
        left out when there are none."""
        data: dict[str, Any] = {"itos": list(self.itos)}
        if self.counts:
            data["counts"] = [self.counts.get(t, 0) for t in self.itos]
        return data

    @classmethod
    def from_json(cls, data: Any) -> Vocab:
        """The vocabulary of :meth:`to_json`'s output; bad content raises :class:`DataError`."""
        if not isinstance(data, dict):
            raise DataError(
                f'a vocabulary must be a JSON object with an "itos" list; got {type(data).__name__}'
            )
        unknown = sorted(set(data) - {"itos", "counts"})
        if unknown:
            raise DataError(
                f"unknown vocabulary field(s) {', '.join(map(repr, unknown))}; "
                'expected "itos" and optionally "counts"'
            )
        if "itos" not in data:
            raise DataError('the vocabulary has no "itos" field (the list of tokens)')
        itos = data["itos"]
        if not isinstance(itos, list) or not all(isinstance(t, str) for t in itos):
            raise DataError('the vocabulary field "itos" must be a list of strings')
        counts = None
        if data.get("counts") is not None:
            raw = data["counts"]
            if (
                not isinstance(raw, list)
                or len(raw) != len(itos)
                or not all(isinstance(c, int) and not isinstance(c, bool) and c >= 0 for c in raw)
            ):
                raise DataError(
                    'the vocabulary field "counts" must be a list of integers >= 0, '
                    f'one per "itos" entry ({len(itos)})'
                )
            counts = {t: c for t, c in zip(itos[2:], raw[2:])}
        try:
            return cls(itos, counts=counts)
        except DataError as err:
            raise DataError(f'bad vocabulary field "itos": {err}') from None

    def save(self, path: str | os.PathLike[str]) -> None:
        """Write the vocabulary as JSON, atomically (a reader never sees a partial file)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = json.dumps(self.to_json(), ensure_ascii=False, separators=(",", ":"))
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(payload)
                f.write("\n")
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            try:
                os.unlink(tmp)
            except FileNotFoundError:
                pass
            raise

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> Vocab:
        """Read a vocabulary written by :meth:`save`."""
        path = Path(path)
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise DataError(f"vocabulary file {str(path)!r} does not exist") from None
        except (OSError, UnicodeDecodeError) as err:
            raise DataError(f"cannot read vocabulary file {str(path)!r}: {err}") from None
        try:
            data = json.loads(text)
        except json.JSONDecodeError as err:
            raise DataError(
                f"vocabulary file {str(path)!r} is not valid JSON ({err}); it is damaged: "
                "rebuild it by training again"
            ) from None
        except (ValueError, RecursionError) as err:  # a number too long to convert, nesting too deep
            raise DataError(
                f"vocabulary file {str(path)!r} cannot be parsed ({err}); it is damaged: rebuild it by training again"
            ) from None
        try:
            return cls.from_json(data)
        except DataError as err:
            raise DataError(f"vocabulary file {str(path)!r}: {err}") from None
