"""Entity tags and If-Match, shared by every versioned resource."""

from __future__ import annotations

import pytest

from services.infra.errors import PreconditionFailed
from services.infra.etags import check_if_match, etag


@pytest.mark.parametrize("header", [None, "*", 'W/"3"', '"3"', 'W/"1", W/"3"'])
def test_if_match_accepts_the_current_version(header: str | None) -> None:
    check_if_match(header, 3, "need")


@pytest.mark.parametrize("header", ['W/"2"', '"4"', "3", ""])
def test_if_match_refuses_any_other(header: str) -> None:
    with pytest.raises(PreconditionFailed) as caught:
        check_if_match(header, 3, "supplier")
    assert caught.value.details == {"current_etag": etag(3)}
    assert str(caught.value) == "the supplier is at version 3; read it again and retry"
