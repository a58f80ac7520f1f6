"""Validate an OCDS release package with lib-cove-ocds, offline.

lib-cove-ocds normally downloads the standard (a ZIP of the standard's repository) and every
extension the package declares. Here the standard comes from the copy vendored in
`tests/ocds/standard`, zipped into a temporary file and named by lib-cove-ocds's
`standard_zip` setting, and the extensions from `tests/ocds/extensions`: their URLs (and the
GitHub archives of their tags, which ocdsextensionregistry reads their files from) are served
to ocdsextensionregistry's HTTP session, where lib-cove-ocds fetches them, from those files.
Any other URL fails, so a test never reaches the network and says what it lacked.
"""

from __future__ import annotations

import contextlib
import io
import re
import zipfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from requests.models import PreparedRequest, Response
from urllib3 import HTTPResponse

VENDORED = Path(__file__).parent / "ocds"
_EXTENSIONS_URL = "https://raw.githubusercontent.com/open-contracting-extensions/"
# ocdsextensionregistry reads an extension on GitHub from the archive of its tag.
_ARCHIVE = re.compile(r"https://github\.com/open-contracting-extensions/([\w.-]+)/archive/([\w.-]+)\.zip")


def _archive(directory: Path, top: str) -> bytes:
    """A folder as GitHub serves a tag's archive: a ZIP with one top folder."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr(f"{top}/", "")
        for file in sorted(directory.rglob("*")):
            if file.is_file():
                z.write(file, f"{top}/{file.relative_to(directory).as_posix()}")
    return buffer.getvalue()


def _vendored(url: str) -> bytes | None:
    """The body of a vendored extension's file or archive; None when not vendored."""
    if url.startswith(_EXTENSIONS_URL):
        path = VENDORED / "extensions" / url[len(_EXTENSIONS_URL) :]
        return path.read_bytes() if path.is_file() else None
    archive = _ARCHIVE.fullmatch(url)
    if archive:
        repo, tag = archive.groups()
        directory = VENDORED / "extensions" / repo / tag
        if directory.is_dir():
            return _archive(directory, f"{repo}-{tag.removeprefix('v')}")
    return None


class _VendoredFiles(HTTPAdapter):
    """Answers GETs of the vendored extensions' files and archives; refuses every other URL."""

    def send(self, request: PreparedRequest, *args: Any, **kwargs: Any) -> Response:
        url = request.url or ""
        if not (url.startswith(_EXTENSIONS_URL) or _ARCHIVE.fullmatch(url)):
            raise requests.ConnectionError(f"offline: {url} is not vendored under tests/ocds")
        body = _vendored(url)
        # A real urllib3 response: requests-cache (under ocdsextensionregistry) copies it.
        raw = HTTPResponse(
            body=io.BytesIO(body or b""),
            status=200 if body is not None else 404,
            reason="OK" if body is not None else "Not Found",
            headers={"Content-Type": "application/octet-stream"},
            preload_content=False,
            request_url=url,
        )
        return self.build_response(request, raw)


def _standard_zip(directory: Path) -> Path:
    """The vendored standard as the ZIP lib-cove-ocds expects: one top folder, `schema/` in it."""
    path = directory / "standard-1__1__5.zip"
    root = VENDORED / "standard"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("standard-1__1__5/", "")
        for file in sorted(root.joinpath("schema").rglob("*")):
            if file.is_file():
                z.write(file, f"standard-1__1__5/{file.relative_to(root).as_posix()}")
    return path


@contextlib.contextmanager
def _offline() -> Iterator[None]:
    from ocdsextensionregistry import util

    session = util.session
    saved = dict(session.adapters)
    adapter = _VendoredFiles()
    session.mount("https://", adapter)
    session.mount("http://", adapter)
    try:
        yield
    finally:
        session.adapters.clear()
        session.adapters.update(saved)
        with contextlib.suppress(AttributeError):
            session.cache.clear()


def validate(package: Mapping[str, Any], workdir: Path) -> dict[str, Any]:
    """lib-cove-ocds's results for the package (its API context)."""
    from libcoveocds.api import ocds_json_output
    from libcoveocds.config import LibCoveOCDSConfig

    config = LibCoveOCDSConfig()
    config.config["context"] = "api"
    config.config["standard_zip"] = f"file://{_standard_zip(workdir)}"
    with _offline():
        result: dict[str, Any] = ocds_json_output(
            str(workdir), json_data=dict(package), lib_cove_ocds_config=config, record_pkg=False
        )
    return result


def problems(result: Mapping[str, Any]) -> dict[str, Any]:
    """What makes a package fail: schema errors, unknown closed-codelist codes, extensions that
    could not be applied, unreadable references, and fields no schema knows."""
    found = {
        "validation_errors": result.get("validation_errors") or [],
        "invalid_closed_codelist_values": [
            v for v in result.get("additional_closed_codelist_values", {}).values()
        ],
        "invalid_extensions": (result.get("extensions") or {}).get("invalid_extensions") or [],
        "failed_codelists": [
            e["failed_codelists"]
            for e in (result.get("extensions") or {}).get("extensions") or []
            if e.get("failed_codelists")
        ],
        "json_deref_error": result.get("json_deref_error"),
        "additional_fields": result.get("additional_fields") or [],
    }
    return {k: v for k, v in found.items() if v}
