"""HTTP routes of the notifier: the in-app inbox, unsubscribe links, and running digests."""

from __future__ import annotations

import html
import json
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.responses import HTMLResponse
from pydantic import BaseModel, Field

from services.contracts.vocab import Language
from services.infra.auth import OperatorDep, PrincipalDep
from services.infra.http import RuntimeDep
from services.notifier import render
from services.notifier.delivery import DeliveryWorker
from services.notifier.handlers import Inbox

router = APIRouter(prefix="/v1")


def _inbox(runtime: RuntimeDep) -> Inbox:
    return Inbox(lambda: runtime.pool, runtime.settings.token_secret.get_secret_value())


InboxDep = Annotated[Inbox, Depends(_inbox)]


class InboxMatch(BaseModel):
    id: str
    version: int
    score: float
    status: str = Field(description="active, or withdrawn (no longer a match)")
    need_id: str
    supplier_id: str


class InboxAlert(BaseModel):
    id: str = Field(description="The alert thread; a match's updates fold into it")
    read: bool
    status: str = Field(description="active or withdrawn")
    created_at: datetime
    updated_at: datetime
    match: InboxMatch
    need: dict[str, Any]
    supplier: dict[str, Any]
    explanation: dict[str, Any]
    summary: str = Field(description="Why it matches, in plain words, in the recipient's language")


@router.get(
    "/inbox",
    tags=["inbox"],
    summary="The caller's alerts, newest first",
    description="Alerts at or above the caller's min_score; withdrawn matches stay, marked withdrawn.",
)
async def get_inbox(
    principal: PrincipalDep,
    inbox: InboxDep,
    limit: int = Query(50, ge=1, le=500),
    unread: bool = Query(False, description="Only unread alerts"),
) -> list[InboxAlert]:
    rows, language = await inbox.alerts(principal.name, limit, unread)
    return [
        InboxAlert(
            id=row["alert_id"],
            read=row["read"],
            status=view.status,
            created_at=row["created_at"],
            updated_at=row["updated_at"],
            match=InboxMatch(
                id=view.match_id,
                version=view.version,
                score=view.score,
                status=view.status,
                need_id=view.need_id,
                supplier_id=view.supplier_id,
            ),
            need={"id": view.need_id, "title": view.need_title},
            supplier={"id": view.supplier_id, "name": view.supplier_name},
            explanation=view.explanation.model_dump(mode="json"),
            summary=render.explain(view, language),
        )
        for row, view in rows
    ]


class NoticeDialogue(BaseModel):
    id: str
    need_id: str
    need_title: str | None
    title: str
    closes_at: datetime


class NoticeQuestion(BaseModel):
    id: str
    question: str
    answer: str
    asked_at: datetime
    answered_at: datetime


class DialogueNotice(BaseModel):
    id: str = Field(description="Marked read and unread like any alert (/v1/inbox/{id}/read)")
    kind: str = Field(description="invitation, or answer (a question answered for every participant)")
    read: bool
    created_at: datetime
    dialogue: NoticeDialogue
    question: NoticeQuestion | None = Field(description="With an answer: the question and the answer")
    summary: str = Field(description="The notice in the recipient's language")


@router.get(
    "/inbox/dialogues",
    tags=["inbox"],
    summary="The caller's market dialogue notices, newest first",
    description=(
        "An invitation to a dialogue (for the invited supplier), and every question answered in "
        "a dialogue the caller takes part in (the need's buyer groups and the dialogue's "
        "suppliers). A notice never names who asked."
    ),
)
async def get_dialogue_notices(
    principal: PrincipalDep,
    inbox: InboxDep,
    limit: int = Query(50, ge=1, le=500),
    unread: bool = Query(False, description="Only unread notices"),
) -> list[DialogueNotice]:
    rows, language = await inbox.dialogue_notices(principal.name, limit, unread)
    notices = []
    for row in rows:
        body = json.loads(row["body"])
        notices.append(
            DialogueNotice(
                id=row["id"],
                kind=row["kind"],
                read=row["read"],
                created_at=row["created_at"],
                dialogue=NoticeDialogue(**body["dialogue"], need_title=row["need_title"]),
                question=NoticeQuestion(**body["question"]) if "question" in body else None,
                summary=render.dialogue_summary(body, row["need_title"], language),
            )
        )
    return notices


@router.post("/inbox/{alert_id}/read", tags=["inbox"], summary="Mark an alert read")
async def mark_read(alert_id: str, principal: PrincipalDep, inbox: InboxDep) -> dict[str, Any]:
    await inbox.mark(principal.name, alert_id, True)
    return {"id": alert_id, "read": True}


@router.post("/inbox/{alert_id}/unread", tags=["inbox"], summary="Mark an alert unread again")
async def mark_unread(alert_id: str, principal: PrincipalDep, inbox: InboxDep) -> dict[str, Any]:
    await inbox.mark(principal.name, alert_id, False)
    return {"id": alert_id, "read": False}


_UNSUBSCRIBED = {
    Language.sv: "Du får inte längre e-post från Innomatch på {email}.",
    Language.en: "You will no longer receive e-mail from Innomatch at {email}.",
}


async def _unsubscribe(inbox: Inbox, token: str) -> HTMLResponse:
    done = await inbox.unsubscribe(token)
    if done is None:
        return HTMLResponse("<p>This unsubscribe link is not valid.</p>", status_code=400)
    email, language = done
    text = _UNSUBSCRIBED[language].format(email=email)
    return HTMLResponse(f"<!doctype html><p>{html.escape(text)}</p>")


@router.get(
    "/unsubscribe",
    tags=["e-mail"],
    summary="Turn e-mail alerts off (the link in every alert e-mail)",
    response_class=HTMLResponse,
)
async def unsubscribe(inbox: InboxDep, token: str = Query(max_length=2000)) -> HTMLResponse:
    return await _unsubscribe(inbox, token)


@router.post(
    "/unsubscribe",
    tags=["e-mail"],
    summary="One-click unsubscribe (RFC 8058, List-Unsubscribe-Post)",
    response_class=HTMLResponse,
)
async def unsubscribe_one_click(inbox: InboxDep, token: str = Query(max_length=2000)) -> HTMLResponse:
    return await _unsubscribe(inbox, token)


class DigestRun(BaseModel):
    at: datetime | None = Field(default=None, description="Run as if it were this time (default: now)")


@router.post(
    "/digests/run",
    tags=["operations"],
    summary="Make the digests that are due now (or at `at`)",
    description=(
        "Digests are made by the service on schedule (INNOMATCH_NOTIFIER_DIGEST_TIME, Europe/Stockholm); "
        "this makes the due ones at once. A digest already made for a period is never made again."
    ),
)
async def run_digests(
    _: OperatorDep, request: Request, body: Annotated[DigestRun | None, Body()] = None
) -> dict[str, Any]:
    worker: DeliveryWorker = request.app.state.delivery_worker
    at = body.at if body and body.at else datetime.now(UTC)
    made = await worker.run_digests(at)
    return {"digests": made}
