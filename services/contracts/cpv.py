"""CPV 2008, the EU's Common Procurement Vocabulary (Regulation (EC) 213/2008).

Codes are stored and compared in their 8-digit form ("45000000"). The check digit
("45000000-7") is optional on input; it cannot be computed from the 8 digits, so it is
checked against the published table.
"""

import csv
import re
import unicodedata
from bisect import bisect_right
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from importlib.resources import files

__all__ = [
    "CpvEntry",
    "all_cpv",
    "cpv_ancestors",
    "cpv_label",
    "cpv_lookup",
    "normalize_cpv",
    "search_cpv",
]


@dataclass(frozen=True)
class CpvEntry:
    code8: str
    code: str
    level: int
    parent: str | None
    label_en: str
    label_sv: str

    def label(self, lang: str = "sv") -> str:
        return self.label_sv if _check_lang(lang) == "sv" else self.label_en


_CODE = re.compile(r"(\d{8})(?:-(\d))?")
_CODE_PREFIX = re.compile(r"\d{1,8}")
_LANGS = ("sv", "en")


@cache
def _table() -> tuple[CpvEntry, ...]:
    text = files("services.contracts").joinpath("data/cpv_2008.csv").read_text("utf-8")
    return tuple(
        CpvEntry(
            code8=row["code8"],
            code=row["code"],
            level=int(row["level"]),
            # The file names the parent with its check digit; we link by 8 digits.
            parent=row["parent_code"][:8] or None,
            label_en=row["label_en"],
            label_sv=row["label_sv"],
        )
        for row in csv.DictReader(text.splitlines())
    )


@cache
def _by_code8() -> dict[str, CpvEntry]:
    return {entry.code8: entry for entry in _table()}


def _shown(text: str) -> str:
    return repr(text if len(text) <= 40 else text[:40] + "...")


def _check_lang(lang: str) -> str:
    if lang not in _LANGS:
        raise ValueError(f"language must be sv or en, not {_shown(lang)}")
    return lang


def all_cpv() -> Sequence[CpvEntry]:
    """Every CPV 2008 code, in code order."""
    return _table()


def cpv_lookup(code: str) -> CpvEntry | None:
    """The entry for "45000000-7" or "45000000"; None when unknown or the check digit is wrong."""
    match = _CODE.fullmatch(code.strip())
    if match is None:
        return None
    code8, check = match.groups()
    entry = _by_code8().get(code8)
    if entry is None or (check is not None and entry.code != f"{code8}-{check}"):
        return None
    return entry


def normalize_cpv(code: str) -> str:
    """The canonical 8-digit form of a CPV code; ValueError says what is wrong."""
    text = code.strip()
    match = _CODE.fullmatch(text)
    if match is None:
        raise ValueError(
            f"{_shown(text)} is not a CPV code: expected 8 digits with an optional "
            "check digit, like 45000000-7"
        )
    code8, check = match.groups()
    entry = _by_code8().get(code8)
    if entry is None:
        raise ValueError(f"{code8} is not a CPV 2008 code")
    if check is not None and entry.code != f"{code8}-{check}":
        raise ValueError(f"check digit does not match: {entry.code} is the code")
    return code8


def cpv_ancestors(code8: str) -> list[str]:
    """The 8-digit codes above a code, nearest first (the division comes last)."""
    entries = _by_code8()
    parent = entries[normalize_cpv(code8)].parent
    ancestors: list[str] = []
    while parent is not None:
        ancestors.append(parent)
        parent = entries[parent].parent
    return ancestors


def cpv_label(code8: str, lang: str = "sv") -> str:
    return _by_code8()[normalize_cpv(code8)].label(lang)


# Search ranks how a query word meets a label word: the whole word, the start of a word,
# or somewhere inside a word. The last one matters for Swedish, which writes compounds as
# one word: "stolpar" is found in "lyktstolpar" and "elstolpar".
_WHOLE, _START, _INSIDE = 0, 1, 2
# Shorter query words would match inside far too many words to be useful.
_MIN_INSIDE = 3


def _fold(text: str) -> str:
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _words(text: str) -> list[str]:
    return re.findall(r"[^\W_]+", unicodedata.normalize("NFC", text).casefold())


@dataclass(frozen=True)
class _Vocabulary:
    """The distinct label words of one language, with the entries that use each word."""

    words: tuple[str, ...]
    postings: dict[str, tuple[int, ...]]
    # All words in one newline-separated string: str.find scans it at C speed.
    joined: str
    starts: tuple[int, ...]

    @classmethod
    def build(cls, labels: Sequence[list[str]]) -> "_Vocabulary":
        postings: dict[str, set[int]] = {}
        for index, label in enumerate(labels):
            for word in label:
                postings.setdefault(word, set()).add(index)
        words = tuple(sorted(postings))
        starts, offset = [], 0
        for word in words:
            starts.append(offset)
            offset += len(word) + 1
        return cls(
            words=words,
            postings={word: tuple(sorted(ids)) for word, ids in postings.items()},
            joined="\n".join(words),
            starts=tuple(starts),
        )

    def occurs(self, term: str) -> bool:
        return term in self.joined

    def hits(self, term: str) -> dict[int, int]:
        """Entry index -> best rank (_WHOLE, _START, _INSIDE) of the term in its label."""
        hits: dict[int, int] = {}
        position = self.joined.find(term)
        while position != -1:
            k = bisect_right(self.starts, position) - 1
            word, start = self.words[k], self.starts[k]
            rank = (_WHOLE if len(word) == len(term) else _START) if position == start else _INSIDE
            if rank != _INSIDE or len(term) >= _MIN_INSIDE:
                for index in self.postings[word]:
                    if hits.get(index, _INSIDE + 1) > rank:
                        hits[index] = rank
            position = self.joined.find(term, start + len(word) + 1)
        return hits


@dataclass(frozen=True)
class _Index:
    plain: _Vocabulary
    # Without diacritics, for people typing "lakemedel" for "läkemedel".
    folded: _Vocabulary


@cache
def _index(lang: str) -> _Index:
    labels = [_words(entry.label(lang)) for entry in _table()]
    return _Index(
        plain=_Vocabulary.build(labels),
        folded=_Vocabulary.build([[_fold(w) for w in words] for words in labels]),
    )


def _term_hits(index: _Index, term: str, split: bool) -> list[dict[int, int]]:
    """Hits for one query word, as alternatives: one dict, or one per part of a compound."""
    hits = index.plain.hits(term) or index.folded.hits(_fold(term))
    if hits:
        return [hits]
    if not split:
        return []
    return [index.plain.hits(part) for part in _split_compound(index.plain, term)]


def _split_compound(vocabulary: _Vocabulary, term: str) -> list[str]:
    """Split an unknown Swedish compound ("laddstolpar") into two known parts.

    The head of a Swedish compound comes last, so a split whose last part is a whole
    label word wins; then the most even split. A linking "s" ("laddnings|stolpar") is
    dropped from the first part when that part is not known with it.
    """
    best: tuple[bool, int] | None = None
    parts: list[str] = []
    for cut in range(_MIN_INSIDE, len(term) - _MIN_INSIDE + 1):
        first, last = term[:cut], term[cut:]
        if not vocabulary.occurs(first) and first.endswith("s"):
            first = first[:-1]
        if len(first) < _MIN_INSIDE or not vocabulary.occurs(first):
            continue
        if not vocabulary.occurs(last):
            continue
        quality = (last in vocabulary.postings, min(len(first), len(last)))
        if best is None or quality > best:
            best, parts = quality, [first, last]
    return parts


def _rank(index: _Index, terms: list[str], split: bool) -> list[CpvEntry]:
    # Every query word must match; within a split compound one part is enough, but
    # entries matching more parts come first. Scores are (parts missed, sum of ranks).
    scores: dict[int, tuple[int, int]] = {}
    for number, term in enumerate(terms):
        alternatives = _term_hits(index, term, split)
        if not alternatives:
            return []
        term_scores: dict[int, tuple[int, int]] = {}
        for hits in alternatives:
            for entry, rank in hits.items():
                missed, total = term_scores.get(entry, (len(alternatives), 0))
                term_scores[entry] = (missed - 1, total + rank)
        if number == 0:
            scores = term_scores
            continue
        scores = {
            entry: (missed + term_scores[entry][0], total + term_scores[entry][1])
            for entry, (missed, total) in scores.items()
            if entry in term_scores
        }
    table = _table()
    ordered = sorted(scores, key=lambda e: (*scores[e], table[e].level, table[e].code8))
    return [table[entry] for entry in ordered]


def search_cpv(q: str, lang: str = "sv", limit: int = 50) -> list[CpvEntry]:
    """CPV entries whose labels match the words of q, best first.

    A word matching a whole label word ranks above one matching the start of a word,
    which ranks above one found inside a word; ties go to the more general code, then
    the lower code. Words are matched case-insensitively, with or without Swedish
    diacritics. When nothing matches in the asked language the other one is tried, so
    "ambulance" finds ambulances in Swedish too. A query of digits lists the codes
    starting with them.
    """
    _check_lang(lang)
    if limit <= 0:
        return []
    text = q.strip()
    if _CODE.fullmatch(text):
        entry = cpv_lookup(text)
        return [entry] if entry else []
    if _CODE_PREFIX.fullmatch(text):
        below = [entry for entry in _table() if entry.code8.startswith(text)]
        return sorted(below, key=lambda e: (e.level, e.code8))[:limit]
    terms = _words(text)
    if not terms:
        return []
    other = "en" if lang == "sv" else "sv"
    found = (
        _rank(_index(lang), terms, split=False)
        or _rank(_index(other), terms, split=False)
        # Only Swedish writes compounds as one word.
        or _rank(_index("sv"), terms, split=True)
    )
    return found[:limit]
