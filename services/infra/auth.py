"""Who is calling: signed bearer tokens (JWT, HS256) verified by every service on its own.

Principals: `operator` (the token configured in INNOMATCH_OPERATOR_TOKEN), `supplier:<id>`
and `buyer_group:<id>` (tokens issued by the suppliers and needs services). Only the signing
key is stored; a token is shown once, when it is issued.

A supplier or buyer-group token carries `iat` and `exp` (INNOMATCH_TOKEN_TTL_DAYS after it
was issued) and is refused after it; its holder gets a fresh one from the token endpoint of
the service that issued it. A token of an erased principal is refused at once: each service
looks the principal up in its own `erased_principals` (`services/infra/erasure.py`), so no
service asks another.
"""

from __future__ import annotations

import hmac
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Annotated, Literal

import jwt
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, Field

from services.infra.erasure import ErasedPrincipals
from services.infra.errors import Forbidden, Unauthenticated
from services.infra.settings import Settings

Kind = Literal["operator", "supplier", "buyer_group"]
_ISSUER = "innomatch"
_ALGORITHM = "HS256"


@dataclass(frozen=True)
class Principal:
    kind: Kind
    id: str | None = None

    @property
    def name(self) -> str:
        return self.kind if self.kind == "operator" else f"{self.kind}:{self.id}"

    @classmethod
    def parse(cls, name: str) -> Principal:
        if name == "operator":
            return cls("operator")
        kind, _, ident = name.partition(":")
        if kind == "supplier" and ident:
            return cls("supplier", ident)
        if kind == "buyer_group" and ident:
            return cls("buyer_group", ident)
        raise ValueError(f"{name!r} is not a principal")

    @property
    def is_operator(self) -> bool:
        return self.kind == "operator"

    def is_supplier(self, supplier_id: str) -> bool:
        return self.kind == "supplier" and self.id == supplier_id

    def is_buyer_group(self, group_id: str) -> bool:
        return self.kind == "buyer_group" and self.id == group_id


@dataclass(frozen=True)
class IssuedToken:
    token: str
    expires_at: datetime


class TokenOut(BaseModel):
    """A fresh bearer token, as the token endpoints answer."""

    token: str = Field(description="Bearer token; shown once, keep it safe.")
    expires_at: datetime = Field(description="When the token stops working; get a fresh one before.")

    @classmethod
    def of(cls, issued: IssuedToken) -> TokenOut:
        return cls(token=issued.token, expires_at=issued.expires_at)


def fresh_token_description(holder: str) -> str:
    """The OpenAPI description of a route that gives a `holder` (a supplier, a group) a fresh token."""
    return (
        f"For the {holder}, with its token while that is still valid, or for an operator (a "
        f"{holder} that lost its token asks an operator). The token lives "
        "INNOMATCH_TOKEN_TTL_DAYS; earlier tokens stay valid until they expire."
    )


def issue_token(request: Request, principal: Principal) -> IssuedToken:
    """A token for `principal` from the app's token issuer."""
    tokens: Tokens = request.app.state.tokens
    return tokens.issue(principal)


class Tokens:
    def __init__(self, settings: Settings) -> None:
        self._secret = settings.token_secret.get_secret_value()
        op = settings.operator_token
        self._operator_token = op.get_secret_value() if op else None
        self._ttl_s = settings.token_ttl_days * 86400

    def issue(self, principal: Principal) -> IssuedToken:
        now = time.time()
        # exp rounds up, so a lifetime shorter than a second still gives a token that lives.
        expires = int(now + self._ttl_s) + 1
        claims = {"sub": principal.name, "iss": _ISSUER, "iat": int(now), "exp": expires}
        token = jwt.encode(claims, self._secret, algorithm=_ALGORITHM)
        return IssuedToken(token, datetime.fromtimestamp(expires, UTC))

    def verify(self, token: str) -> Principal:
        if self._operator_token and hmac.compare_digest(token.encode(), self._operator_token.encode()):
            return Principal("operator")
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=[_ALGORITHM],
                issuer=_ISSUER,
                # A token without exp (issued before tokens expired) is refused. iat is not
                # checked against this host's clock: a skewed clock must not refuse a fresh token.
                options={"require": ["sub", "iss", "iat", "exp"], "verify_iat": False},
            )
            principal = Principal.parse(str(claims["sub"]))
        except (jwt.PyJWTError, ValueError) as exc:
            raise Unauthenticated("the bearer token is not valid") from exc
        if principal.is_operator:  # the operator is only ever the configured token
            raise Unauthenticated("the bearer token is not valid")
        return principal


_bearer = HTTPBearer(auto_error=False, description="A token issued by Innomatch")


async def current_principal(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise Unauthenticated("a bearer token is required")
    return await authenticate(request, credentials.credentials)


async def authenticate(request: Request, token: str) -> Principal:
    """The principal of a bearer token: signed, not expired, and not erased in this service."""
    tokens: Tokens = request.app.state.tokens
    principal = tokens.verify(token)
    erased: ErasedPrincipals = request.app.state.erased_principals
    if not principal.is_operator and await erased.contains(principal.name):
        raise Unauthenticated("the bearer token is not valid")
    return principal


PrincipalDep = Annotated[Principal, Depends(current_principal)]


async def require_operator(principal: PrincipalDep) -> Principal:
    if not principal.is_operator:
        raise Forbidden("only an operator may do this")
    return principal


OperatorDep = Annotated[Principal, Depends(require_operator)]
