from __future__ import annotations

import pytest

from services.infra.db import migrations_for
from services.infra.settings import SERVICES


@pytest.mark.parametrize("service", SERVICES)
def test_every_service_gets_the_outbox_and_inbox_first_then_its_own_files_in_order(service: str) -> None:
    names = [m.name for m in migrations_for(service)]
    assert names[0] == "infra/001_outbox_inbox.sql"
    own = [n for n in names if not n.startswith("infra/")]
    assert own and own == sorted(own)
    assert all("{schema}" in m.sql for m in migrations_for(service) if m.name.startswith("infra/"))


def test_an_unknown_service_is_refused() -> None:
    with pytest.raises(ValueError, match="unknown service"):
        migrations_for("billing")
