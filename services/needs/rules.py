"""The pure rules of needs and buyer groups: changes, versions, co-signing, search terms,
similarity and list cursors. No I/O here, so all of it is unit-tested without a database.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from pydantic import BaseModel, ValidationError

from services.contracts.cpv import cpv_ancestors, cpv_lookup
from services.contracts.errors import InvalidData, StateConflict
from services.contracts.events import AlertSettings, DialogueState, NeedState
from services.contracts.nuts import normalize_nuts
from services.contracts.vocab import AuthorityLevel, NeedStatus

# CPV levels 1 (division, XX000000) and 2 (group, XXX00000): needs sharing one of these
# are about the same kind of thing.
_BRANCH_LEVELS = (1, 2)
# Words this short, and these common ones, say nothing about what a need is about.
_MIN_WORD = 4
_STOP_TEXT = """
    about also and are because been behov behöver being between both could does ett
    eller finns från för genom have här inom inte into just kan kommer med mellan more
    most must need needs new nya och också ska skall som such than that their them then
    there these they this till under vara vill what when which while will with without
    would your även åt är
"""
_STOP_WORDS = frozenset(_STOP_TEXT.split())
_WORD = re.compile(r"[^\W\d_]+")


def as_body_errors(exc: ValidationError, *prefix: str | int) -> InvalidData:
    """A model's validation errors, naming the field under `prefix` in the request body."""
    return InvalidData([{**e, "loc": (*prefix, *e["loc"])} for e in exc.errors()])


def merge(current: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """JSON merge patch one level deep: nested objects merge, everything else replaces."""
    merged = dict(current)
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = {**merged[key], **value}
        else:
            merged[key] = value
    return merged


def validated(model: type[BaseModel], data: dict[str, Any]) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        raise as_body_errors(exc) from None


@dataclass(frozen=True)
class Backing:
    """The authorities behind a need: those of the owning group and of its co-signers."""

    count: int
    by_level: Mapping[str, int]

    @property
    def levels(self) -> list[AuthorityLevel]:
        return [level for level in AuthorityLevel if self.by_level.get(level, 0) > 0]


@dataclass(frozen=True)
class Authority:
    """A contracting authority (kommun, region or national agency)."""

    id: str
    org_number: str
    name: str
    level: AuthorityLevel
    region: str
    created_at: datetime


@dataclass
class BuyerGroup:
    """Authorities that stand together behind needs, with where their alerts go."""

    id: str
    name: str
    focus_area: str
    alerts: AlertSettings
    version: int
    created_at: datetime
    updated_at: datetime
    members: list[Authority]


@dataclass(frozen=True)
class Need:
    """A need as stored: its event state and the authorities behind it."""

    state: NeedState
    backing: Backing


def with_backing(state: NeedState, backing: Backing) -> NeedState:
    return state.model_copy(update={"authority_levels": backing.levels})


def next_version(state: NeedState, now: datetime, **changes: Any) -> NeedState:
    return state.model_copy(update={**changes, "version": state.version + 1, "updated_at": now})


def require_open(state: NeedState) -> None:
    if state.status != NeedStatus.open:
        raise StateConflict(f"need {state.id} is closed and can no longer change")


def apply_patch(state: NeedState, fields: Mapping[str, Any], now: datetime) -> NeedState | None:
    """The need with `fields` (already validated) replaced, one version on; None if unchanged."""
    require_open(state)
    try:
        changed = NeedState.model_validate({**state.model_dump(mode="json"), **fields})
    except ValidationError as exc:
        raise as_body_errors(exc) from None
    if changed == state:
        return None
    return changed.model_copy(update={"version": state.version + 1, "updated_at": now})


def close(state: NeedState, reason: str, now: datetime) -> NeedState:
    require_open(state)
    return next_version(state, now, status=NeedStatus.closed, closed_reason=reason)


def cosign(state: NeedState, group_id: str, now: datetime) -> NeedState | None:
    """The need with group_id among its co-signers; None when it already is one."""
    if group_id == state.buyer_group_id:
        raise StateConflict("a buyer group cannot co-sign its own need")
    require_open(state)
    if group_id in state.cosigners:
        return None
    return next_version(state, now, cosigners=[*state.cosigners, group_id])


def respond_by_in_future(value: date, today: date) -> date:
    if value <= today:
        raise ValueError(f"respond_by must be after today ({today.isoformat()})")
    return value


# Search terms derived from a need, stored beside it for the list filters.


def cpv_with_ancestors(codes: Iterable[str]) -> list[str]:
    out: dict[str, None] = {}
    for code in codes:
        out[code] = None
        out.update(dict.fromkeys(cpv_ancestors(code)))
    return list(out)


def cpv_branches(codes: Iterable[str]) -> list[str]:
    """The divisions and groups the codes lie in (or are)."""
    out: dict[str, None] = {}
    for code in codes:
        for candidate in (code, *cpv_ancestors(code)):
            entry = cpv_lookup(candidate)
            if entry is not None and entry.level in _BRANCH_LEVELS:
                out[candidate] = None
    return list(out)


def region_with_parents(code: str) -> list[str]:
    """SE110 -> [SE, SE1, SE11, SE110]: NUTS codes nest by prefix."""
    code = normalize_nuts(code)
    return [code[:n] for n in range(2, len(code) + 1)]


def regions_with_parents(codes: Iterable[str]) -> list[str]:
    out: dict[str, None] = {}
    for code in codes:
        out.update(dict.fromkeys(region_with_parents(code)))
    return list(out)


def significant_words(*texts: str) -> list[str]:
    """Lower-cased words of four letters or more, without common words, first seen first."""
    words: dict[str, None] = {}
    for text in texts:
        for word in _WORD.findall(text.lower()):
            if len(word) >= _MIN_WORD and word not in _STOP_WORDS:
                words[word] = None
    return list(words)


def query_terms(q: str) -> list[str]:
    """The words of a text query; a need matches when its title or description has them all."""
    return [term for term in q.lower().split() if term]


# Similar needs.


@dataclass(frozen=True)
class Similarity:
    score: float
    shared_cpv_branches: list[str]
    shared_words: list[str]


def _jaccard(a: set[str], b: set[str]) -> float:
    return len(a & b) / len(a | b) if a and b else 0.0


def similarity(
    branches: Sequence[str], words: Sequence[str], other_branches: Sequence[str], other_words: Sequence[str]
) -> Similarity:
    """How alike two needs are: 0.6 x the overlap of CPV branches + 0.4 x the overlap of words.

    Each overlap is the Jaccard index (shared / together), so a need is most similar to one
    about exactly the same things, and a long text does not win by length alone.
    """
    shared_branches = [b for b in branches if b in set(other_branches)]
    shared_words = [w for w in words if w in set(other_words)]
    score = 0.6 * _jaccard(set(branches), set(other_branches)) + 0.4 * _jaccard(set(words), set(other_words))
    return Similarity(round(score, 4), shared_branches, shared_words)


# Cursors of the need list: the (published_at, id) of the last need on the page.


def encode_cursor(published_at: datetime, need_id: str) -> str:
    raw = json.dumps([published_at.isoformat(), need_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    """ValueError when the cursor is not one this service handed out."""
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        published_at, need_id = json.loads(raw)
        at = datetime.fromisoformat(published_at)
        if at.tzinfo is None:
            raise ValueError("naive")
        return at, uuid.UUID(need_id)
    except (ValueError, TypeError, binascii.Error) as exc:
        raise ValueError("not a cursor from this list: pass next_cursor as it was returned") from exc


# Market dialogues.

# Written input and answers may be this long, in UTF-8 bytes (20 KB).
MAX_TEXT_BYTES = 20 * 1024


@dataclass(frozen=True)
class DialogueSupplier:
    """A supplier in a dialogue: invited by the groups, or joined an open dialogue itself."""

    supplier_id: str
    name: str | None  # None when the supplier was removed, or is not known here yet
    invited_at: datetime | None
    joined_at: datetime | None
    response: str | None  # accepted | declined, the latest
    responded_at: datetime | None


@dataclass
class Dialogue:
    """A market dialogue about a need; `groups` are the need's owning group and co-signers."""

    id: str
    need_id: str
    need_title: str
    opened_by: str
    groups: list[str]
    title: str
    agenda: str
    open_to_all: bool
    closes_at: datetime
    status: str
    version: int
    opened_at: datetime
    updated_at: datetime
    suppliers: list[DialogueSupplier]
    group_names: dict[str, str]

    def participant(self, supplier_id: str) -> DialogueSupplier | None:
        return next((s for s in self.suppliers if s.supplier_id == supplier_id), None)


@dataclass(frozen=True)
class Question:
    id: str
    dialogue_id: str
    asked_by: str
    question: str
    asked_at: datetime
    answer: str | None
    answered_by: str | None
    answered_at: datetime | None


@dataclass(frozen=True)
class WrittenInput:
    id: str
    dialogue_id: str
    supplier_id: str
    text: str
    submitted_at: datetime


def dialogue_state(dialogue: Dialogue) -> DialogueState:
    """What the dialogue's events carry: no asker, no written input."""
    return DialogueState(
        id=dialogue.id,
        need_id=dialogue.need_id,
        buyer_group_ids=dialogue.groups,
        title=dialogue.title,
        agenda=dialogue.agenda,
        open_to_all=dialogue.open_to_all,
        closes_at=dialogue.closes_at,
        status="closed" if dialogue.status == "closed" else "open",
        invited_supplier_ids=[s.supplier_id for s in dialogue.suppliers if s.invited_at is not None],
        joined_supplier_ids=[s.supplier_id for s in dialogue.suppliers if s.invited_at is None],
        version=dialogue.version,
        opened_at=dialogue.opened_at,
        updated_at=dialogue.updated_at,
    )


def require_before_close(dialogue: Dialogue, now: datetime) -> None:
    """Nothing is asked, answered or submitted once closes_at has passed or the dialogue is
    closed (it closes early when its need closes)."""
    if dialogue.status == "closed" and now < dialogue.closes_at:
        raise StateConflict(
            f"dialogue {dialogue.id} was closed before its closes_at (its need was closed): nothing "
            "more can be asked, answered or submitted"
        )
    if now >= dialogue.closes_at or dialogue.status == "closed":
        raise StateConflict(
            f"dialogue {dialogue.id} closed at {dialogue.closes_at.isoformat()}: nothing can be "
            "asked, answered or submitted after closes_at"
        )


def closes_in_future(value: datetime, now: datetime) -> datetime:
    if value.tzinfo is None:
        raise ValueError("closes_at must name its time zone, e.g. 2030-06-30T16:00:00+02:00")
    if value <= now:
        raise ValueError(f"closes_at must be in the future (now is {now.isoformat(timespec='seconds')})")
    return value


def within_text_limit(text: str, limit: int = MAX_TEXT_BYTES) -> str:
    """`text` when it is at most `limit` UTF-8 bytes; ValueError saying how far beyond otherwise."""
    size = len(text.encode())
    if size > limit:
        raise ValueError(f"{size} bytes, {size - limit} beyond the limit of {limit} bytes (20 KB)")
    return text


def visible_questions(questions: Sequence[Question], supplier_id: str | None) -> list[Question]:
    """What a supplier (or, with None, anyone else who is not a group) may see: the answered
    questions, and the supplier's own unanswered ones."""
    return [q for q in questions if q.answer is not None or (supplier_id and q.asked_by == supplier_id)]
