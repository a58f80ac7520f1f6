"""Pages anyone may see: the open needs with search and filters, a need, a supplier's public
profile, and the CPV search the forms use."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, JSONResponse

from services.contracts.nuts import all_nuts
from services.web.api.common import VisitorDep, forum_of, fragment, lang_of, render
from services.web.client import ApiError
from services.web.handlers import Visitor

router = APIRouter(include_in_schema=False)

FILTERS = ("q", "focus_area", "cpv", "region", "procedure")


def regions() -> list[tuple[str, str, int]]:
    """(code, name, level) of every Swedish NUTS region, for selects and check boxes."""
    return [(r.code, r.name, r.level) for r in all_nuts()]


@router.get("/", response_class=HTMLResponse)
async def needs_list(request: Request, visitor: VisitorDep) -> HTMLResponse:
    query = {k: request.query_params.get(k, "").strip() for k in FILTERS}
    cursor = request.query_params.get("cursor") or None
    errors: dict[str, str] = {}
    page_text = '{"items": [], "next_cursor": null}'
    try:
        page_text = await forum_of(request).backend.read(
            "needs", "/v1/needs", params={**query, "cursor": cursor, "limit": 20}
        )
    except ApiError as exc:
        if exc.status != 422:
            raise
        errors = {k.split(".")[-1]: v for k, v in exc.fields.items()}
    page = orjson.loads(page_text)
    lang = lang_of(request)
    next_query = {**{k: v for k, v in query.items() if v}, "cursor": page.get("next_cursor")}
    # The list and the region choices are the same for every visitor: rendered once per answer.
    need_cards = fragment("need_cards.html", lang, page_text, lambda: {"needs": page.get("items", [])})
    region_options = fragment(
        "region_options.html",
        lang,
        query["region"],
        lambda: {"regions": regions(), "selected": query["region"]},
    )
    return render(
        request,
        "needs.html",
        need_cards=need_cards,
        region_options=region_options,
        next_cursor=page.get("next_cursor"),
        next_query=next_query,
        query=query,
        errors=errors,
        filtered=any(query.values()),
    )


async def _group_texts(request: Request, need: dict[str, Any]) -> list[str]:
    """The need's owning group, then its co-signers, as the needs service answers (public
    facts of a published need, read as operator since the groups route is not public); ""
    for a group that cannot be read."""
    backend = forum_of(request).backend
    texts = []
    # One after another: kept answers come back without waiting (see buyer.shortlist).
    for group_id in [need["buyer_group_id"], *need.get("cosigners", [])]:
        try:
            texts.append(
                await backend.read("needs", f"/v1/buyer-groups/{group_id}", token=backend.operator_token)
            )
        except ApiError:
            texts.append("")
    return texts


def _need_body(need: dict[str, Any], group_texts: list[str], dialogues_text: str) -> dict[str, Any]:
    ids = [need["buyer_group_id"], *need.get("cosigners", [])]
    groups = []
    for group_id, text in zip(ids, group_texts, strict=True):
        group = orjson.loads(text) if text else {}
        groups.append({"id": group_id, "name": group.get("name"), "members": group.get("members", [])})
    dialogues = orjson.loads(dialogues_text) if dialogues_text else []
    return {"need": need, "groups": groups, "dialogues": [d for d in dialogues if d.get("status") == "open"]}


def can_see_shortlist(visitor: Visitor, need: dict[str, Any]) -> bool:
    return visitor.is_operator or (
        visitor.kind == "buyer_group"
        and (visitor.id == need.get("buyer_group_id") or visitor.id in need.get("cosigners", []))
    )


@router.get("/needs/{need_id}", response_class=HTMLResponse)
async def need_page(request: Request, need_id: str, visitor: VisitorDep) -> HTMLResponse:
    backend = forum_of(request).backend
    need_text = await backend.read("needs", f"/v1/needs/{need_id}", token=visitor.token)
    need = orjson.loads(need_text)
    group_texts = await _group_texts(request, need)
    try:
        dialogues_text = await backend.read("needs", f"/v1/needs/{need_id}/dialogues", token=visitor.token)
    except ApiError:
        dialogues_text = ""  # a needs service without the list: the page shows no dialogue
    # The need, its groups and its open dialogues read the same for every visitor who gets
    # the same answers: rendered once per answers (common.fragment).
    key = "\x00".join([need_text, dialogues_text, *group_texts])
    body = fragment(
        "need_body.html", lang_of(request), key, lambda: _need_body(need, group_texts, dialogues_text)
    )
    return render(request, "need.html", need=need, body=body, owner=can_see_shortlist(visitor, need))


@router.get("/suppliers/{supplier_id}", response_class=HTMLResponse)
async def supplier_page(request: Request, supplier_id: str, visitor: VisitorDep) -> HTMLResponse:
    """A supplier's public profile: what it offers, not its alert settings. The contact
    address is shown to signed-in buyer groups, operators and the supplier itself."""
    supplier = await forum_of(request).backend.as_operator("suppliers", "GET", f"/v1/suppliers/{supplier_id}")
    return render(
        request,
        "supplier.html",
        supplier=supplier,
        own=visitor.is_supplier(supplier_id),
        show_contact=visitor.is_operator or visitor.is_buyer_group() or visitor.is_supplier(supplier_id),
    )


@router.get("/cpv/search")
async def cpv_search(request: Request) -> JSONResponse:
    """CPV codes by words (the suppliers service's search), for the forms' picker."""
    q = request.query_params.get("q", "").strip()[:100]
    if not q:
        return JSONResponse([])
    try:
        hits = await forum_of(request).backend.call(
            "suppliers", "GET", "/v1/cpv", params={"q": q, "lang": lang_of(request)}
        )
    except ApiError as exc:
        return JSONResponse({"error": exc.message}, status_code=422 if exc.status == 422 else 502)
    return JSONResponse(hits[:20])
