"""The needs service's use cases against a real PostgreSQL, with no web server in between:
what each command stores, which events it leaves in the outbox, and what it refuses."""

from __future__ import annotations

import json
import uuid
from typing import Any

import asyncpg
import pytest

from services.contracts.errors import InvalidData, StateConflict
from services.infra.auth import Principal
from services.infra.errors import Forbidden, NotFound, PreconditionFailed
from services.needs.handlers import Needs
from services.needs.models import BuyerGroupIn, NeedIn
from tests import factories
from tests.conftest import Stack

OPERATOR = Principal("operator")


@pytest.fixture
def needs(stack: Stack, db: asyncpg.Pool) -> Needs:
    return Needs(db, stack.settings())


async def _outbox(db: asyncpg.Pool, key: str) -> list[tuple[str, str, dict[str, Any]]]:
    """(topic, event type, data) of the aggregate's events, oldest first."""
    rows = await db.fetch(
        "SELECT topic, event_type, payload FROM needs.outbox WHERE key = $1 ORDER BY id", key
    )
    return [(r["topic"], r["event_type"], json.loads(r["payload"])["data"]) for r in rows]


async def _group(needs: Needs, level: str = "local") -> tuple[str, Principal]:
    authority = await needs.create_authority(factories.public_org_number(), "Umeå kommun", level, "SE331")
    group = await needs.create_group(
        BuyerGroupIn.model_validate(
            {
                "name": "Norrlands innovationsgrupp",
                "focus_area": "transport",
                "member_authority_ids": [authority.id],
            }
        )
    )
    return group.id, Principal("buyer_group", group.id)


async def test_publishing_a_need_stores_it_and_leaves_need_published_in_the_outbox(
    needs: Needs, db: asyncpg.Pool
) -> None:
    group_id, group = await _group(needs)

    need = await needs.publish_need(group, group_id, NeedIn.model_validate(factories.need()))

    assert need.backing.count == 1 and need.state.authority_levels == ["local"]
    assert (await needs.need(None, need.state.id)).state == need.state
    [(topic, event_type, data)] = await _outbox(db, need.state.id)
    assert (topic, event_type) == ("innomatch.needs.v1", "need.published")
    assert data["version"] == 1 and data["buyer_group_id"] == group_id


async def test_a_group_cannot_publish_for_another_group(needs: Needs, db: asyncpg.Pool) -> None:
    group_id, _ = await _group(needs)
    _, other = await _group(needs)
    with pytest.raises(Forbidden):
        await needs.publish_need(other, group_id, NeedIn.model_validate(factories.need()))


async def test_closing_twice_is_a_conflict_and_leaves_one_need_closed(needs: Needs, db: asyncpg.Pool) -> None:
    group_id, group = await _group(needs)
    need = await needs.publish_need(group, group_id, NeedIn.model_validate(factories.need()))

    closed = await needs.close_need(group, need.state.id, "upphandlad", None)
    with pytest.raises(StateConflict):
        await needs.close_need(group, need.state.id, "igen", None)

    assert closed.state.status == "closed" and closed.state.version == 2
    assert [t for _, t, _ in await _outbox(db, need.state.id)] == ["need.published", "need.closed"]
    with pytest.raises(NotFound):  # a closed need is not public
        await needs.need(None, need.state.id)


async def test_a_patch_naming_an_old_version_changes_nothing(needs: Needs, db: asyncpg.Pool) -> None:
    group_id, group = await _group(needs)
    need = await needs.publish_need(group, group_id, NeedIn.model_validate(factories.need()))
    await needs.patch_need(group, need.state.id, {"min_trl": 8}, 'W/"1"')

    with pytest.raises(PreconditionFailed):
        await needs.patch_need(group, need.state.id, {"min_trl": 9}, 'W/"1"')

    assert (await needs.need(group, need.state.id)).state.min_trl == 8
    assert len(await _outbox(db, need.state.id)) == 2


async def test_an_invalid_patch_names_the_field_and_rolls_back(needs: Needs, db: asyncpg.Pool) -> None:
    group_id, group = await _group(needs)
    need = await needs.publish_need(group, group_id, NeedIn.model_validate(factories.need()))

    with pytest.raises(InvalidData) as raised:
        await needs.patch_need(group, need.state.id, {"min_trl": 12}, None)

    assert [e["loc"] for e in raised.value.errors] == [("min_trl",)]
    assert len(await _outbox(db, need.state.id)) == 1


async def test_cosigning_counts_the_cosigners_authorities_and_republishes(
    needs: Needs, db: asyncpg.Pool
) -> None:
    owner_id, owner = await _group(needs, "local")
    _, cosigner = await _group(needs, "national")
    need = await needs.publish_need(owner, owner_id, NeedIn.model_validate(factories.need()))

    cosigned = await needs.cosign_need(cosigner, need.state.id)
    again = await needs.cosign_need(cosigner, need.state.id)

    assert cosigned.backing.count == 2
    assert cosigned.state.authority_levels == ["national", "local"]
    assert again.state.version == cosigned.state.version == 2  # co-signing again changes nothing
    assert [t for _, t, _ in await _outbox(db, need.state.id)] == ["need.published", "need.updated"]


async def test_changing_a_groups_members_republishes_the_needs_behind_it(
    needs: Needs, db: asyncpg.Pool
) -> None:
    group_id, group = await _group(needs, "local")
    need = await needs.publish_need(group, group_id, NeedIn.model_validate(factories.need()))
    region = await needs.create_authority(
        factories.public_org_number(), "Region Västerbotten", "regional", "SE331"
    )
    members = [m.id for m in (await needs.group(OPERATOR, group_id)).members] + [region.id]

    changed = await needs.patch_group(OPERATOR, group_id, {"member_authority_ids": members}, None)

    assert changed.version == 2 and len(changed.members) == 2
    republished = await _outbox(db, need.state.id)
    assert [t for _, t, _ in republished] == ["need.published", "need.updated"]
    assert republished[-1][2]["authority_levels"] == ["regional", "local"]
    assert [t for _, t, _ in await _outbox(db, group_id)] == ["buyer_group.created", "buyer_group.updated"]


async def test_a_group_of_an_unknown_authority_is_refused_naming_the_member(needs: Needs) -> None:
    with pytest.raises(InvalidData) as raised:
        await needs.create_group(
            BuyerGroupIn.model_validate(
                {"name": "Grupp", "focus_area": "health_care", "member_authority_ids": [str(uuid.uuid4())]}
            )
        )
    assert [e["loc"] for e in raised.value.errors] == [("member_authority_ids", 0)]
