"""A supplier's pages: registration, its profile and erasure, its matches, inbox and dialogues."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from services.web import forms, wording
from services.web.api.common import (
    CheckedForm,
    VisitorDep,
    as_lists,
    forum_of,
    lang_of,
    new_session,
    redirect,
    render,
    require,
    session_id,
)
from services.web.api.public import regions
from services.web.client import ApiError

router = APIRouter(include_in_schema=False)


async def cpv_hits(request: Request, query: str) -> list[dict[str, Any]] | None:
    """The CPV search's hits for the picker (None when nothing was searched)."""
    if not query.strip():
        return None
    try:
        hits: list[dict[str, Any]] = await forum_of(request).backend.call(
            "suppliers", "GET", "/v1/cpv", params={"q": query.strip()[:100], "lang": lang_of(request)}
        )
    except ApiError:
        return []
    return hits[:20]


def _form_page(request: Request, template: str, form: dict[str, list[str]], **context: Any) -> HTMLResponse:
    return render(request, template, form=form, regions=regions(), **context)


@router.get("/suppliers/new", response_class=HTMLResponse)
async def registration_form(request: Request, visitor: VisitorDep) -> HTMLResponse:
    form: dict[str, list[str]] = {
        "alert_language": [str(lang_of(request))],
        "alert_mode": ["instant"],
        "trl": ["6"],
    }
    return _form_page(request, "supplier_form.html", form, errors={}, cpv_hits=None, registering=True)


@router.post("/suppliers/new", response_model=None)
async def register(request: Request, form: CheckedForm, visitor: VisitorDep) -> Response:
    values = as_lists(form)
    if forms.one(values, "action") == "search_cpv":
        hits = await cpv_hits(request, forms.one(values, "cpv_query"))
        return _form_page(request, "supplier_form.html", values, errors={}, cpv_hits=hits, registering=True)
    body = forms.supplier_body(values, registering=True)
    old = session_id(request)
    try:
        created = await forum_of(request).register_supplier(body, new_session(request))
    except ApiError as exc:
        request.state.sid, request.state.set_sid = old, False
        if exc.status not in (409, 422, 429):
            raise
        # 409: the organisation number is registered already; 429: too many registrations.
        field = "org_number" if exc.status == 409 else "form"
        errors = forms.field_errors(exc.fields) if exc.fields else {field: exc.message}
        return _form_page(
            request, "supplier_form.html", values, status=422, errors=errors, cpv_hits=None, registering=True
        )
    return redirect(f"/matches?welcome={created['id']}")


async def _own_supplier(request: Request, visitor: Any) -> dict[str, Any]:
    require(visitor, visitor.is_supplier())
    supplier: dict[str, Any] = await forum_of(request).backend.call(
        "suppliers", "GET", f"/v1/suppliers/{visitor.id}", token=visitor.token
    )
    return supplier


@router.get("/profile", response_class=HTMLResponse)
async def profile(request: Request, visitor: VisitorDep) -> HTMLResponse:
    supplier = await _own_supplier(request, visitor)
    saved = request.query_params.get("saved") == "1"
    return _form_page(
        request,
        "supplier_form.html",
        forms.supplier_form(supplier),
        errors={},
        cpv_hits=None,
        registering=False,
        supplier=supplier,
        saved=saved,
    )


@router.post("/profile", response_model=None)
async def change_profile(request: Request, form: CheckedForm, visitor: VisitorDep) -> Response:
    supplier = await _own_supplier(request, visitor)
    values = as_lists(form)
    values["org_number"] = [str(supplier["org_number"])]
    if forms.one(values, "action") == "search_cpv":
        hits = await cpv_hits(request, forms.one(values, "cpv_query"))
        return _form_page(
            request,
            "supplier_form.html",
            values,
            errors={},
            cpv_hits=hits,
            registering=False,
            supplier=supplier,
        )
    try:
        await forum_of(request).backend.call(
            "suppliers",
            "PATCH",
            f"/v1/suppliers/{visitor.id}",
            token=visitor.token,
            body=forms.supplier_body(values, registering=False),
        )
    except ApiError as exc:
        if exc.status != 422:
            raise
        return _form_page(
            request,
            "supplier_form.html",
            values,
            status=422,
            errors=forms.field_errors(exc.fields),
            cpv_hits=None,
            registering=False,
            supplier=supplier,
        )
    return redirect("/profile?saved=1")


@router.get("/profile/erase", response_class=HTMLResponse)
async def erase_confirm(request: Request, visitor: VisitorDep) -> HTMLResponse:
    supplier = await _own_supplier(request, visitor)
    return render(request, "erase.html", supplier=supplier, errors={})


@router.post("/profile/erase", response_model=None)
async def erase(request: Request, form: CheckedForm, visitor: VisitorDep) -> Response:
    supplier = await _own_supplier(request, visitor)
    if forms.one(as_lists(form), "confirm_name") != supplier["name"]:
        lang = lang_of(request)
        reason = "Skriv företagets namn exakt." if lang == "sv" else "Type the company's name exactly."
        return render(request, "erase.html", status=422, supplier=supplier, errors={"confirm_name": reason})
    forum = forum_of(request)
    await forum.backend.call("suppliers", "DELETE", f"/v1/suppliers/{visitor.id}", token=visitor.token)
    await forum.sign_out(session_id(request))
    new_session(request)
    return redirect("/?erased=1")


@router.get("/matches", response_class=HTMLResponse)
async def my_matches(request: Request, visitor: VisitorDep) -> HTMLResponse:
    require(visitor, visitor.is_supplier())
    result = await forum_of(request).backend.call(
        "matcher", "GET", f"/v1/suppliers/{visitor.id}/matches", token=visitor.token, params={"limit": 50}
    )
    lang = lang_of(request)
    matches = [
        {**m, "explained": wording.explain(m["match"]["explanation"], lang)}
        for m in result.get("matches", [])
    ]
    welcome = request.query_params.get("welcome") == visitor.id
    return render(request, "my_matches.html", matches=matches, welcome=welcome)


@router.get("/inbox", response_class=HTMLResponse)
async def inbox(request: Request, visitor: VisitorDep) -> HTMLResponse:
    require(visitor, visitor.kind in ("supplier", "buyer_group"))
    backend = forum_of(request).backend
    alerts = await backend.call("notifier", "GET", "/v1/inbox", token=visitor.token, params={"limit": 50})
    notices = await backend.call(
        "notifier", "GET", "/v1/inbox/dialogues", token=visitor.token, params={"limit": 50}
    )
    return render(request, "inbox.html", alerts=alerts, notices=notices)


@router.post("/inbox/{alert_id}/read", response_model=None)
async def mark_read(request: Request, alert_id: str, form: CheckedForm, visitor: VisitorDep) -> Response:
    require(visitor, visitor.kind in ("supplier", "buyer_group"))
    await forum_of(request).backend.call(
        "notifier", "POST", f"/v1/inbox/{alert_id}/read", token=visitor.token
    )
    return redirect("/inbox")


@router.get("/dialogues", response_class=HTMLResponse)
async def my_dialogues(request: Request, visitor: VisitorDep) -> HTMLResponse:
    """The dialogues the visitor takes part in, as its dialogue notices name them."""
    require(visitor, visitor.kind in ("supplier", "buyer_group"))
    notices = await forum_of(request).backend.call(
        "notifier", "GET", "/v1/inbox/dialogues", token=visitor.token, params={"limit": 200}
    )
    seen: dict[str, dict[str, Any]] = {}
    for notice in notices:
        seen.setdefault(notice["dialogue"]["id"], notice["dialogue"])
    return render(request, "dialogues.html", dialogues=list(seen.values()))
