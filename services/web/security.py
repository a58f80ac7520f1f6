"""Secrets of the web forum: session ids, one-time sign-in link tokens and CSRF tokens.

Pure functions over the standard library. Only hashes of session ids and link tokens are
stored, so a copy of the database opens no session and signs nobody in. A CSRF token is an
HMAC of the visitor's session id (a signed double submit): a page of another site can neither
read the cookie nor compute the token, and a new session id (sign-in, sign-out) makes every
earlier token worthless.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

_CSRF_LABEL = b"innomatch-web-csrf\x00"


def new_secret() -> str:
    """A fresh random token (256 bits) for a session id or a sign-in link."""
    return secrets.token_urlsafe(32)


def digest(token: str) -> str:
    """What is stored of a session id or a link token: its SHA-256, in hex."""
    return hashlib.sha256(token.encode()).hexdigest()


def looks_like_secret(token: str) -> bool:
    """A value that new_secret could have made (43 URL-safe characters): anything else is
    refused before it reaches the database."""
    return len(token) == 43 and all(c.isalnum() or c in "-_" for c in token)


def csrf_token(key: str, session_id: str) -> str:
    return hmac.new(_CSRF_LABEL + key.encode(), session_id.encode(), hashlib.sha256).hexdigest()


def csrf_valid(key: str, session_id: str | None, token: str | None) -> bool:
    if not session_id or not token:
        return False
    return hmac.compare_digest(csrf_token(key, session_id), token)
