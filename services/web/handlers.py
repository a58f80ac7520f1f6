"""The forum's use cases: who is visiting, signing in by link or operator token, signing out,
and registering a supplier (which signs it in at once).

A visitor is known by the session id in its cookie; the session row, found by the id's digest,
holds the principal and the API token the forum calls the services with on its behalf.
"""

from __future__ import annotations

import hmac
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlencode

import asyncpg

from services.infra.logs import get_logger
from services.infra.settings import Settings
from services.web import security
from services.web.client import ApiError, Backend
from services.web.mail import Mailer
from services.web.read_cache import ReadCache
from services.web.repository import SentMail, WebRepository
from services.web.wording import Lang

log = get_logger(__name__)

Kind = Literal["anonymous", "operator", "supplier", "buyer_group"]


@dataclass(frozen=True)
class Visitor:
    kind: Kind = "anonymous"
    id: str | None = None
    token: str | None = None  # the API token; never rendered

    @property
    def signed_in(self) -> bool:
        return self.kind != "anonymous"

    @property
    def is_operator(self) -> bool:
        return self.kind == "operator"

    def is_supplier(self, supplier_id: str | None = None) -> bool:
        return self.kind == "supplier" and (supplier_id is None or self.id == supplier_id)

    def is_buyer_group(self, group_id: str | None = None) -> bool:
        return self.kind == "buyer_group" and (group_id is None or self.id == group_id)


ANONYMOUS = Visitor()
SESSION_KEEP_S = 2.0


def _visitor(principal: str, token: str) -> Visitor:
    if principal == "operator":
        return Visitor("operator", None, token)
    kind, _, ident = principal.partition(":")
    if kind == "supplier":
        return Visitor("supplier", ident, token)
    if kind == "buyer_group":
        return Visitor("buyer_group", ident, token)
    return ANONYMOUS


class Forum:
    def __init__(
        self, settings: Settings, pool: Callable[[], asyncpg.Pool], backend: Backend, mailer: Mailer
    ):
        self.settings = settings
        self._pool = pool
        self.backend = backend
        self.mailer = mailer
        self._sessions: ReadCache[str, Visitor] = ReadCache(SESSION_KEEP_S, max_entries=10_000)

    async def visitor(self, session_id: str | None) -> Visitor:
        """Who holds this session. Lookups are kept for SESSION_KEEP_S (services/web/
        read_cache.py): a visitor's next pages come within seconds, and each would otherwise
        read the session row. Signing out here ends it at once; another forum process may
        still know it for twice those seconds."""
        if not session_id or not security.looks_like_secret(session_id):
            return ANONYMOUS
        digest = security.digest(session_id)
        return await self._sessions.get(digest, lambda: self._stored_visitor(digest))

    async def _stored_visitor(self, digest: str) -> Visitor:
        async with self._pool().acquire() as conn:
            stored = await WebRepository(conn).session(digest)
        return ANONYMOUS if stored is None else _visitor(stored.principal, stored.api_token)

    async def _start_session(self, session_id: str, principal: str, api_token: str) -> None:
        async with self._pool().acquire() as conn:
            await WebRepository(conn).add_session(
                security.digest(session_id), principal, api_token, self.settings.web_session_hours
            )
        self._sessions.drop(security.digest(session_id))

    async def sign_out(self, session_id: str | None) -> None:
        if session_id and security.looks_like_secret(session_id):
            async with self._pool().acquire() as conn:
                await WebRepository(conn).drop_session(security.digest(session_id))
            self._sessions.drop(security.digest(session_id))

    async def _contact(self, kind: str, ident: str) -> str | None:
        """The principal's contact e-mail, read as operator; None when there is no such principal."""
        try:
            if kind == "supplier":
                supplier = await self.backend.as_operator("suppliers", "GET", f"/v1/suppliers/{ident}")
                return str(supplier.get("contact_email") or "") or None
            group = await self.backend.as_operator("needs", "GET", f"/v1/buyer-groups/{ident}")
            return str((group.get("alerts") or {}).get("email") or "") or None
        except ApiError as exc:
            if exc.status in (404, 410, 422):
                return None
            raise

    async def send_link(
        self, kind: str, ident: str, email: str, base_url: str, lang: Lang, next_path: str = "/"
    ) -> None:
        """Mail a one-time link to the principal's contact address when `email` is that address.
        The caller says the same whatever happens, so the form tells nobody who is registered."""
        if kind not in ("supplier", "buyer_group") or not ident or len(ident) > 100:
            return
        contact = await self._contact(kind, ident)
        if contact is None or contact.strip().lower() != email.strip().lower():
            log.info("sign_in_link_refused", kind=kind)
            return
        if self.settings.mode == "production" and not self.settings.web_public_url:
            # The request's Host header is the sender's to choose: a link built from it could
            # send the victim's sign-in token to another site.
            log.error("sign_in_link_not_sent", reason="INNOMATCH_WEB_PUBLIC_URL is not set")
            return
        token = security.new_secret()
        async with self._pool().acquire() as conn:
            await WebRepository(conn).add_link(
                security.digest(token), f"{kind}:{ident}", self.settings.web_link_minutes
            )
        base = (self.settings.web_public_url or base_url).rstrip("/")
        link = f"{base}/sign-in/{token}" + (f"?{urlencode({'next': next_path})}" if next_path != "/" else "")
        minutes = int(self.settings.web_link_minutes)
        if lang == "sv":
            subject = "Din inloggningslänk till Innomatch"
            body = (
                f"Hej!\n\nLogga in på Innomatch med den här länken. Den gäller i {minutes} minuter "
                f"och kan bara användas en gång:\n\n{link}\n\n"
                "Har du inte bett om länken kan du bortse från det här meddelandet.\n"
            )
        else:
            subject = "Your sign-in link to Innomatch"
            body = (
                f"Hello,\n\nSign in to Innomatch with this link. It works for {minutes} minutes "
                f"and only once:\n\n{link}\n\nIf you did not ask for it, ignore this message.\n"
            )
        if self.settings.mode == "development":  # shown on /dev/mail, sent over SMTP or not
            async with self._pool().acquire() as conn:
                await WebRepository(conn).add_dev_mail(contact, subject, body)
        await self.mailer.send(contact, subject, body)
        log.info("sign_in_link_sent", kind=kind)

    async def dev_mails(self) -> list[SentMail]:
        async with self._pool().acquire() as conn:
            return await WebRepository(conn).dev_mails()

    async def link_usable(self, token: str) -> bool:
        if not security.looks_like_secret(token):
            return False
        async with self._pool().acquire() as conn:
            return await WebRepository(conn).link_usable(security.digest(token))

    async def use_link(self, token: str, session_id: str) -> Visitor | None:
        """Sign in by a link, once: the new session's visitor, or None (unknown, used, expired)."""
        if not security.looks_like_secret(token):
            return None
        async with self._pool().acquire() as conn:
            principal = await WebRepository(conn).use_link(security.digest(token))
        if principal is None:
            return None
        kind, _, ident = principal.partition(":")
        try:
            api_token = await self.backend.fresh_token(
                "supplier" if kind == "supplier" else "buyer_group", ident
            )
        except ApiError as exc:
            if exc.status in (404, 410):  # erased since the link was sent
                return None
            raise
        await self._start_session(session_id, principal, api_token)
        return _visitor(principal, api_token)

    async def operator_sign_in(self, given: str, session_id: str) -> bool:
        expected = self.backend.operator_token
        if not expected or not hmac.compare_digest(given.strip().encode(), expected.encode()):
            log.info("operator_sign_in_refused")
            return False
        await self._start_session(session_id, "operator", expected)
        return True

    async def register_supplier(self, body: dict[str, Any], session_id: str) -> dict[str, Any]:
        """Register through the suppliers service and sign the new supplier in."""
        created: dict[str, Any] = await self.backend.call("suppliers", "POST", "/v1/suppliers", body=body)
        await self._start_session(session_id, f"supplier:{created['id']}", str(created["token"]))
        return created
