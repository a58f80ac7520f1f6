"""`innomatch dev --demo`: start the webhook receiver, load the data set through the APIs,
then print every alert as it arrives until stopped."""

from __future__ import annotations

import asyncio
import secrets
import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, TextIO

import httpx

from services.demo import data
from services.demo.loader import Loaded, LoadError, Target, load
from services.demo.receiver import Receiver
from services.demo.show import format_alert


class Printer:
    """Whole blocks of lines at a time: alerts arrive on the receiver's threads."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout
        self._lock = threading.Lock()

    def __call__(self, text: str) -> None:
        with self._lock:
            self.stream.write(text if text.endswith("\n") else text + "\n")
            self.stream.flush()


def target_from(info: Mapping[str, Any]) -> Target:
    """The demo's target from what `innomatch dev` writes to dev.json."""
    return Target(info["services"]["suppliers"], info["services"]["needs"], info["operator_token"])


def start_receiver(secret: str, subscribers: dict[str, str], printer: Callable[[str], None]) -> Receiver:
    def on_alert(name: str, body: Any) -> None:
        printer(format_alert(subscribers.get(name, name), body))

    def on_refused(name: str, reason: str) -> None:
        printer(f"demo: refused a webhook call for {subscribers.get(name, name)}: {reason}")

    return Receiver(secret, on_alert, on_refused).start()


LEVELS = ("national", "regional", "local")


def summary(loaded: Loaded, seconds: float, receiver: Receiver) -> str:
    levels = ", ".join(
        f"{sum(a.level == level for a in data.AUTHORITIES)} {level}"
        for level in ("national", "regional", "local")
    )
    cosigned = sum(bool(n["cosigners"]) for n in loaded.needs)
    hooked = sum(bool(s["subscriber"]) for s in loaded.suppliers)
    return (
        f"Demo data loaded in {seconds:.1f} s through the public APIs:\n"
        f"  {len(loaded.authorities)} authorities ({levels}), {len(loaded.groups)} buyer groups\n"
        f"  {len(loaded.suppliers)} suppliers, {len(loaded.needs)} needs ({cosigned} co-signed)\n"
        f"  in transport, health care and community building\n"
        f"  webhooks of the buyer groups and {hooked} suppliers go to {receiver.base_url}/hooks/...\n"
        "Waiting for alerts; each is printed with why it matched."
    )


def run(target: Target, stop: threading.Event, printer: Callable[[str], None]) -> Loaded | None:
    """Load the data and keep the receiver printing alerts until stop is set."""
    secret = secrets.token_hex(24)
    loaded = Loaded()
    receiver = start_receiver(secret, loaded.subscribers, printer)
    try:
        started = time.monotonic()
        printer("Loading the demo data set ...")
        try:
            asyncio.run(load(target, webhook_url_for=receiver.url_for, secret=secret, into=loaded))
        except (LoadError, httpx.HTTPError) as exc:
            printer(f"demo: loading failed: {exc}")
            return None
        printer(summary(loaded, time.monotonic() - started, receiver))
        stop.wait()
        return loaded
    finally:
        receiver.stop()


def start_in_background(info: Mapping[str, Any]) -> Callable[[], None]:
    """For `innomatch dev --demo`: run the demo beside the stack; the result stops it."""
    stop = threading.Event()
    thread = threading.Thread(
        target=run, args=(target_from(info), stop, Printer()), name="innomatch-demo", daemon=True
    )
    thread.start()

    def halt() -> None:
        stop.set()
        thread.join(10)

    return halt
