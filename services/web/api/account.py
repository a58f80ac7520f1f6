"""Signing in and out: a one-time link by e-mail for suppliers and buyer groups, the operator
token for operators; the dev-only outbox page."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from services.web.api.common import (
    CheckedForm,
    PageError,
    VisitorDep,
    forum_of,
    lang_of,
    new_session,
    redirect,
    render,
    session_id,
)

router = APIRouter(include_in_schema=False)


def _safe_next(target: str | None) -> str:
    """Only a path on this site (no //host, no scheme) is followed after sign-in."""
    if target and target.startswith("/") and not target.startswith("//") and "\\" not in target:
        return target
    return "/"


def home_of(kind: str) -> str:
    return {"supplier": "/matches", "buyer_group": "/group", "operator": "/operator"}.get(kind, "/")


@router.get("/sign-in", response_class=HTMLResponse)
async def sign_in_page(request: Request, visitor: VisitorDep) -> HTMLResponse:
    q = request.query_params
    next_path = _safe_next(q.get("next"))
    # A shortlist is a buyer group's page: its link in an alert e-mail is for the group.
    default_kind = "buyer_group" if next_path.endswith("/shortlist") or next_path == "/group" else "supplier"
    return render(
        request,
        "sign_in.html",
        next=next_path,
        kind=q.get("kind", default_kind),
        ident=q.get("id", ""),
        errors={},
        sent=False,
    )


@router.post("/sign-in", response_class=HTMLResponse)
async def ask_for_link(request: Request, form: CheckedForm, visitor: VisitorDep) -> HTMLResponse:
    kind = str(form.get("kind") or "")
    ident = str(form.get("id") or "").strip()
    email = str(form.get("email") or "").strip()
    errors: dict[str, str] = {}
    lang = lang_of(request)
    if kind not in ("supplier", "buyer_group"):
        errors["kind"] = "Välj vem du loggar in som." if lang == "sv" else "Choose who you sign in as."
    if not ident:
        errors["id"] = "Fyll i ert id." if lang == "sv" else "Fill in your id."
    if "@" not in email:
        errors["email"] = "Fyll i en e-postadress." if lang == "sv" else "Fill in an e-mail address."
    next_path = _safe_next(str(form.get("next") or "/"))
    if not errors:
        await forum_of(request).send_link(kind, ident, email, str(request.base_url), lang, next_path)
    return render(
        request,
        "sign_in.html",
        status=422 if errors else 200,
        next=next_path,
        kind=kind,
        ident=ident,
        email=email,
        errors=errors,
        sent=not errors,
    )


@router.get("/sign-in/{token}", response_class=HTMLResponse)
async def confirm_link(request: Request, token: str, visitor: VisitorDep) -> HTMLResponse:
    """A page with a button: mail scanners that follow links do not use up the link."""
    usable = await forum_of(request).link_usable(token)
    next_path = _safe_next(request.query_params.get("next"))
    return render(
        request,
        "sign_in_link.html",
        status=200 if usable else 410,
        token=token,
        usable=usable,
        next=next_path,
    )


@router.post("/sign-in/{token}", response_model=None)
async def use_link(request: Request, token: str, form: CheckedForm, visitor: VisitorDep) -> Response:
    signed = await forum_of(request).use_link(token, new_session(request))
    if signed is None:
        return render(request, "sign_in_link.html", status=410, token=token, usable=False, next="/")
    next_path = _safe_next(request.query_params.get("next"))
    return redirect(next_path if next_path != "/" else home_of(signed.kind))


@router.post("/sign-in-operator", response_model=None)
async def operator_sign_in(request: Request, form: CheckedForm, visitor: VisitorDep) -> Response:
    given = str(form.get("operator_token") or "")
    forum = forum_of(request)
    old = session_id(request)
    if given and await forum.operator_sign_in(given, new_session(request)):
        await forum.sign_out(old)
        return redirect("/operator")
    request.state.sid = old
    request.state.set_sid = False
    lang = lang_of(request)
    return render(
        request,
        "sign_in.html",
        status=422,
        next="/",
        kind="supplier",
        ident="",
        errors={"operator_token": "Fel nyckel." if lang == "sv" else "Wrong token."},
        sent=False,
    )


@router.post("/sign-out", response_model=None)
async def sign_out(request: Request, form: CheckedForm) -> Response:
    await forum_of(request).sign_out(session_id(request))
    new_session(request)
    return redirect("/")


@router.get("/dev/mail", response_class=HTMLResponse)
async def dev_outbox(request: Request, visitor: VisitorDep) -> HTMLResponse:
    """Development only: the mails the forum sent, newest first (sign-in links)."""
    if not request.app.state.dev_mode:
        raise PageError(404, "Sidan finns inte.", "There is no such page.")
    return render(request, "dev_mail.html", mails=await forum_of(request).dev_mails())
