"""The needs service's use cases: authorities, buyer groups, needs and market dialogues.

Each command runs in a unit of work (`services/infra/unit_of_work.py`): it reads and writes
through `repository`, decides with the pure `rules`, and emits the events of the change, which
reach the outbox in the same transaction. Commands take parsed input and the caller's
principal, and raise domain errors (`services/contracts/errors.py`) or the not-found,
forbidden and conflict errors of `services/infra/errors.py`; the HTTP layer maps them.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import asyncpg

from services.contracts import events
from services.contracts.cpv import CpvEntry, cpv_lookup
from services.contracts.errors import InvalidData, StateConflict
from services.contracts.events import BuyerGroupState, NeedState, new_event
from services.contracts.vocab import FocusArea, NeedStatus
from services.infra.auth import Principal
from services.infra.db import Connection
from services.infra.errors import Conflict, Forbidden, NotFound, Unauthenticated
from services.infra.etags import check_if_match
from services.infra.settings import Settings
from services.infra.unit_of_work import UnitOfWork, UseCases
from services.infra.webhooks import validate_webhook_setting
from services.needs import ocds, repository, rules
from services.needs.models import BuyerGroupIn, DialogueIn, NeedFields
from services.needs.rules import Authority, BuyerGroup, Dialogue, Need, Question, WrittenInput

SOURCE = "/innomatch/needs"
# Similar needs are scored in the process; this many newest candidates are considered.
SIMILAR_CANDIDATES = 500
SIMILAR_SHOWN = 20


def authorize_group(principal: Principal, group_id: str) -> None:
    if not (principal.is_operator or principal.is_buyer_group(group_id)):
        raise Forbidden("a buyer group may only reach itself")


def authorize_owner(principal: Principal, need: NeedState) -> None:
    if not (principal.is_operator or principal.is_buyer_group(need.buyer_group_id)):
        raise Forbidden("only the owning buyer group or an operator may do this to a need")


def may_see(principal: Principal | None, need: NeedState) -> bool:
    if need.status == NeedStatus.open:
        return True
    if principal is None:
        return False
    return principal.is_operator or (
        principal.kind == "buyer_group" and principal.id in (need.buyer_group_id, *need.cosigners)
    )


class Needs(UseCases):
    """The use cases, on the service's pool and settings."""

    def __init__(
        self, pool: asyncpg.Pool | Callable[[], asyncpg.Pool], settings: Settings, schema: str = "needs"
    ) -> None:
        super().__init__(pool, settings, schema)

    # --- authorities ---------------------------------------------------------------------------

    async def create_authority(self, org_number: str, name: str, level: str, region: str) -> Authority:
        try:
            async with self.pool.acquire() as conn:
                return await repository.insert_authority(
                    conn, str(uuid.uuid4()), org_number, name, level, region
                )
        except asyncpg.UniqueViolationError as exc:
            raise Conflict(f"an authority with org_number {org_number} already exists") from exc

    async def authorities(self) -> list[Authority]:
        async with self.pool.acquire() as conn:
            return await repository.list_authorities(conn)

    # --- buyer groups --------------------------------------------------------------------------

    async def create_group(self, body: BuyerGroupIn) -> BuyerGroup:
        await validate_webhook_setting(body.alerts.webhook_url, self.settings)
        now = datetime.now(UTC)
        member_ids = list(dict.fromkeys(body.member_authority_ids))
        group_id = str(uuid.uuid4())
        async with self.work() as work:
            await _check_members(work.conn, body.member_authority_ids)
            group = BuyerGroup(
                id=group_id,
                name=body.name,
                focus_area=body.focus_area.value,
                alerts=body.alerts,
                version=1,
                created_at=now,
                updated_at=now,
                members=[],
            )
            await repository.insert_group(work.conn, group, member_ids)
            stored = await self._group(work.conn, group_id)
            _emit_group(work, stored, events.BuyerGroupCreated)
        return stored

    async def group(self, principal: Principal, group_id: str) -> BuyerGroup:
        authorize_group(principal, group_id)
        async with self.pool.acquire() as conn:
            return await self._group(conn, group_id)

    @staticmethod
    async def _group(conn: Connection, group_id: str, *, for_update: bool = False) -> BuyerGroup:
        group = await repository.get_group(conn, group_id, for_update=for_update)
        if group is None:
            raise NotFound(f"no buyer group {group_id}")
        return group

    async def patch_group(
        self, principal: Principal, group_id: str, patch: dict[str, Any], if_match: str | None
    ) -> BuyerGroup:
        """`patch`: a JSON merge patch of the group's fields, as sent."""
        authorize_group(principal, group_id)
        now = datetime.now(UTC)
        async with self.work() as work:
            group = await self._group(work.conn, group_id, for_update=True)
            check_if_match(if_match, group.version, "buyer group")
            current = {
                "name": group.name,
                "focus_area": group.focus_area,
                "member_authority_ids": [m.id for m in group.members],
                "alerts": group.alerts.model_dump(mode="json"),
            }
            merged: BuyerGroupIn = rules.validated(BuyerGroupIn, rules.merge(current, patch))
            if merged.alerts.webhook_url != group.alerts.webhook_url:
                await validate_webhook_setting(merged.alerts.webhook_url, self.settings)
            member_ids = list(dict.fromkeys(merged.member_authority_ids))
            members_changed = {str(m) for m in member_ids} != {m.id for m in group.members}
            unchanged = (
                not members_changed
                and merged.name == group.name
                and merged.focus_area.value == group.focus_area
                and merged.alerts == group.alerts
            )
            if unchanged:
                return group
            if members_changed:
                await _check_members(work.conn, merged.member_authority_ids)
            group.name, group.focus_area, group.alerts = merged.name, merged.focus_area.value, merged.alerts
            group.version, group.updated_at = group.version + 1, now
            await repository.update_group(work.conn, group, member_ids)
            if members_changed:
                await _rebacked(work, group_id, now)
            group = await self._group(work.conn, group_id)
            _emit_group(work, group, events.BuyerGroupUpdated)
        return group

    # --- needs ---------------------------------------------------------------------------------

    async def publish_need(self, principal: Principal, group_id: str, fields: NeedFields) -> Need:
        authorize_group(principal, group_id)
        now = datetime.now(UTC)
        async with self.work() as work:
            backing = await repository.backing(work.conn, [group_id])
            if backing.count == 0 and not await repository.group_exists(work.conn, group_id):
                raise NotFound(f"no buyer group {group_id}")
            state = NeedState(
                id=str(uuid.uuid4()),
                buyer_group_id=group_id,
                status=NeedStatus.open,
                authority_levels=backing.levels,
                version=1,
                published_at=now,
                updated_at=now,
                **fields.model_dump(),
            )
            return await _save(work, Need(state, backing), events.NeedPublished)

    async def need(self, principal: Principal | None, need_id: str) -> Need:
        """A need the caller may see (any open need; a closed one for its groups)."""
        async with self.pool.acquire() as conn:
            need = await repository.get_need(conn, need_id)
        if need is None or not may_see(principal, need.state):
            raise NotFound(f"no need {need_id}")
        return need

    async def open_needs(self, filters: repository.NeedFilter, limit: int) -> tuple[list[Need], str | None]:
        """A page of open needs and the cursor of the next (None on the last)."""
        async with self.pool.acquire() as conn:
            rows = await repository.list_open_needs(conn, filters, limit + 1)
        next_cursor = None
        if len(rows) > limit:
            last, published_at = rows[limit - 1]
            next_cursor = rules.encode_cursor(published_at, last.state.id)
        return [need for need, _ in rows[:limit]], next_cursor

    async def ocds_package(self, uri: str) -> dict[str, Any]:
        """Every open need as an OCDS release package (open data: no caller is checked)."""
        async with self.pool.acquire() as conn, conn.transaction(isolation="repeatable_read", readonly=True):
            open_needs = await repository.all_open_needs(conn)
            group_ids = {g for n in open_needs for g in (n.state.buyer_group_id, *n.state.cosigners)}
            groups = await repository.groups_with_members(conn, sorted(group_ids))
            answered = await repository.answered_questions(conn, [n.state.id for n in open_needs])
        return ocds.release_package(
            open_needs,
            groups,
            answered,
            ocid_prefix=self.settings.ocds_ocid_prefix,
            uri=uri,
            publisher=self.settings.ocds_publisher_name,
            published_at=datetime.now(UTC),
        )

    async def patch_need(
        self, principal: Principal, need_id: str, patch: dict[str, Any], if_match: str | None
    ) -> Need:
        """`patch`: a JSON merge patch of the need's fields, as sent."""
        now = datetime.now(UTC)
        async with self.work() as work:
            need = await _locked_need(work.conn, need_id)
            authorize_owner(principal, need.state)
            check_if_match(if_match, need.state.version, "need")
            rules.require_open(need.state)
            current = need.state.model_dump(mode="json", include=set(NeedFields.model_fields))
            fields: NeedFields = rules.validated(NeedFields, {**current, **patch})
            changed = rules.apply_patch(need.state, fields.model_dump(), now)
            if changed is None:
                return need
            return await _save(work, Need(changed, need.backing), events.NeedUpdated)

    async def close_need(self, principal: Principal, need_id: str, reason: str, if_match: str | None) -> Need:
        async with self.work() as work:
            need = await _locked_need(work.conn, need_id)
            authorize_owner(principal, need.state)
            check_if_match(if_match, need.state.version, "need")
            now = datetime.now(UTC)
            closed = rules.close(need.state, reason, now)
            saved = await _save(work, Need(closed, need.backing), events.NeedClosed)
            # Its open dialogues end with it: nobody is to ask or offer more about a need that
            # is no longer sought (dialogue.closed for each).
            for dialogue_id in await repository.open_dialogue_ids_of_need(work.conn, need_id):
                dialogue = await repository.get_dialogue(work.conn, dialogue_id)
                if dialogue is not None:
                    await _close_dialogue(work, dialogue, now)
            return saved

    async def cosign_need(self, principal: Principal, need_id: str) -> Need:
        if principal.kind != "buyer_group" or principal.id is None:
            raise Forbidden("only a buyer group may co-sign a need, with its own token")
        async with self.work() as work:
            need = await _locked_need(work.conn, need_id)
            state = rules.cosign(need.state, principal.id, datetime.now(UTC))
            if state is None:
                return need
            backing = await repository.backing(work.conn, [state.buyer_group_id, *state.cosigners])
            return await _save(work, Need(rules.with_backing(state, backing), backing), events.NeedUpdated)

    async def similar_needs(self, principal: Principal, need_id: str) -> list[tuple[rules.Similarity, Need]]:
        """Open needs of other groups about the same things, best first, with what they share."""
        async with self.pool.acquire() as conn:
            need = await repository.get_need(conn, need_id)
            if need is None or not may_see(principal, need.state):
                raise NotFound(f"no need {need_id}")
            authorize_owner(principal, need.state)
            branches, words = await repository.branches_and_words(conn, need_id)
            candidates = await repository.similar_candidates(
                conn, need_id, need.state.buyer_group_id, branches, words, SIMILAR_CANDIDATES
            )
        scored = [(rules.similarity(branches, words, c.branches, c.words), c.need) for c in candidates]
        scored.sort(key=lambda p: (-p[0].score, -p[1].state.published_at.timestamp(), p[1].state.id))
        return scored[:SIMILAR_SHOWN]


def shared_branches(similarity: rules.Similarity) -> list[CpvEntry]:
    """The CPV entries of the branches two needs share (unknown codes left out)."""
    return [e for code in similarity.shared_cpv_branches if (e := cpv_lookup(code)) is not None]


async def _check_members(conn: Connection, ids: Sequence[uuid.UUID]) -> None:
    """422 naming each member_authority_ids[i] that is no registered authority."""
    missing = await repository.missing_authorities(conn, ids)
    if missing:
        raise InvalidData(
            [
                {
                    "loc": ("member_authority_ids", i),
                    "msg": f"no authority {ident}",
                    "type": "value_error",
                }
                for i, ident in enumerate(ids)
                if ident in missing
            ]
        )


def _emit_group(
    work: UnitOfWork,
    group: BuyerGroup,
    event_type: type[events.BuyerGroupCreated] | type[events.BuyerGroupUpdated],
) -> None:
    """The group's current state, for the notifier (members' levels and alert settings)."""
    state = BuyerGroupState(
        id=group.id,
        name=group.name,
        focus_area=FocusArea(group.focus_area),
        member_authority_ids=[m.id for m in group.members],
        authority_levels=sorted({m.level for m in group.members}),
        alerts=group.alerts,
        version=group.version,
        created_at=group.created_at,
        updated_at=group.updated_at,
    )
    work.emit(new_event(event_type, source=SOURCE, data=state))


async def _locked_need(conn: Connection, need_id: str) -> Need:
    need = await repository.get_need(conn, need_id, for_update=True)
    if need is None:
        raise NotFound(f"no need {need_id}")
    return need


async def _close_dialogue(work: UnitOfWork, dialogue: Dialogue, now: datetime) -> None:
    """Close a dialogue whose row the transaction holds locked, publishing dialogue.closed."""
    dialogue.status, dialogue.version, dialogue.updated_at = "closed", dialogue.version + 1, now
    await repository.update_dialogue(work.conn, dialogue)
    work.emit(new_event(events.DialogueClosed, source=SOURCE, data=rules.dialogue_state(dialogue)))


async def _save(
    work: UnitOfWork,
    need: Need,
    event_type: type[events.NeedPublished] | type[events.NeedUpdated] | type[events.NeedClosed],
) -> Need:
    if event_type is events.NeedPublished:
        await repository.insert_need(work.conn, need.state, need.backing)
    else:
        await repository.update_need(work.conn, need.state, need.backing)
    work.emit(new_event(event_type, source=SOURCE, data=need.state))
    return need


async def _rebacked(work: UnitOfWork, group_id: str, now: datetime) -> None:
    """Republish the open needs behind which the group's authorities changed."""
    for need in await repository.open_needs_backed_by(work.conn, group_id):
        state = need.state
        backing = await repository.backing(work.conn, [state.buyer_group_id, *state.cosigners])
        if backing == need.backing:
            continue
        changed = rules.next_version(rules.with_backing(state, backing), now)
        await _save(work, Need(changed, backing), events.NeedUpdated)


# --- market dialogues ------------------------------------------------------------------------

# How many due dialogues one pass of the closer closes in one transaction.
CLOSE_BATCH = 100


async def learn_suppliers(conn: Connection, batch: list[events.SupplierEvent]) -> None:
    """Keep which suppliers exist (their tokens' erasure the consumer records itself)."""
    rows: list[tuple[str, str | None, bool, int]] = []
    for event in batch:
        if isinstance(event, events.SupplierRemoved):
            rows.append((event.data.id, None, True, event.data.version))
        else:
            rows.append((event.data.id, event.data.name, False, event.data.version))
    await repository.learn_suppliers(conn, rows)


async def learn_matches(conn: Connection, batch: list[events.MatchEvent]) -> None:
    """Keep each need's shortlist as the matcher publishes it, for dialogues' `shortlist_top`."""
    rows = [
        (m.need_id, m.supplier_id, m.score, m.status == "active", m.verdict, m.version)
        for m in (event.data for event in batch)
    ]
    await repository.learn_matches(conn, rows)


def _is_group_of(principal: Principal | None, dialogue: Dialogue) -> bool:
    return principal is not None and principal.kind == "buyer_group" and principal.id in dialogue.groups


def _authorize_reader(principal: Principal | None, dialogue: Dialogue) -> None:
    """The dialogue's groups, its suppliers and operators may read it; anyone when it is open."""
    if dialogue.open_to_all:
        return
    if principal is None:
        raise Unauthenticated("a bearer token is required")
    if principal.is_operator or _is_group_of(principal, dialogue):
        return
    if principal.kind == "supplier" and principal.id and dialogue.participant(principal.id):
        return
    raise Forbidden(
        f"only the dialogue's buyer groups and participating suppliers may read dialogue {dialogue.id}"
    )


def _authorize_group(principal: Principal, dialogue: Dialogue, doing: str) -> None:
    if not _is_group_of(principal, dialogue):
        raise Forbidden(f"only the need's buyer groups may {doing}")


class Dialogues(UseCases):
    """Market dialogues about needs: who takes part, questions and answers, written input."""

    def __init__(
        self, pool: asyncpg.Pool | Callable[[], asyncpg.Pool], settings: Settings, schema: str = "needs"
    ) -> None:
        super().__init__(pool, settings, schema)

    async def open(self, principal: Principal, need_id: str, body: DialogueIn) -> Dialogue:
        """The need's owning or a co-signing group opens a dialogue and invites suppliers."""
        now = datetime.now(UTC)
        async with self.work() as work:
            need = await repository.get_need(work.conn, need_id, for_update=True)
            if need is None or not may_see(principal, need.state):
                raise NotFound(f"no need {need_id}")
            groups = [need.state.buyer_group_id, *need.state.cosigners]
            if not (principal.kind == "buyer_group" and principal.id in groups):
                raise Forbidden("only the need's owning or co-signing buyer groups may open a dialogue")
            assert principal.id is not None
            rules.require_open(need.state)
            invited = await self._invitees(work.conn, need_id, body)
            dialogue_id = str(uuid.uuid4())
            await repository.insert_dialogue(
                work.conn,
                Dialogue(
                    id=dialogue_id,
                    need_id=need_id,
                    need_title=need.state.title,
                    opened_by=principal.id,
                    groups=groups,
                    title=body.title,
                    agenda=body.agenda,
                    open_to_all=body.open,
                    closes_at=body.closes_at,
                    status="open",
                    version=1,
                    opened_at=now,
                    updated_at=now,
                    suppliers=[],
                    group_names={},
                ),
            )
            await repository.invite(work.conn, dialogue_id, invited, now)
            dialogue = await self._dialogue(work.conn, dialogue_id)
            state = rules.dialogue_state(dialogue)
            work.emit(new_event(events.DialogueOpened, source=SOURCE, data=state))
            for supplier_id in invited:
                invitation = events.DialogueInvitation(
                    dialogue_id=dialogue_id, supplier_id=supplier_id, dialogue=state
                )
                work.emit(new_event(events.DialogueSupplierInvited, source=SOURCE, data=invitation))
        return dialogue

    @staticmethod
    async def _invitees(conn: Connection, need_id: str, body: DialogueIn) -> list[str]:
        """The suppliers to invite: those named (404 for one not registered) or the need's top N."""
        if body.invitees is None:
            return []
        if body.invitees.supplier_ids is not None:
            ids = list(dict.fromkeys(body.invitees.supplier_ids))
            unknown = await repository.unknown_suppliers(conn, ids)
            if unknown:
                raise NotFound(f"no supplier {', '.join(unknown)}", supplier_ids=unknown)
            return ids
        assert body.invitees.shortlist_top is not None
        top = await repository.shortlist_top(conn, need_id, body.invitees.shortlist_top)
        if not top and not body.open:
            raise StateConflict(f"need {need_id} has no matches yet: there is no shortlist to invite")
        return top

    @staticmethod
    async def _dialogue(conn: Connection, dialogue_id: str, *, for_update: bool = False) -> Dialogue:
        dialogue = await repository.get_dialogue(conn, dialogue_id, for_update=for_update)
        if dialogue is None:
            raise NotFound(f"no dialogue {dialogue_id}")
        return dialogue

    async def dialogue(self, principal: Principal | None, dialogue_id: str) -> Dialogue:
        async with self.pool.acquire() as conn:
            dialogue = await self._dialogue(conn, dialogue_id)
        _authorize_reader(principal, dialogue)
        return dialogue

    async def of_need(self, principal: Principal | None, need_id: str) -> list[Dialogue]:
        """The need's dialogues that the caller may read (see _authorize_reader), newest first."""
        readable = []
        async with self.pool.acquire() as conn:
            for dialogue_id in await repository.dialogue_ids_of_need(conn, need_id):
                dialogue = await self._dialogue(conn, dialogue_id)
                try:
                    _authorize_reader(principal, dialogue)
                except (Unauthenticated, Forbidden):
                    continue
                readable.append(dialogue)
        return readable

    async def _participant(
        self, work: UnitOfWork, principal: Principal, dialogue: Dialogue, now: datetime
    ) -> str:
        """The calling supplier's id, once it takes part: an invited or joined supplier, or one
        that joins an open dialogue now. 403 for anyone else."""
        if principal.kind != "supplier" or principal.id is None:
            raise Forbidden("only a supplier, with its own token, takes part in a dialogue")
        if dialogue.participant(principal.id) is None:
            if not dialogue.open_to_all:
                raise Forbidden(f"supplier {principal.id} is not a participant of dialogue {dialogue.id}")
            rules.require_before_close(dialogue, now)
            await repository.join(work.conn, dialogue.id, principal.id, now)
            dialogue.version, dialogue.updated_at = dialogue.version + 1, now
            await repository.update_dialogue(work.conn, dialogue)
        return principal.id

    async def ask(self, principal: Principal, dialogue_id: str, question: str) -> Question:
        """A participating supplier asks; in an open dialogue, asking joins it."""
        now = datetime.now(UTC)
        async with self.work() as work:
            dialogue = await self._dialogue(work.conn, dialogue_id, for_update=True)
            supplier_id = await self._participant(work, principal, dialogue, now)
            rules.require_before_close(dialogue, now)
            first = not await repository.has_answered(work.conn, dialogue_id, supplier_id)
            asked = Question(
                id=str(uuid.uuid4()),
                dialogue_id=dialogue_id,
                asked_by=supplier_id,
                question=question,
                asked_at=now,
                answer=None,
                answered_by=None,
                answered_at=None,
            )
            await repository.insert_question(work.conn, asked)
            if first:
                await self._answered(work, dialogue_id, supplier_id, now)
        return asked

    async def answer(self, principal: Principal, dialogue_id: str, question_id: str, answer: str) -> Question:
        """One of the need's groups answers a question, once; every participant then sees it."""
        now = datetime.now(UTC)
        async with self.work() as work:
            dialogue = await self._dialogue(work.conn, dialogue_id, for_update=True)
            _authorize_group(principal, dialogue, "answer questions")
            assert principal.id is not None
            question = await repository.get_question(work.conn, dialogue_id, question_id, for_update=True)
            if question is None:
                raise NotFound(f"no question {question_id} in dialogue {dialogue_id}")
            rules.require_before_close(dialogue, now)
            if question.answer is not None:
                raise StateConflict(f"question {question_id} is answered already")
            await repository.answer_question(work.conn, question_id, answer, principal.id, now)
            dialogue.version, dialogue.updated_at = dialogue.version + 1, now
            await repository.update_dialogue(work.conn, dialogue)
            answered = events.AnsweredQuestion(
                id=question_id,
                question=question.question,
                answer=answer,
                asked_at=question.asked_at,
                answered_at=now,
            )
            data = events.DialogueAnswer(
                dialogue_id=dialogue_id, question=answered, dialogue=rules.dialogue_state(dialogue)
            )
            work.emit(new_event(events.DialogueQuestionAnswered, source=SOURCE, data=data))
        return replace(question, answer=answer, answered_by=principal.id, answered_at=now)

    async def questions(self, principal: Principal | None, dialogue_id: str) -> list[Question]:
        """All questions for the groups and operators; for others the answered ones, and a
        supplier's own unanswered ones. Who asked is left to the caller to hide."""
        async with self.pool.acquire() as conn:
            dialogue = await self._dialogue(conn, dialogue_id)
            _authorize_reader(principal, dialogue)
            asked = await repository.questions(conn, dialogue_id)
        if principal is not None and (principal.is_operator or _is_group_of(principal, dialogue)):
            return asked
        supplier_id = principal.id if principal is not None and principal.kind == "supplier" else None
        return rules.visible_questions(asked, supplier_id)

    async def respond(
        self, principal: Principal, dialogue_id: str, response: str, text: str | None
    ) -> tuple[str, datetime]:
        """A supplier accepts, declines or submits written input; (its id, when)."""
        now = datetime.now(UTC)
        async with self.work() as work:
            dialogue = await self._dialogue(work.conn, dialogue_id, for_update=True)
            supplier_id = await self._participant(work, principal, dialogue, now)
            rules.require_before_close(dialogue, now)
            first = not await repository.has_answered(work.conn, dialogue_id, supplier_id)
            if response == "input":
                assert text is not None
                written = WrittenInput(str(uuid.uuid4()), dialogue_id, supplier_id, text, now)
                await repository.insert_input(work.conn, written)
            else:
                answer = "accepted" if response == "accept" else "declined"
                await repository.respond(work.conn, dialogue_id, supplier_id, answer, now)
            if first:
                await self._answered(work, dialogue_id, supplier_id, now)
        return supplier_id, now

    async def _answered(self, work: UnitOfWork, dialogue_id: str, supplier_id: str, now: datetime) -> None:
        """dialogue.supplier_answered: the supplier's first question or response in the dialogue
        (for the results report), naming neither which nor what it asked."""
        state = rules.dialogue_state(await self._dialogue(work.conn, dialogue_id))
        data = events.DialogueParticipation(
            dialogue_id=dialogue_id, supplier_id=supplier_id, at=now, dialogue=state
        )
        work.emit(new_event(events.DialogueSupplierAnswered, source=SOURCE, data=data))

    async def record(
        self, principal: Principal, dialogue_id: str
    ) -> tuple[Dialogue, list[Question], list[WrittenInput]]:
        """Everything about the dialogue, askers included, for its groups and operators."""
        async with self.pool.acquire() as conn:
            dialogue = await self._dialogue(conn, dialogue_id)
            if not (principal.is_operator or _is_group_of(principal, dialogue)):
                raise Forbidden("only the need's buyer groups and operators may read a dialogue's record")
            return (
                dialogue,
                await repository.questions(conn, dialogue_id),
                await repository.inputs(conn, dialogue_id),
            )

    async def close_due(self, now: datetime | None = None) -> int:
        """Close the dialogues whose closes_at has passed, publishing dialogue.closed; how many."""
        now = now or datetime.now(UTC)
        async with self.work() as work:
            due = await repository.due_dialogues(work.conn, now, CLOSE_BATCH)
            for dialogue_id in due:
                await _close_dialogue(work, await self._dialogue(work.conn, dialogue_id), now)
        return len(due)
