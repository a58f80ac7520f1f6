"""What every page shares: the visitor, the language, the CSRF check, rendering and errors.

Cookies: `innomatch_sid` (a random session id, set on the first visit, HttpOnly,
SameSite=Lax, Secure in production; a new one at every sign-in and sign-out) and
`innomatch_lang` (sv or en, set by `?lang=`). Every POST carries `csrf_token`, an HMAC of
the session id (services/web/security.py); a POST without a valid one gets 403 and does
nothing.
"""

from __future__ import annotations

from collections.abc import Callable
from importlib.resources import files
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import quote, urlencode

import jinja2
from fastapi import Depends, Request, Response
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from markupsafe import Markup
from starlette.datastructures import FormData, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.web import security, wording
from services.web.client import ApiError
from services.web.handlers import Forum, Visitor
from services.web.wording import Lang

SESSION_COOKIE = "innomatch_sid"
LANG_COOKIE = "innomatch_lang"


class _PageEnvironment(jinja2.Environment):
    """Jinja with `x.name` read as `x["name"]` first when `x` is a dict: the pages show the
    services' JSON, and Jinja's own order (the attribute first, then the item) raises and
    catches an AttributeError for every field it shows. A dict's methods (`errors.items()`)
    still work unless the dict has a key of that name."""

    def getattr(self, obj: Any, attribute: str) -> Any:
        if type(obj) is dict:
            try:
                return obj[attribute]
            except KeyError:
                pass
        return super().getattr(obj, attribute)


templates = Jinja2Templates(
    env=_PageEnvironment(
        loader=jinja2.FileSystemLoader(Path(str(files("services.web").joinpath("templates")))),
        autoescape=True,
        auto_reload=False,  # the templates ship with the code: no stat() of each at every render
    )
)
templates.env.globals.update(
    label=wording.label,
    choices=wording.choices,
    region_name=wording.region_name,
    region_names=wording.region_names,
    cpv_text=wording.cpv_text,
)


class CsrfRefused(Exception):
    """A POST without the CSRF token of the visitor's session."""


class PageError(Exception):
    """A page that cannot be shown: status and the words for it."""

    def __init__(self, status: int, sv: str, en: str) -> None:
        super().__init__(en)
        self.status, self.sv, self.en = status, sv, en


def forum_of(request: Request) -> Forum:
    forum: Forum = request.app.state.forum
    return forum


def lang_of(request: Request) -> Lang:
    lang: Lang = request.state.lang
    return lang


def session_id(request: Request) -> str:
    sid: str = request.state.sid
    return sid


def new_session(request: Request) -> str:
    """A fresh session id for this visitor (sign-in, sign-out): the cookie changes with the response."""
    sid = security.new_secret()
    request.state.sid = sid
    request.state.set_sid = True
    return sid


async def _visitor(request: Request) -> Visitor:
    visitor: Visitor | None = getattr(request.state, "visitor", None)
    if visitor is None:
        visitor = await forum_of(request).visitor(session_id(request))
        request.state.visitor = visitor
    return visitor


VisitorDep = Annotated[Visitor, Depends(_visitor)]


def csrf_key(request: Request) -> str:
    key: str = request.app.state.csrf_key
    return key


async def _checked_form(request: Request) -> FormData:
    form = await request.form()
    token = form.get("csrf_token")
    if not security.csrf_valid(
        csrf_key(request), session_id(request), token if isinstance(token, str) else None
    ):
        raise CsrfRefused
    return form


CheckedForm = Annotated[FormData, Depends(_checked_form)]


def as_lists(form: FormData) -> dict[str, list[str]]:
    return {key: [v for v in form.getlist(key) if isinstance(v, str)] for key in form}


def render(request: Request, template: str, status: int = 200, **context: Any) -> HTMLResponse:
    lang = lang_of(request)

    def t(sv: str, en: str) -> str:
        return sv if lang == "sv" else en

    errors = context.get("errors")
    if isinstance(errors, dict):  # the services' reasons in the page's language
        context["errors"] = {name: wording.reason(str(text), lang) for name, text in errors.items()}
    other = "en" if lang == "sv" else "sv"
    query = dict(request.query_params)
    query["lang"] = other
    response = templates.TemplateResponse(
        request,
        template,
        {
            "lang": lang,
            "t": t,
            "visitor": getattr(request.state, "visitor", None) or Visitor(),
            "csrf_token": security.csrf_token(csrf_key(request), session_id(request)),
            "other_lang": other,
            "other_lang_url": f"{request.url.path}?{urlencode(query)}",
            "path": request.url.path,
            "dev_mode": request.app.state.dev_mode,
            **context,
        },
        status_code=status,
    )
    return response


_FRAGMENTS: dict[tuple[str, str, str], Markup] = {}
_FRAGMENTS_KEPT = 500


def fragment(template: str, lang: Lang, key: str, context: Callable[[], dict[str, Any]]) -> Markup:
    """A piece of a page that depends on `lang` and on `key` alone (a service's answer as
    text, say), rendered once and kept: every viewer of a shortlist sees the same explained
    cards, and rendering them is most of the page's cost. `context()` makes what the
    template shows from what `key` says; it is called only when the piece is not kept."""
    kept = _FRAGMENTS.get((template, lang, key))
    if kept is not None:
        return kept

    def t(sv: str, en: str) -> str:
        return sv if lang == "sv" else en

    # The template escapes what it shows (autoescape), so its output is markup as it stands.
    rendered = Markup(templates.get_template(template).render(lang=lang, t=t, **context()))  # noqa: S704
    if len(_FRAGMENTS) >= _FRAGMENTS_KEPT:
        _FRAGMENTS.clear()
    _FRAGMENTS[(template, lang, key)] = rendered
    return rendered


def redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def sign_in_url(request: Request) -> str:
    return f"/sign-in?next={quote(request.url.path)}"


def require(visitor: Visitor, allowed: bool) -> None:
    """403 unless `allowed`; the caller checks who may see the page before asking the services."""
    if not visitor.signed_in:
        raise PageError(401, "Logga in för att se sidan.", "Sign in to see this page.")
    if not allowed:
        raise PageError(403, "Du har inte behörighet till den här sidan.", "You may not see this page.")


async def page_error(request: Request, exc: Exception) -> Response:
    if isinstance(exc, CsrfRefused):
        status, sv, en = (
            403,
            "Formuläret saknade sin säkerhetskod (CSRF). Ladda om sidan och försök igen.",
            "The form lacked its security code (CSRF). Reload the page and try again.",
        )
    elif isinstance(exc, PageError):
        status, sv, en = exc.status, exc.sv, exc.en
    elif isinstance(exc, ApiError):
        status = (
            404 if exc.status == 422 else exc.status if exc.status in (401, 403, 404, 409, 410, 503) else 502
        )
        sv, en = {
            401: ("Logga in för att se sidan.", "Sign in to see this page."),
            403: ("Du har inte behörighet till den här sidan.", "You may not see this page."),
            404: ("Sidan eller uppgiften finns inte.", "There is no such page or record."),
            409: (f"Det gick inte: {exc.message}", f"That could not be done: {exc.message}"),
            410: ("Uppgiften är borttagen.", "The record has been removed."),
            503: ("Tjänsten svarar inte just nu. Försök igen om en stund.", "The service does not answer."),
        }.get(status, ("Något gick fel hos en tjänst.", "A service failed."))
    else:
        status, sv, en = 404, "Sidan finns inte.", "There is no such page."
        code = getattr(exc, "status_code", 404)
        if code == 405:
            status, sv, en = 405, "Metoden är inte tillåten här.", "The method is not allowed here."
    if status == 401:
        return redirect(sign_in_url(request))
    try:
        await _visitor(request)
    except Exception:  # the database is away: show the error without the visitor's menu
        request.state.visitor = Visitor()
    return render(request, "error.html", status=status, message_sv=sv, message_en=en)


async def unexpected_error(request: Request, exc: Exception) -> Response:
    request.state.visitor = getattr(request.state, "visitor", None) or Visitor()
    return render(
        request,
        "error.html",
        status=500,
        message_sv="Något gick fel. Försök igen om en stund.",
        message_en="Something went wrong. Try again in a moment.",
    )


_SECURITY_HEADERS = {
    "content-security-policy": "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; "
    "form-action 'self'; base-uri 'none'",
    "x-content-type-options": "nosniff",
    "referrer-policy": "same-origin",
    "x-frame-options": "DENY",
}
_NO_SESSION_PATHS = ("/static/", "/healthz", "/readyz", "/metrics")


class ForumCookies:
    """ASGI middleware: the visitor's session id and language from the cookies into
    `request.state` (`sid`, `set_sid`, `lang`), the cookies back on the response when they are
    new or changed, and the pages' security headers. Plain ASGI rather than Starlette's
    BaseHTTPMiddleware, which runs every request in a task of its own."""

    def __init__(self, app: ASGIApp, secure: bool, session_hours: float) -> None:
        self.app = app
        self.secure = secure
        self.session_max_age = int(session_hours * 3600)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        sid = request.cookies.get(SESSION_COOKIE, "")
        state = request.state
        state.set_sid = not security.looks_like_secret(sid)
        state.sid = security.new_secret() if state.set_sid else sid
        asked = request.query_params.get("lang")
        cookie_lang = request.cookies.get(LANG_COOKIE)
        state.lang = asked if asked in ("sv", "en") else cookie_lang if cookie_lang in ("sv", "en") else "sv"
        path: str = scope["path"]

        async def send_with_cookies(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                cookies = Response()
                if state.set_sid and not path.startswith(_NO_SESSION_PATHS):
                    cookies.set_cookie(
                        SESSION_COOKIE,
                        state.sid,
                        max_age=self.session_max_age,
                        httponly=True,
                        samesite="lax",
                        secure=self.secure,
                        path="/",
                    )
                if asked in ("sv", "en") and asked != cookie_lang:
                    cookies.set_cookie(
                        LANG_COOKIE,
                        asked,
                        max_age=365 * 86400,
                        httponly=True,
                        samesite="lax",
                        secure=self.secure,
                    )
                for name, value in cookies.raw_headers:
                    if name == b"set-cookie":
                        headers.append("set-cookie", value.decode("latin-1"))
                # FastAPI's /docs and /redoc load their script from a CDN: no policy there.
                if not path.startswith(("/docs", "/redoc")):
                    for header, text in _SECURITY_HEADERS.items():
                        headers.setdefault(header, text)
                    if headers.get("content-type", "").startswith("text/html"):
                        headers.setdefault("cache-control", "no-store")
            await send(message)

        await self.app(scope, receive, send_with_cookies)
