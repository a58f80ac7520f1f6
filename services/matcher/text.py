"""Text analysis for matching Swedish and English descriptions.

A text becomes a bag of terms: each word is stemmed as Swedish and as English (we do not need
to know the language), long Swedish compounds are also split into their parts
("laddinfrastruktur" -> "ladd" + "infrastruktur"), and a bilingual lexicon learnt from the CPV
vocabulary's paired Swedish and English labels adds translations ("ambulans" <-> "ambulance"),
so a Swedish need can meet an English profile.
"""

from __future__ import annotations

import math
import re
import sys
import unicodedata
from collections import Counter
from collections.abc import Iterable
from functools import cache

import snowballstemmer

from services.contracts.cpv import all_cpv

_SV = snowballstemmer.stemmer("swedish")
_EN = snowballstemmer.stemmer("english")
_WORD = re.compile(r"[a-zåäöéü0-9]+")
_MIN_PART = 3
_MIN_COMPOUND = 8

_STOPWORDS_TEXT = """
och att det som en ett i på för med av till är om de den har inte eller vi kan så men
från vid över under alla andra samt även mot inom utan efter genom detta dessa vår våra
ska skall bli blir varit vara sin sina sitt där här hur när vilka vilken vilket också
the a an and or of to in on for with by from at as is are be been this that these those
our we can will which who what when where how their its it not but into over under also
such other than more most all any each per via using use used new
erbjuder erbjuda levererar leverera arbetar jobbar hjälper företag företaget kunder kund
bland annat mycket många egen egna hela både
offer offers provide provides deliver delivers work works help helps company companies
customers customer including include includes based both own well
"""
STOPWORDS = frozenset(_STOPWORDS_TEXT.split())


def words(text: str) -> list[str]:
    """Lower-cased words of at least two letters, without stopwords."""
    normal = unicodedata.normalize("NFC", text.lower())
    return [w for w in _WORD.findall(normal) if len(w) > 1 and w not in STOPWORDS]


@cache
def sv_stem(word: str) -> str:
    return str(_SV.stemWord(word))


@cache
def en_stem(word: str) -> str:
    return str(_EN.stemWord(word))


def stems(word: str) -> set[str]:
    return {sv_stem(word), en_stem(word)}


@cache
def _vocabulary() -> frozenset[str]:
    """Swedish words known from the CPV labels: the pieces compounds are split into."""
    known: set[str] = set()
    for entry in all_cpv():
        for w in words(entry.label_sv):
            known.add(w)
            known.add(sv_stem(w))
    return frozenset(w for w in known if len(w) >= _MIN_PART)


# Common first parts of Swedish compounds that are too short or too clipped to be words of
# their own in the CPV labels: el-buss, ladd-stolpe, bio-gas.
_ENDINGS = ("arna", "erna", "orna", "et", "en", "na", "ar", "er", "or", "ens", "ets")
_HEADS = frozenset({"el", "ladd", "bio", "is", "tåg", "sol", "vind", "värme", "kyl", "båt"})


def _known_form(piece: str, vocabulary: frozenset[str]) -> str | None:
    """The vocabulary form of a compound part, or None when it is not a known word."""
    if piece in vocabulary or sv_stem(piece) in vocabulary:
        return piece
    # A linking s or e joins Swedish compound parts: avlopp-s-rening.
    if len(piece) > _MIN_PART and piece[-1] in "se" and piece[:-1] in vocabulary:
        return piece[:-1]
    # The last part carries the inflection: reningsverk-et, stolp-arna.
    for ending in _ENDINGS:
        base = piece[: -len(ending)]
        if piece.endswith(ending) and len(base) >= _MIN_PART and base in vocabulary:
            return base
    return None


def _is_part(piece: str, vocabulary: frozenset[str]) -> bool:
    return _known_form(piece, vocabulary) is not None


@cache
def compound_parts(word: str) -> tuple[str, ...]:
    """Split a Swedish compound into known parts, fewest parts first; () when it is not one."""
    if len(word) < _MIN_COMPOUND:
        return ()
    vocabulary = _vocabulary()
    best: tuple[str, ...] = ()
    # best_split[i]: fewest known parts covering word[:i]
    best_split: dict[int, tuple[str, ...]] = {0: ()}
    for end in range(2, len(word) + 1):
        for start in range(0, end - 1):
            if start not in best_split:
                continue
            piece = word[start:end]
            if piece == word:
                continue  # a known whole word is still split, so its parts can match too
            known = (start == 0 and piece in _HEADS) or (
                len(piece) >= _MIN_PART and _is_part(piece, vocabulary)
            )
            if not known:
                continue
            candidate = (*best_split[start], piece)
            if end not in best_split or len(candidate) < len(best_split[end]):
                best_split[end] = candidate
    best = best_split.get(len(word), ())
    if len(best) < 2:
        return ()
    return tuple(_known_form(p, vocabulary) or p for p in best)


@cache
def word_terms(word: str) -> tuple[str, ...]:
    """The terms one word yields: its stems and those of its compound parts (cached)."""
    out: list[str] = list(stems(word))
    for part in compound_parts(word):
        out.extend(stems(part))
        for sub in compound_parts(part):  # reningsverk -> rening + verk
            out.extend(stems(sub))
    return tuple(out)


def terms(text: str) -> Counter[str]:
    """The terms of a text with their counts: stems of words and of compound parts."""
    out: Counter[str] = Counter()
    for w in words(text):
        out.update(word_terms(w))
    return out


@cache
def _reference_idf() -> tuple[dict[str, float], float]:
    """Inverse document frequencies over the CPV labels (each code's Swedish and English label
    is one document), and the idf of a term the labels never use.

    A fixed reference, not the live population, so a pair's score depends on the pair alone:
    registering another supplier never moves an existing match.
    """
    df: Counter[str] = Counter()
    entries = all_cpv()
    for entry in entries:
        df.update(set(terms(f"{entry.label_sv} {entry.label_en}")))
    n = len(entries)
    return {t: math.log(1 + n / (1 + c)) for t, c in df.items()}, math.log(1 + n)


def idf(term: str) -> float:
    known, unseen = _reference_idf()
    return known.get(term, unseen)


def vector(text: str) -> dict[str, float]:
    """The text as a unit-length tf-idf vector of terms, with translations at half weight."""
    weighted = with_translations(terms(text))
    out = {t: w * idf(t) for t, w in weighted.items()}
    norm = math.sqrt(sum(w * w for w in out.values()))
    return {t: w / norm for t, w in out.items()} if norm else {}


@cache
def lexicon() -> dict[str, tuple[str, ...]]:
    """Term -> its translations, learnt from the CPV labels in both languages.

    Two terms translate each other when they keep appearing in the labels of the same codes
    (Dice coefficient over the codes' label pairs).
    """
    sv_count: Counter[str] = Counter()
    en_count: Counter[str] = Counter()
    pairs: Counter[tuple[str, str]] = Counter()
    for entry in all_cpv():
        sv_terms = {sv_stem(w) for w in words(entry.label_sv)}
        en_terms = {en_stem(w) for w in words(entry.label_en)}
        sv_count.update(sv_terms)
        en_count.update(en_terms)
        pairs.update((s, e) for s in sv_terms for e in en_terms if s != e)
    found: dict[str, set[str]] = {}
    for (s, e), both in pairs.items():
        if both >= 2 and 2 * both / (sv_count[s] + en_count[e]) >= 0.5:
            found.setdefault(s, set()).add(e)
            found.setdefault(e, set()).add(s)
    return {t: tuple(sorted(ts)) for t, ts in found.items()}


def with_translations(counts: Counter[str], weight: float = 0.5) -> dict[str, float]:
    """Term weights of a text, plus its terms' translations at a lower weight."""
    lex = lexicon()
    out: dict[str, float] = {t: 1.0 + math.log(n) for t, n in counts.items()}
    for t in list(out):
        for translated in lex.get(t, ()):
            out[translated] = max(out.get(translated, 0.0), weight * out[t])
    return out


def first_words(text: str) -> tuple[str, ...]:
    """The words of `text`, each once, in order of first use; interned, so the needs holding
    them share one string per word."""
    return tuple(sys.intern(w) for w in dict.fromkeys(words(text)))


def first_surface_forms(words: tuple[str, ...], wanted: Iterable[str]) -> dict[str, str]:
    """For each wanted term, the first of `words` (see `first_words`) that produced it: the
    word an explanation shows for a term. Stops as soon as every wanted term is found."""
    left = set(wanted)
    found: dict[str, str] = {}
    for word in words:
        if not left:
            break
        for term in word_terms(word):
            if term in left:
                found[term] = word
                left.discard(term)
    return found
