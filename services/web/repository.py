"""The forum's tables: sessions, one-time sign-in links and, in development mode, the mails
it sent (schema `web`).

A link is used by one UPDATE that sets `used_at` only while it is unused and unexpired, so two
clicks racing each other sign in once. Expired rows are deleted as new ones are written.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from services.infra.db import Connection


@dataclass(frozen=True)
class SentMail:
    to: str
    subject: str
    body: str
    sent_at: datetime


DEV_MAIL_KEPT = 50


@dataclass(frozen=True)
class StoredSession:
    principal: str
    api_token: str


class WebRepository:
    def __init__(self, conn: Connection, schema: str = "web") -> None:
        self._conn = conn
        self._s = f'"{schema}"'

    async def add_link(self, token_digest: str, principal: str, minutes: float) -> None:
        await self._conn.execute(
            f"DELETE FROM {self._s}.sign_in_links WHERE expires_at < now() - interval '1 day'"
        )
        await self._conn.execute(
            f"INSERT INTO {self._s}.sign_in_links (token_digest, principal, expires_at) "
            "VALUES ($1, $2, now() + make_interval(secs => $3))",
            token_digest,
            principal,
            minutes * 60,
        )

    async def use_link(self, token_digest: str) -> str | None:
        """The link's principal, once: None when it is unknown, used or expired."""
        principal: str | None = await self._conn.fetchval(
            f"UPDATE {self._s}.sign_in_links SET used_at = now() "
            "WHERE token_digest = $1 AND used_at IS NULL AND expires_at > now() RETURNING principal",
            token_digest,
        )
        return principal

    async def link_usable(self, token_digest: str) -> bool:
        usable: bool | None = await self._conn.fetchval(
            f"SELECT true FROM {self._s}.sign_in_links "
            "WHERE token_digest = $1 AND used_at IS NULL AND expires_at > now()",
            token_digest,
        )
        return bool(usable)

    async def add_session(self, id_digest: str, principal: str, api_token: str, hours: float) -> None:
        await self._conn.execute(f"DELETE FROM {self._s}.sessions WHERE expires_at < now()")
        await self._conn.execute(
            f"INSERT INTO {self._s}.sessions (id_digest, principal, api_token, expires_at) "
            "VALUES ($1, $2, $3, now() + make_interval(secs => $4))",
            id_digest,
            principal,
            api_token,
            hours * 3600,
        )

    async def session(self, id_digest: str) -> StoredSession | None:
        row = await self._conn.fetchrow(
            f"SELECT principal, api_token FROM {self._s}.sessions "
            "WHERE id_digest = $1 AND expires_at > now()",
            id_digest,
        )
        return None if row is None else StoredSession(row["principal"], row["api_token"])

    async def drop_session(self, id_digest: str) -> None:
        await self._conn.execute(f"DELETE FROM {self._s}.sessions WHERE id_digest = $1", id_digest)

    async def add_dev_mail(self, to: str, subject: str, body: str) -> None:
        """Keep a sent mail for /dev/mail (development mode); only the newest DEV_MAIL_KEPT stay."""
        await self._conn.execute(
            f"INSERT INTO {self._s}.dev_mail (to_address, subject, body) VALUES ($1, $2, $3)",
            to,
            subject,
            body,
        )
        await self._conn.execute(
            f"DELETE FROM {self._s}.dev_mail WHERE id <= (SELECT max(id) FROM {self._s}.dev_mail) - $1",
            DEV_MAIL_KEPT,
        )

    async def dev_mails(self) -> list[SentMail]:
        rows = await self._conn.fetch(
            f"SELECT to_address, subject, body, sent_at FROM {self._s}.dev_mail ORDER BY id DESC LIMIT $1",
            DEV_MAIL_KEPT,
        )
        return [SentMail(r["to_address"], r["subject"], r["body"], r["sent_at"]) for r in rows]
