import re
import time
from collections.abc import Sequence

import pytest

from services.contracts.cpv import (
    CpvEntry,
    all_cpv,
    cpv_ancestors,
    cpv_label,
    cpv_lookup,
    normalize_cpv,
    search_cpv,
)


def codes(entries: Sequence[CpvEntry]) -> list[str]:
    return [entry.code8 for entry in entries]


@pytest.mark.parametrize("code", ["45000000-7", "45000000", "  45000000-7 ", "45000000\n"])
def test_lookup_accepts_code_with_or_without_check_digit(code: str) -> None:
    entry = cpv_lookup(code)
    assert entry is not None
    assert entry.code8 == "45000000"
    assert entry.code == "45000000-7"
    assert entry.level == 1
    assert entry.parent is None
    assert entry.label_sv == "Anläggningsarbete"
    assert entry.label_en == "Construction work"


def test_lookup_links_parent_by_eight_digits() -> None:
    entry = cpv_lookup("34114121")
    assert entry is not None
    assert entry.parent == "34114120"
    assert entry.level == 7


@pytest.mark.parametrize("code", ["45000000-8", "12345678", "1234", "", "45000000-", "4500000a"])
def test_lookup_of_wrong_or_unknown_code_is_none(code: str) -> None:
    assert cpv_lookup(code) is None


@pytest.mark.parametrize("code", ["45000000-7", "45000000", " 45000000-7 "])
def test_normalize_gives_eight_digits(code: str) -> None:
    assert normalize_cpv(code) == "45000000"


def test_normalize_rejects_malformed_code() -> None:
    with pytest.raises(ValueError) as error:
        normalize_cpv("1234")
    assert str(error.value) == (
        "'1234' is not a CPV code: expected 8 digits with an optional check digit, like 45000000-7"
    )


def test_normalize_rejects_unknown_code() -> None:
    with pytest.raises(ValueError) as error:
        normalize_cpv("12345678")
    assert str(error.value) == "12345678 is not a CPV 2008 code"


def test_normalize_names_the_right_check_digit() -> None:
    with pytest.raises(ValueError) as error:
        normalize_cpv("45000000-8")
    assert str(error.value) == "check digit does not match: 45000000-7 is the code"


def test_normalize_shortens_long_input_in_message() -> None:
    with pytest.raises(ValueError) as error:
        normalize_cpv("x" * 1000)
    assert len(str(error.value)) < 200


def test_ancestors_nearest_first() -> None:
    assert cpv_ancestors("45216122") == [
        "45216120",
        "45216100",
        "45216000",
        "45210000",
        "45200000",
        "45000000",
    ]
    assert cpv_ancestors("34114121-3")[0] == "34114120"


def test_division_has_no_ancestors() -> None:
    assert cpv_ancestors("45000000") == []


def test_ancestors_of_unknown_code_raise() -> None:
    with pytest.raises(ValueError):
        cpv_ancestors("12345678")


def test_labels_in_both_languages() -> None:
    assert cpv_label("34114121") == "Ambulanser"
    assert cpv_label("34114121", lang="sv") == "Ambulanser"
    assert cpv_label("34114121-3", lang="en") == "Ambulances"


def test_label_rejects_unknown_language() -> None:
    with pytest.raises(ValueError, match="language must be sv or en"):
        cpv_label("34114121", lang="fi")


def test_all_cpv_is_the_whole_table_in_code_order() -> None:
    entries = all_cpv()
    assert len(entries) == 9454
    assert codes(entries) == sorted({entry.code8 for entry in entries})
    by_code = {entry.code8: entry for entry in entries}
    for entry in entries:
        if entry.parent is not None:
            assert by_code[entry.parent].level < entry.level


def test_search_splits_swedish_compound_laddstolpar() -> None:
    found = codes(search_cpv("laddstolpar"))
    # No label says "laddstolpar": the parts find chargers and posts.
    assert "31158000" in found[:10]  # Laddningsanordningar
    assert "44144000" in found[:10]  # Stolpar


def test_search_ambulance_in_english() -> None:
    found = codes(search_cpv("ambulance", lang="en"))
    assert {"34114121", "85143000", "34211200", "45216122"} <= set(found)
    # A whole-word hit ranks above "ambulances", a word that only starts with it.
    assert found.index("85143000") < found.index("34114121")


def test_search_falls_back_to_the_other_language() -> None:
    assert codes(search_cpv("ambulance", lang="sv")) == codes(search_cpv("ambulance", lang="en"))


def test_search_finds_swedish_words_inside_compounds() -> None:
    found = codes(search_cpv("ambulans"))
    assert {"34114121", "85143000", "34211200", "45216122", "50117200"} <= set(found)


def test_search_ranks_whole_word_then_start_then_inside() -> None:
    found = search_cpv("stolpar")
    words = [re.findall(r"\w+", entry.label_sv.casefold()) for entry in found]
    whole = [i for i, label in enumerate(words) if "stolpar" in label]
    inside = [i for i, label in enumerate(words) if "stolpar" not in label]
    assert whole and inside
    assert max(whole) < min(inside)
    assert found[0].code8 == "44144000"


def test_search_ties_go_to_general_codes_then_code_order() -> None:
    found = search_cpv("stolpar")
    whole = found[:4]
    assert [(e.level, e.code8) for e in whole] == sorted((e.level, e.code8) for e in whole)


def test_search_is_deterministic() -> None:
    for query in ("för", "laddstolpar", "medical devices", "system"):
        assert codes(search_cpv(query)) == codes(search_cpv(query))


@pytest.mark.parametrize("query", ["LÄKEMEDEL", "läkemedel", "Lakemedel"])
def test_search_is_case_insensitive_and_tolerates_missing_diacritics(query: str) -> None:
    found = codes(search_cpv(query))
    assert found[:2] == ["33000000", "33600000"]


def test_search_requires_every_word() -> None:
    found = search_cpv("medical devices", lang="en")
    assert found
    for entry in found:
        label = entry.label_en.casefold()
        assert "medical" in label and "devices" in label


def test_search_by_code_prefix() -> None:
    found = search_cpv("4521")
    assert found[0].code8 == "45210000"
    assert all(entry.code8.startswith("4521") for entry in found)
    assert codes(search_cpv("45000000-7")) == ["45000000"]


def test_search_limit_and_empty_queries() -> None:
    assert len(search_cpv("för", limit=5)) == 5
    assert search_cpv("för", limit=0) == []
    assert search_cpv("") == []
    assert search_cpv("  --  ") == []
    assert search_cpv("qxzqxzqxz") == []


def test_search_is_fast_once_indexed() -> None:
    search_cpv("warm up")
    search_cpv("warm up", lang="en")
    queries = ["laddstolpar", "ambulance", "läkemedel", "medical devices", "för", "a", "väg"]
    started = time.perf_counter()
    for query in queries:
        search_cpv(query)
    per_query = (time.perf_counter() - started) / len(queries)
    # The target is a few milliseconds; the bound leaves room for slow CI machines.
    assert per_query < 0.05
