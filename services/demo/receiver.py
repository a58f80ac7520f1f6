"""A local webhook receiver for the demo: checks each call's Innomatch-Signature and hands
the verified alert on, so a newcomer sees what a subscriber receives.

It is the reference for what a subscriber must do: recompute the HMAC-SHA256 of
"<t>.<body>" with the shared secret, compare in constant time, refuse old timestamps
(replays), and treat Innomatch-Delivery-Id as the key that makes retries harmless.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

# A signature older or newer than this is refused, so a captured call cannot be replayed.
TOLERANCE_S = 300


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The Innomatch-Signature header value for body at timestamp."""
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify_signature(
    secret: str, body: bytes, header: str | None, *, now: float, tolerance_s: float = TOLERANCE_S
) -> bool:
    """Whether header is a valid, recent Innomatch-Signature of body under secret."""
    if not header:
        return False
    fields = dict(part.strip().split("=", 1) for part in header.split(",") if "=" in part)
    try:
        timestamp = int(fields["t"])
    except (KeyError, ValueError):
        return False
    if abs(now - timestamp) > tolerance_s:
        return False
    expected = sign(secret, body, timestamp).split(",v1=", 1)[1]
    return hmac.compare_digest(expected, fields.get("v1", ""))


# (subscriber name from the URL path, the alert's JSON) for each verified, new delivery.
OnAlert = Callable[[str, Any], None]
# (subscriber name, reason) for each refused call.
OnRefused = Callable[[str, str], None]


class Receiver:
    """A webhook endpoint on 127.0.0.1 at a free port: POST /hooks/<subscriber>."""

    def __init__(self, secret: str, on_alert: OnAlert, on_refused: OnRefused | None = None) -> None:
        self.secret = secret
        self.on_alert = on_alert
        self.on_refused = on_refused or (lambda _name, _reason: None)
        self.received: list[tuple[str, Any]] = []
        self.refused = 0
        self._seen: set[str] = set()
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="demo-webhooks", daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def url_for(self, subscriber: str) -> str:
        return f"{self.base_url}/hooks/{subscriber}"

    def start(self) -> Receiver:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def handle(self, path: str, headers: dict[str, str], body: bytes) -> int:
        """The HTTP status for one call; verified new alerts go to on_alert."""
        name = path.removeprefix("/hooks/").strip("/") or "?"
        if not path.startswith("/hooks/"):
            return 404
        if not verify_signature(self.secret, body, headers.get("innomatch-signature"), now=time.time()):
            with self._lock:
                self.refused += 1
            self.on_refused(name, "bad or missing Innomatch-Signature")
            return 401
        try:
            alert = json.loads(body)
        except ValueError:
            self.on_refused(name, "the body is not JSON")
            return 400
        delivery = headers.get("innomatch-delivery-id") or hashlib.sha256(body).hexdigest()
        with self._lock:
            if delivery in self._seen:
                return 200  # a retry of something already shown
            self._seen.add(delivery)
            self.received.append((name, alert))
        self.on_alert(name, alert)
        return 200

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(min(length, 1_000_000))
                headers = {k.lower(): v for k, v in self.headers.items()}
                status = receiver.handle(self.path, headers, body)
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass  # the demo prints alerts, not access lines

        return Handler
