from __future__ import annotations

from services.infra.http import field_path


def test_field_paths_name_nested_fields_and_list_items() -> None:
    assert field_path(("body", "capabilities", "cpv_codes", 2)) == "capabilities.cpv_codes[2]"
    assert field_path(("body", "org_number")) == "org_number"
    assert field_path(("query", "limit")) == "limit"
    assert field_path(("body",)) == "body"
    assert field_path(("body", 0)) == "[0]"
