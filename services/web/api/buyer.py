"""A buyer group's pages: its needs; publishing, changing, co-signing and closing them; each
need's shortlist with explanations, verdicts, consortia and similar needs; a pair's "why";
market dialogues (open, answer; suppliers ask and respond on the same page)."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from services.web import forms, wording
from services.web.api.common import (
    CheckedForm,
    PageError,
    VisitorDep,
    as_lists,
    forum_of,
    fragment,
    lang_of,
    redirect,
    render,
    require,
)
from services.web.api.public import can_see_shortlist, regions
from services.web.api.supplier import cpv_hits
from services.web.client import ApiError
from services.web.handlers import Visitor

router = APIRouter(include_in_schema=False)

_STOCKHOLM = ZoneInfo("Europe/Stockholm")


async def _need(request: Request, visitor: Visitor, need_id: str) -> dict[str, Any]:
    need: dict[str, Any] = await forum_of(request).backend.call(
        "needs", "GET", f"/v1/needs/{need_id}", token=visitor.token
    )
    return need


async def _owned_need(request: Request, visitor: Visitor, need_id: str) -> dict[str, Any]:
    """The need, for one of its groups or an operator; 401/403 for anyone else."""
    require(visitor, visitor.kind in ("buyer_group", "operator"))
    need = await _need(request, visitor, need_id)
    require(visitor, can_see_shortlist(visitor, need))
    return need


@router.get("/group", response_class=HTMLResponse)
async def group_home(request: Request, visitor: VisitorDep) -> HTMLResponse:
    """The group's open needs (its own and those it co-signs), found among the open needs."""
    require(visitor, visitor.is_buyer_group())
    backend = forum_of(request).backend
    group = await backend.call("needs", "GET", f"/v1/buyer-groups/{visitor.id}", token=visitor.token)
    mine: list[dict[str, Any]] = []
    cursor = None
    for _ in range(20):  # at most 2,000 open needs are looked through
        page = await backend.call("needs", "GET", "/v1/needs", params={"limit": 100, "cursor": cursor})
        mine += [
            n
            for n in page["items"]
            if n["buyer_group_id"] == visitor.id or visitor.id in n.get("cosigners", [])
        ]
        cursor = page.get("next_cursor")
        if not cursor:
            break
    return render(request, "group.html", group=group, needs=mine)


def _need_page(request: Request, form: dict[str, list[str]], **context: Any) -> HTMLResponse:
    return render(request, "need_form.html", form=form, regions=regions(), **context)


@router.get("/needs/new", response_class=HTMLResponse)
async def new_need(request: Request, visitor: VisitorDep) -> HTMLResponse:
    require(visitor, visitor.is_buyer_group())
    return _need_page(request, {"min_trl": ["6"]}, errors={}, cpv_hits=None, need=None)


@router.post("/needs/new", response_model=None)
async def publish_need(request: Request, form: CheckedForm, visitor: VisitorDep) -> Response:
    require(visitor, visitor.is_buyer_group())
    values = as_lists(form)
    if forms.one(values, "action") == "search_cpv":
        hits = await cpv_hits(request, forms.one(values, "cpv_query"))
        return _need_page(request, values, errors={}, cpv_hits=hits, need=None)
    try:
        need = await forum_of(request).backend.call(
            "needs",
            "POST",
            f"/v1/buyer-groups/{visitor.id}/needs",
            token=visitor.token,
            body=forms.need_body(values),
        )
    except ApiError as exc:
        if exc.status != 422:
            raise
        errors = forms.field_errors(exc.fields)
        return _need_page(request, values, status=422, errors=errors, cpv_hits=None, need=None)
    return redirect(f"/needs/{need['id']}/shortlist?published=1")


@router.get("/needs/{need_id}/edit", response_class=HTMLResponse)
async def edit_need(request: Request, need_id: str, visitor: VisitorDep) -> HTMLResponse:
    need = await _owned_need(request, visitor, need_id)
    return _need_page(request, forms.need_form(need), errors={}, cpv_hits=None, need=need)


@router.post("/needs/{need_id}/edit", response_model=None)
async def change_need(request: Request, need_id: str, form: CheckedForm, visitor: VisitorDep) -> Response:
    need = await _owned_need(request, visitor, need_id)
    values = as_lists(form)
    if forms.one(values, "action") == "search_cpv":
        hits = await cpv_hits(request, forms.one(values, "cpv_query"))
        return _need_page(request, values, errors={}, cpv_hits=hits, need=need)
    try:
        await forum_of(request).backend.call(
            "needs", "PATCH", f"/v1/needs/{need_id}", token=visitor.token, body=forms.need_body(values)
        )
    except ApiError as exc:
        if exc.status != 422:
            raise
        return _need_page(
            request, values, status=422, errors=forms.field_errors(exc.fields), cpv_hits=None, need=need
        )
    return redirect(f"/needs/{need_id}?changed=1")


@router.get("/needs/{need_id}/close", response_class=HTMLResponse)
async def close_form(request: Request, need_id: str, visitor: VisitorDep) -> HTMLResponse:
    need = await _owned_need(request, visitor, need_id)
    return render(request, "close_need.html", need=need, errors={})


@router.post("/needs/{need_id}/close", response_model=None)
async def close_need(request: Request, need_id: str, form: CheckedForm, visitor: VisitorDep) -> Response:
    need = await _owned_need(request, visitor, need_id)
    reason = forms.one(as_lists(form), "reason")
    try:
        await forum_of(request).backend.call(
            "needs", "POST", f"/v1/needs/{need_id}/close", token=visitor.token, body={"reason": reason}
        )
    except ApiError as exc:
        if exc.status != 422:
            raise
        errors = forms.field_errors(exc.fields) or {"reason": exc.message}
        return render(request, "close_need.html", status=422, need=need, errors=errors)
    return redirect(f"/needs/{need_id}")


@router.post("/needs/{need_id}/cosign", response_model=None)
async def cosign(request: Request, need_id: str, form: CheckedForm, visitor: VisitorDep) -> Response:
    require(visitor, visitor.is_buyer_group())
    await forum_of(request).backend.call("needs", "POST", f"/v1/needs/{need_id}/cosign", token=visitor.token)
    return redirect(f"/needs/{need_id}")


async def _optional(call: Any) -> Any:
    try:
        return await call
    except ApiError:
        return None


def _cards(matches_text: str, lang: wording.Lang) -> dict[str, Any]:
    answer = orjson.loads(matches_text)
    return {
        "need_id": answer["need_id"],
        "matches": [
            {**m, "explained": wording.explain(m["match"]["explanation"], lang)} for m in answer["matches"]
        ],
    }


@router.get("/needs/{need_id}/shortlist", response_class=HTMLResponse)
async def shortlist(request: Request, need_id: str, visitor: VisitorDep) -> HTMLResponse:
    need = await _owned_need(request, visitor, need_id)
    backend = forum_of(request).backend
    lang = lang_of(request)
    token = visitor.token
    # One after another, not gathered: kept answers come back without waiting, while tasks
    # would queue the page behind every other request the forum is serving.
    matches_text = await backend.read(
        "matcher", f"/v1/needs/{need_id}/matches", token=token, params={"limit": 50}
    )
    consortia_text = await _optional(backend.read("matcher", f"/v1/needs/{need_id}/consortia", token=token))
    similar_text = await _optional(backend.read("needs", f"/v1/needs/{need_id}/similar", token=token))
    # What every viewer of the need sees alike is rendered once per answer (common.fragment).
    cards = fragment("match_cards.html", lang, matches_text, lambda: _cards(matches_text, lang))
    consortia = fragment("consortia.html", lang, consortia_text or "", lambda: _consortia(consortia_text))
    similar = fragment("similar_needs.html", lang, similar_text or "", lambda: _similar(similar_text))
    return render(
        request,
        "shortlist.html",
        need=need,
        cards=cards,
        consortia=consortia,
        similar=similar,
        published=request.query_params.get("published") == "1",
    )


def _consortia(text: str | None) -> dict[str, Any]:
    return {"consortia": orjson.loads(text).get("consortia", []) if text else []}


def _similar(text: str | None) -> dict[str, Any]:
    similar = orjson.loads(text) if text else []
    return {"similar": similar.get("items", similar) if isinstance(similar, dict) else similar}


@router.get("/needs/{need_id}/why", response_model=None)
async def why_not_lookup(request: Request, need_id: str, visitor: VisitorDep) -> Response:
    """The shortlist's "why not" form: the pair page of the supplier the group expected."""
    supplier_id = request.query_params.get("supplier_id", "").strip()
    if not supplier_id:
        return redirect(f"/needs/{need_id}/shortlist")
    return redirect(f"/needs/{need_id}/matches/{quote(supplier_id, safe='')}")


@router.get("/needs/{need_id}/matches/{supplier_id}", response_class=HTMLResponse)
async def pair(request: Request, need_id: str, supplier_id: str, visitor: VisitorDep) -> HTMLResponse:
    """Why a supplier does or does not match a need: for the need's groups, operators and the
    supplier itself."""
    require(visitor, visitor.kind in ("buyer_group", "operator") or visitor.is_supplier(supplier_id))
    backend = forum_of(request).backend
    lang = lang_of(request)
    need = await _need(request, visitor, need_id)
    if visitor.kind == "buyer_group":
        require(visitor, can_see_shortlist(visitor, need))
    verdict = await backend.call(
        "matcher", "GET", f"/v1/needs/{need_id}/matches/{supplier_id}", token=visitor.token
    )
    supplier = await _optional(backend.as_operator("suppliers", "GET", f"/v1/suppliers/{supplier_id}"))
    return render(
        request,
        "pair.html",
        need=need,
        supplier=supplier,
        supplier_id=supplier_id,
        verdict=verdict,
        explained=wording.explain(verdict["explanation"], lang),
        why_not=wording.why_not_sentence(verdict.get("why_not"), lang),
        can_judge=can_see_shortlist(visitor, need) and not visitor.is_operator,
    )


@router.post("/needs/{need_id}/matches/{supplier_id}/verdict", response_model=None)
async def judge(
    request: Request, need_id: str, supplier_id: str, form: CheckedForm, visitor: VisitorDep
) -> Response:
    await _owned_need(request, visitor, need_id)
    values = as_lists(form)
    body = {"verdict": forms.one(values, "verdict"), "reason": forms.one(values, "reason") or None}
    try:
        await forum_of(request).backend.call(
            "matcher",
            "POST",
            f"/v1/needs/{need_id}/matches/{supplier_id}/feedback",
            token=visitor.token,
            body=body,
        )
    except ApiError as exc:
        if exc.status != 422:
            raise
        raise PageError(422, "Välj en bedömning i listan.", "Choose a verdict from the list.") from exc
    return redirect(f"/needs/{need_id}/shortlist#s-{supplier_id}")


@router.get("/needs/{need_id}/dialogues/new", response_class=HTMLResponse)
async def new_dialogue(request: Request, need_id: str, visitor: VisitorDep) -> HTMLResponse:
    need = await _owned_need(request, visitor, need_id)
    return render(request, "dialogue_form.html", need=need, form={"shortlist_top": ["5"]}, errors={})


def _closes_at(text: str) -> str:
    """A datetime-local value, read in Swedish time, as ISO 8601 with its offset."""
    try:
        return datetime.fromisoformat(text).replace(tzinfo=_STOCKHOLM).isoformat()
    except ValueError:
        return text


@router.post("/needs/{need_id}/dialogues/new", response_model=None)
async def open_dialogue(request: Request, need_id: str, form: CheckedForm, visitor: VisitorDep) -> Response:
    need = await _owned_need(request, visitor, need_id)
    values = as_lists(form)
    body: dict[str, Any] = {
        "title": forms.one(values, "title"),
        "agenda": forms.one(values, "agenda"),
        "closes_at": _closes_at(forms.one(values, "closes_at")) or None,
        "open": forms.one(values, "open") == "on",
    }
    top = forms.number(forms.one(values, "shortlist_top"))
    if top is not None:
        body["invitees"] = {"shortlist_top": top}
    try:
        dialogue = await forum_of(request).backend.call(
            "needs", "POST", f"/v1/needs/{need_id}/dialogues", token=visitor.token, body=body
        )
    except ApiError as exc:
        if exc.status not in (409, 422):
            raise
        errors = forms.field_errors(exc.fields) if exc.fields else {"shortlist_top": exc.message}
        return render(request, "dialogue_form.html", status=422, need=need, form=values, errors=errors)
    return redirect(f"/dialogues/{dialogue['id']}")


@router.get("/dialogues/{dialogue_id}", response_class=HTMLResponse)
async def dialogue_page(request: Request, dialogue_id: str, visitor: VisitorDep) -> HTMLResponse:
    backend = forum_of(request).backend
    dialogue = await backend.call("needs", "GET", f"/v1/dialogues/{dialogue_id}", token=visitor.token)
    questions = await backend.call(
        "needs", "GET", f"/v1/dialogues/{dialogue_id}/questions", token=visitor.token
    )
    is_group = visitor.kind == "buyer_group" and any(g["id"] == visitor.id for g in dialogue["buyer_groups"])
    me = next((s for s in dialogue["suppliers"] if visitor.is_supplier(s["supplier_id"])), None)
    return render(
        request,
        "dialogue.html",
        dialogue=dialogue,
        questions=questions,
        is_group=is_group,
        me=me,
        may_take_part=visitor.is_supplier() and (me is not None or dialogue["open"]),
        errors={},
    )


@router.post("/dialogues/{dialogue_id}/questions", response_model=None)
async def ask(request: Request, dialogue_id: str, form: CheckedForm, visitor: VisitorDep) -> Response:
    require(visitor, visitor.is_supplier())
    body = {"question": forms.one(as_lists(form), "question")}
    await _dialogue_call(request, visitor, f"/v1/dialogues/{dialogue_id}/questions", body)
    return redirect(f"/dialogues/{dialogue_id}?asked=1")


@router.post("/dialogues/{dialogue_id}/questions/{question_id}/answer", response_model=None)
async def answer(
    request: Request, dialogue_id: str, question_id: str, form: CheckedForm, visitor: VisitorDep
) -> Response:
    require(visitor, visitor.is_buyer_group())
    body = {"answer": forms.one(as_lists(form), "answer")}
    await _dialogue_call(
        request, visitor, f"/v1/dialogues/{dialogue_id}/questions/{question_id}/answer", body
    )
    return redirect(f"/dialogues/{dialogue_id}#q-{question_id}")


@router.post("/dialogues/{dialogue_id}/responses", response_model=None)
async def respond(request: Request, dialogue_id: str, form: CheckedForm, visitor: VisitorDep) -> Response:
    require(visitor, visitor.is_supplier())
    values = as_lists(form)
    body: dict[str, Any] = {"response": forms.one(values, "response")}
    if body["response"] == "input":
        body["text"] = forms.one(values, "text")
    await _dialogue_call(request, visitor, f"/v1/dialogues/{dialogue_id}/responses", body)
    return redirect(f"/dialogues/{dialogue_id}?responded=1")


async def _dialogue_call(request: Request, visitor: Visitor, path: str, body: dict[str, Any]) -> None:
    try:
        await forum_of(request).backend.call("needs", "POST", path, token=visitor.token, body=body)
    except ApiError as exc:
        if exc.status != 422:
            raise
        reasons = "; ".join(exc.fields.values()) or exc.message
        raise PageError(
            422, f"Det gick inte att skicka: {reasons}", f"That could not be sent: {reasons}"
        ) from exc
