import pytest

from services.contracts.nuts import all_nuts, normalize_nuts, nuts_contains, nuts_lookup


def test_lookup_is_case_and_space_insensitive() -> None:
    region = nuts_lookup(" se110 ")
    assert region is not None
    assert region.code == "SE110"
    assert region.name == "Stockholms län"
    assert region.level == 3
    assert region.parent == "SE11"
    assert region.lan_code == "01"


def test_lookup_of_unknown_region_is_none() -> None:
    assert nuts_lookup("SE999") is None
    assert nuts_lookup("FI1B1") is None


def test_normalize_upper_cases_and_strips() -> None:
    assert normalize_nuts(" se11 ") == "SE11"
    assert normalize_nuts("SE") == "SE"


def test_normalize_rejects_unknown_region() -> None:
    with pytest.raises(ValueError) as error:
        normalize_nuts("SE999")
    assert str(error.value) == "region SE999 is not a Swedish NUTS code"


def test_normalize_quotes_odd_input() -> None:
    with pytest.raises(ValueError) as error:
        normalize_nuts("")
    assert str(error.value) == "region '' is not a Swedish NUTS code"


@pytest.mark.parametrize(
    ("outer", "inner"),
    [("SE", "SE110"), ("SE", "SE"), ("SE1", "SE11"), ("SE1", "SE125"), ("se11", "SE110")],
)
def test_contains(outer: str, inner: str) -> None:
    assert nuts_contains(outer, inner)


@pytest.mark.parametrize(
    ("outer", "inner"), [("SE110", "SE11"), ("SE11", "SE12"), ("SE2", "SE110"), ("SE110", "SE")]
)
def test_does_not_contain(outer: str, inner: str) -> None:
    assert not nuts_contains(outer, inner)


def test_se_contains_every_swedish_region() -> None:
    assert all(nuts_contains("SE", region.code) for region in all_nuts())


def test_contains_rejects_unknown_regions() -> None:
    with pytest.raises(ValueError):
        nuts_contains("SE", "SE999")


def test_all_nuts() -> None:
    regions = all_nuts()
    assert len(regions) == 33
    assert regions[0].code == "SE"
    assert [r.level for r in regions].count(3) == 21
    codes = {r.code for r in regions}
    assert all(r.parent in codes for r in regions if r.parent is not None)
