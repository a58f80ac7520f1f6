"""Market dialogues' use cases against a real PostgreSQL, with no web server in between: who
may take part, what each party sees of the questions, the deadline, and the events left in
the outbox."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest

from services.contracts.errors import StateConflict
from services.contracts.events import (
    MatchExplanation,
    MatchFound,
    MatchJudged,
    MatchState,
    MatchWithdrawn,
    SupplierRemoved,
    SupplierRemovedState,
    match_id,
    new_event,
    parse_event,
)
from services.infra.auth import Principal
from services.infra.errors import Forbidden, NotFound, Unauthenticated
from services.infra.metrics import Metrics
from services.needs.handlers import Dialogues, Needs, learn_matches, learn_suppliers
from services.needs.models import BuyerGroupIn, DialogueIn, NeedIn
from services.notifier.handlers import Handlers, Inbox
from services.notifier.metrics import NotifierMetrics
from tests import factories
from tests.conftest import Stack

OPERATOR = Principal("operator")
DIALOGUES_TOPIC = "innomatch.dialogues.v1"


@pytest.fixture
def needs(stack: Stack, db: asyncpg.Pool) -> Needs:
    return Needs(db, stack.settings())


@pytest.fixture
def dialogues(stack: Stack, db: asyncpg.Pool) -> Dialogues:
    return Dialogues(db, stack.settings())


async def _group(needs: Needs) -> tuple[str, Principal]:
    authority = await needs.create_authority(factories.public_org_number(), "Umeå kommun", "local", "SE331")
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


async def _need(needs: Needs) -> tuple[str, Principal]:
    group_id, group = await _group(needs)
    need = await needs.publish_need(group, group_id, NeedIn.model_validate(factories.need()))
    return need.state.id, group


async def _suppliers(db: asyncpg.Pool, n: int) -> list[str]:
    """n suppliers registered, as the needs service learns them from the suppliers topic."""
    states = [factories.supplier_state(name=f"Leverantör {i} AB") for i in range(n)]
    async with db.acquire() as conn:
        await learn_suppliers(conn, [factories.supplier_registered(s) for s in states])
    return [s.id for s in states]


def _body(**overrides: Any) -> DialogueIn:
    body: dict[str, Any] = {
        "title": "Marknadsdialog om snabbladdning",
        "agenda": "Behovet, era frågor, nästa steg",
        "closes_at": (datetime.now(UTC) + timedelta(days=14)).isoformat(),
    }
    body.update(overrides)
    return DialogueIn.model_validate(body)


async def _outbox(db: asyncpg.Pool, key: str) -> list[tuple[str, str, dict[str, Any]]]:
    rows = await db.fetch(
        "SELECT topic, event_type, payload FROM needs.outbox WHERE key = $1 ORDER BY id", key
    )
    return [(r["topic"], r["event_type"], json.loads(r["payload"])["data"]) for r in rows]


async def _past_deadline(db: asyncpg.Pool, dialogue_id: str) -> None:
    await db.execute(
        "UPDATE needs.dialogues SET closes_at = now() - interval '1 second' WHERE id = $1", dialogue_id
    )


def supplier(ident: str) -> Principal:
    return Principal("supplier", ident)


async def test_opening_with_named_suppliers_invites_them_and_publishes_the_invitations(
    needs: Needs, dialogues: Dialogues, db: asyncpg.Pool
) -> None:
    need_id, group = await _need(needs)
    first, second = await _suppliers(db, 2)

    dialogue = await dialogues.open(group, need_id, _body(invitees={"supplier_ids": [first, second, first]}))

    assert sorted(s.supplier_id for s in dialogue.suppliers) == sorted([first, second])
    assert all(s.invited_at is not None and s.name for s in dialogue.suppliers)
    assert dialogue.groups == [group.id] and dialogue.status == "open"
    events = await _outbox(db, dialogue.id)
    assert {topic for topic, _, _ in events} == {DIALOGUES_TOPIC}
    assert [t for _, t, _ in events] == ["dialogue.opened", *["dialogue.supplier_invited"] * 2]
    assert sorted(events[0][2]["invited_supplier_ids"]) == sorted([first, second])
    assert [data["supplier_id"] for _, _, data in events[1:]] == [first, second]


async def test_only_the_needs_groups_open_and_only_registered_suppliers_are_invited(
    needs: Needs, dialogues: Dialogues, db: asyncpg.Pool
) -> None:
    need_id, group = await _need(needs)
    other_id, other = await _group(needs)
    [known] = await _suppliers(db, 1)
    stranger = str(uuid.uuid4())

    with pytest.raises(NotFound, match=stranger):
        await dialogues.open(group, need_id, _body(invitees={"supplier_ids": [known, stranger]}))
    with pytest.raises(Forbidden):
        await dialogues.open(other, need_id, _body(open=True))
    with pytest.raises(Forbidden):
        await dialogues.open(supplier(known), need_id, _body(open=True))
    with pytest.raises(NotFound):
        await dialogues.open(group, str(uuid.uuid4()), _body(open=True))

    await needs.cosign_need(other, need_id)
    cosigned = await dialogues.open(other, need_id, _body(open=True))
    assert cosigned.groups == [group.id, other_id] and cosigned.opened_by == other_id


async def test_a_removed_supplier_cannot_be_invited(
    needs: Needs, dialogues: Dialogues, db: asyncpg.Pool
) -> None:
    need_id, group = await _need(needs)
    [gone] = await _suppliers(db, 1)
    removed = new_event(
        SupplierRemoved,
        source="/tests",
        data=SupplierRemovedState(id=gone, version=2, removed_at=datetime.now(UTC)),
    )
    async with db.acquire() as conn:
        await learn_suppliers(conn, [removed])
    with pytest.raises(NotFound):
        await dialogues.open(group, need_id, _body(invitees={"supplier_ids": [gone]}))


def _match(cls: Any, need_id: str, supplier_id: str, score: float, version: int = 1, **extra: Any) -> Any:
    state = MatchState(
        id=match_id(need_id, supplier_id),
        need_id=need_id,
        supplier_id=supplier_id,
        score=score,
        version=version,
        status="withdrawn" if cls is MatchWithdrawn else "active",
        explanation=MatchExplanation(region_verdict="ok", trl_verdict="ok"),
        updated_at=datetime.now(UTC),
        **extra,
    )
    return new_event(cls, source="/tests", data=state)


async def test_shortlist_top_invites_the_best_current_matches(
    needs: Needs, dialogues: Dialogues, db: asyncpg.Pool
) -> None:
    need_id, group = await _need(needs)
    a, b, c, d, e = await _suppliers(db, 5)
    async with db.acquire() as conn:
        await learn_matches(
            conn,
            [
                _match(MatchFound, need_id, a, 0.9),
                _match(MatchFound, need_id, b, 0.8),
                _match(MatchFound, need_id, c, 0.7),
                _match(MatchFound, need_id, d, 0.95),
                _match(MatchFound, need_id, e, 0.6),
                _match(MatchWithdrawn, need_id, d, 0.95, version=2),  # no longer a match
                _match(MatchJudged, need_id, a, 0.9, version=2, verdict="not_relevant"),  # goes last
                _match(MatchWithdrawn, need_id, c, 0.7, version=1),  # stale: older than what is held
            ],
        )

    dialogue = await dialogues.open(group, need_id, _body(invitees={"shortlist_top": 3}))

    assert {s.supplier_id for s in dialogue.suppliers} == {b, c, e}
    other_need, other_group = await _need(needs)
    with pytest.raises(StateConflict, match="no matches"):
        await dialogues.open(other_group, other_need, _body(invitees={"shortlist_top": 3}))


async def test_answered_questions_reach_every_participant_without_the_asker(
    needs: Needs, dialogues: Dialogues, db: asyncpg.Pool
) -> None:
    need_id, group = await _need(needs)
    asker, other = await _suppliers(db, 2)
    dialogue = await dialogues.open(group, need_id, _body(invitees={"supplier_ids": [asker, other]}))

    question = await dialogues.ask(supplier(asker), dialogue.id, "Kan laddarna delas med taxi?")

    assert await dialogues.questions(supplier(other), dialogue.id) == []
    [own] = await dialogues.questions(supplier(asker), dialogue.id)
    assert own.id == question.id and own.answer is None
    assert [q.id for q in await dialogues.questions(group, dialogue.id)] == [question.id]
    assert [q.id for q in await dialogues.questions(OPERATOR, dialogue.id)] == [question.id]

    await dialogues.answer(group, dialogue.id, question.id, "Ja, om effekten räcker.")

    for who in (asker, other):
        [seen] = await dialogues.questions(supplier(who), dialogue.id)
        assert (seen.question, seen.answer) == ("Kan laddarna delas med taxi?", "Ja, om effekten räcker.")
    events = await _outbox(db, dialogue.id)
    answered = [data for _, t, data in events if t == "dialogue.question_answered"]
    assert [a["question"]["answer"] for a in answered] == ["Ja, om effekten räcker."]
    assert sorted(answered[0]["dialogue"]["invited_supplier_ids"]) == sorted([asker, other])
    # The event goes to every participant: it names no asker.
    assert "asked_by" not in json.dumps(answered[0])
    assert json.dumps(answered[0]).count(asker) == 1  # only as an invited supplier
    with pytest.raises(StateConflict, match="answered already"):
        await dialogues.answer(group, dialogue.id, question.id, "Igen")


async def test_who_may_ask_answer_and_read(needs: Needs, dialogues: Dialogues, db: asyncpg.Pool) -> None:
    need_id, group = await _need(needs)
    invited, outsider = await _suppliers(db, 2)
    _, other_group = await _group(needs)
    dialogue = await dialogues.open(group, need_id, _body(invitees={"supplier_ids": [invited]}))
    question = await dialogues.ask(supplier(invited), dialogue.id, "Vilken effekt?")

    for call in (
        dialogues.ask(supplier(outsider), dialogue.id, "Får jag vara med?"),
        dialogues.questions(supplier(outsider), dialogue.id),
        dialogues.dialogue(supplier(outsider), dialogue.id),
        dialogues.respond(supplier(outsider), dialogue.id, "accept", None),
        dialogues.answer(supplier(invited), dialogue.id, question.id, "Jag svarar själv"),
        dialogues.answer(other_group, dialogue.id, question.id, "Fel grupp"),
        dialogues.dialogue(other_group, dialogue.id),
        dialogues.record(supplier(invited), dialogue.id),
        dialogues.ask(group, dialogue.id, "En grupp frågar inte"),
    ):
        with pytest.raises(Forbidden):
            await call
    with pytest.raises(Unauthenticated):
        await dialogues.dialogue(None, dialogue.id)
    with pytest.raises(NotFound):
        await dialogues.ask(supplier(invited), str(uuid.uuid4()), "Finns den?")
    with pytest.raises(NotFound):
        await dialogues.answer(group, dialogue.id, str(uuid.uuid4()), "Vilken fråga?")
    assert (await dialogues.dialogue(OPERATOR, dialogue.id)).id == dialogue.id


async def test_in_an_open_dialogue_anyone_reads_and_taking_part_joins(
    needs: Needs, dialogues: Dialogues, db: asyncpg.Pool
) -> None:
    need_id, group = await _need(needs)
    [newcomer] = await _suppliers(db, 1)
    dialogue = await dialogues.open(group, need_id, _body(open=True))
    assert dialogue.suppliers == []
    assert (await dialogues.dialogue(None, dialogue.id)).open_to_all

    question = await dialogues.ask(supplier(newcomer), dialogue.id, "Hur stora depåer?")

    joined = await dialogues.dialogue(None, dialogue.id)
    [participant] = joined.suppliers
    assert participant.supplier_id == newcomer and participant.invited_at is None and participant.joined_at
    assert joined.version == 2
    assert await dialogues.questions(None, dialogue.id) == []
    await dialogues.answer(group, dialogue.id, question.id, "Tolv bussar.")
    assert [q.answer for q in await dialogues.questions(None, dialogue.id)] == ["Tolv bussar."]


async def test_nothing_is_asked_answered_or_submitted_after_closes_at_and_the_dialogue_closes(
    needs: Needs, dialogues: Dialogues, db: asyncpg.Pool
) -> None:
    need_id, group = await _need(needs)
    [invited] = await _suppliers(db, 1)
    dialogue = await dialogues.open(group, need_id, _body(invitees={"supplier_ids": [invited]}))
    question = await dialogues.ask(supplier(invited), dialogue.id, "Hinner ni svara?")
    await _past_deadline(db, dialogue.id)

    for call in (
        dialogues.ask(supplier(invited), dialogue.id, "För sent?"),
        dialogues.answer(group, dialogue.id, question.id, "För sent."),
        dialogues.respond(supplier(invited), dialogue.id, "input", "Sen synpunkt"),
    ):
        with pytest.raises(StateConflict, match="after closes_at"):
            await call

    assert await dialogues.close_due() >= 1
    closed = await dialogues.dialogue(group, dialogue.id)
    assert closed.status == "closed" and closed.version == 2
    assert [t for _, t, _ in await _outbox(db, dialogue.id)][-1] == "dialogue.closed"
    await dialogues.close_due()
    assert (await dialogues.dialogue(group, dialogue.id)).version == 2  # closed once


async def test_closing_the_need_closes_its_open_dialogues(
    needs: Needs, dialogues: Dialogues, db: asyncpg.Pool
) -> None:
    need_id, group = await _need(needs)
    [invited] = await _suppliers(db, 1)
    dialogue = await dialogues.open(group, need_id, _body(invitees={"supplier_ids": [invited]}))
    question = await dialogues.ask(supplier(invited), dialogue.id, "Vilken effekt behövs?")

    await needs.close_need(group, need_id, "Upphandlingen avbröts", None)

    closed = await dialogues.dialogue(group, dialogue.id)
    assert closed.status == "closed" and closed.version == dialogue.version + 1
    events = await _outbox(db, dialogue.id)
    assert events[-1][1] == "dialogue.closed" and events[-1][2]["status"] == "closed"
    for call in (
        dialogues.ask(supplier(invited), dialogue.id, "Fortfarande öppet?"),
        dialogues.answer(group, dialogue.id, question.id, "Nej."),
        dialogues.respond(supplier(invited), dialogue.id, "accept", None),
    ):
        with pytest.raises(StateConflict, match="its need was closed"):
            await call
    await dialogues.close_due()
    assert (await dialogues.dialogue(group, dialogue.id)).version == closed.version  # closed once


async def test_responses_and_the_record(needs: Needs, dialogues: Dialogues, db: asyncpg.Pool) -> None:
    need_id, group = await _need(needs)
    accepting, declining = await _suppliers(db, 2)
    dialogue = await dialogues.open(group, need_id, _body(invitees={"supplier_ids": [accepting, declining]}))
    await dialogues.respond(supplier(accepting), dialogue.id, "accept", None)
    await dialogues.respond(supplier(declining), dialogue.id, "decline", None)
    await dialogues.respond(supplier(accepting), dialogue.id, "input", "Vi har byggt tre depåer.")
    question = await dialogues.ask(supplier(accepting), dialogue.id, "Finns el i depån?")
    await dialogues.answer(group, dialogue.id, question.id, "200 kW.")

    recorded, questions, inputs = await dialogues.record(group, dialogue.id)

    responses = {s.supplier_id: s.response for s in recorded.suppliers}
    assert responses == {accepting: "accepted", declining: "declined"}
    [q] = questions
    assert (q.asked_by, q.answer, q.answered_by) == (accepting, "200 kW.", group.id)
    [written] = inputs
    assert (written.supplier_id, written.text) == (accepting, "Vi har byggt tre depåer.")
    assert (await dialogues.record(OPERATOR, dialogue.id))[0].id == dialogue.id
    # Each supplier's first question or response, once: for the report of who answered.
    answered = [data for _, t, data in await _outbox(db, dialogue.id) if t == "dialogue.supplier_answered"]
    assert [a["supplier_id"] for a in answered] == [accepting, declining]
    assert sorted(answered[-1]["dialogue"]["invited_supplier_ids"]) == sorted([accepting, declining])


# The notifier's part: the needs service's dialogue events become inbox notices.


async def _dialogue_events(db: asyncpg.Pool, dialogue_id: str) -> list[Any]:
    rows = await db.fetch("SELECT payload FROM needs.outbox WHERE key = $1 ORDER BY id", dialogue_id)
    return [parse_event(DIALOGUES_TOPIC, bytes(r["payload"])) for r in rows]


async def test_the_notifier_tells_invited_suppliers_and_every_participant_of_each_answer(
    needs: Needs, dialogues: Dialogues, db: asyncpg.Pool, stack: Stack
) -> None:
    need_id, group = await _need(needs)
    asker, other, outsider = await _suppliers(db, 3)
    dialogue = await dialogues.open(group, need_id, _body(invitees={"supplier_ids": [asker, other]}))
    question = await dialogues.ask(supplier(asker), dialogue.id, "Kan laddarna delas med taxi?")
    await dialogues.answer(group, dialogue.id, question.id, "Ja, om effekten räcker.")
    handlers = Handlers(NotifierMetrics(Metrics("notifier")), smtp=False, forum_url="http://forum.test")
    inbox = Inbox(lambda: db, "secret")

    for _ in range(2):  # a redelivered batch adds nothing
        async with db.acquire() as conn, conn.transaction():
            await handlers.on_dialogue_events(conn, await _dialogue_events(db, dialogue.id))

    async def notices(principal: Principal) -> list[tuple[str, Any]]:
        rows, _ = await inbox.dialogue_notices(principal.name, 50, False)
        return sorted((r["kind"], json.loads(r["body"])) for r in rows)

    for who in (asker, other):
        [(answer_kind, answered), (invitation_kind, invited)] = await notices(supplier(who))
        assert (answer_kind, invitation_kind) == ("answer", "invitation")
        assert invited["dialogue"]["id"] == dialogue.id
        assert answered["question"]["answer"] == "Ja, om effekten räcker."
        assert asker not in json.dumps(answered)  # nobody is told who asked
    [(kind, _)] = await notices(group)
    assert kind == "answer"
    assert await notices(supplier(outsider)) == []
    rows, _ = await inbox.dialogue_notices(f"supplier:{other}", 50, False)
    await inbox.mark(f"supplier:{other}", rows[0]["id"], True)
    unread, _ = await inbox.dialogue_notices(f"supplier:{other}", 50, True)
    assert len(unread) == 1


async def test_dialogue_notices_go_over_the_recipients_webhooks_at_once_or_wait_for_their_settings(
    needs: Needs, dialogues: Dialogues, db: asyncpg.Pool
) -> None:
    need_id, group = await _need(needs)
    known, unknown = await _suppliers(db, 2)
    dialogue = await dialogues.open(group, need_id, _body(invitees={"supplier_ids": [known, unknown]}))
    question = await dialogues.ask(supplier(unknown), dialogue.id, "Vilken effekt?")
    await dialogues.answer(group, dialogue.id, question.id, "200 kW.")
    handlers = Handlers(NotifierMetrics(Metrics("notifier")), smtp=False, forum_url="http://forum.test")
    hook = {"webhook_url": "https://leverantor.se/hook", "webhook_secret": "s" * 20, "mode": "weekly"}
    told = factories.supplier_state(id=known, alerts=hook)

    async with db.acquire() as conn, conn.transaction():
        await handlers.on_supplier_events(conn, [factories.supplier_registered(told)])
        await handlers.on_dialogue_events(conn, await _dialogue_events(db, dialogue.id))

    async def deliveries(principal: str) -> list[Any]:
        return list(
            await db.fetch(
                "SELECT kind, channel, state, match_id, payload::text AS payload FROM notifier.deliveries "
                "WHERE principal = $1 ORDER BY match_id",
                principal,
            )
        )

    pushed = await deliveries(f"supplier:{known}")
    # A weekly recipient still hears at once: a dialogue has a deadline.
    assert [(d["kind"], d["channel"], d["state"]) for d in pushed] == [("notice", "webhook", "queued")] * 2
    assert sorted(d["match_id"] for d in pushed) == sorted(
        [f"dialogue:{dialogue.id}/invitation", f"dialogue:{dialogue.id}/{question.id}"]
    )
    answer = next(json.loads(d["payload"]) for d in pushed if question.id in d["match_id"])
    assert answer["type"] == "dialogue_notice" and answer["question"]["answer"] == "200 kW."
    assert unknown not in json.dumps(answer)  # the asker is not named
    # The asker's settings are not known yet: its notices wait for them.
    waiting = await deliveries(f"supplier:{unknown}")
    assert {(d["channel"], d["state"]) for d in waiting} == {("webhook", "waiting"), ("email", "waiting")}
    later = factories.supplier_state(id=unknown, alerts=hook)
    async with db.acquire() as conn, conn.transaction():
        await handlers.on_supplier_events(conn, [factories.supplier_registered(later)])
    routed = await deliveries(f"supplier:{unknown}")
    assert {(d["channel"], d["state"]) for d in routed} == {("webhook", "queued"), ("email", "skipped")}
