"""The needs service's use cases: authorities, buyer groups and needs.

Each command runs in a unit of work (`services/infra/unit_of_work.py`): it reads and writes
through `repository`, decides with the pure `rules`, and emits the events of the change, which
reach the outbox in the same transaction. Commands take parsed input and the caller's
principal, and raise domain errors (`services/contracts/errors.py`) or the not-found,
forbidden and conflict errors of `services/infra/errors.py`; the HTTP layer maps them.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg

from services.contracts import events
from services.contracts.cpv import CpvEntry, cpv_lookup
from services.contracts.errors import InvalidData
from services.contracts.events import BuyerGroupState, NeedState, new_event
from services.contracts.vocab import FocusArea, NeedStatus
from services.infra.auth import Principal
from services.infra.db import Connection
from services.infra.errors import Conflict, Forbidden, NotFound
from services.infra.etags import check_if_match
from services.infra.settings import Settings
from services.infra.unit_of_work import UnitOfWork, UseCases
from services.infra.webhooks import validate_webhook_setting
from services.needs import repository, rules
from services.needs.models import BuyerGroupIn, NeedFields
from services.needs.rules import Authority, BuyerGroup, Need

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
            closed = rules.close(need.state, reason, datetime.now(UTC))
            return await _save(work, Need(closed, need.backing), events.NeedClosed)

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
