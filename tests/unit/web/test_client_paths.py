import pytest

from services.web.client import ApiError, _check_path


def test_paths_of_plain_ids_pass() -> None:
    _check_path("/v1/needs/6f1c2b7e-4c1a-4bde-9a55-0d3c1e2f3a4b/matches/abc_DEF.1")


@pytest.mark.parametrize(
    "path",
    ["/v1/suppliers/..", "/v1/suppliers/.", "/v1/suppliers/x?token=1", "/v1/needs/a#b", "/v1/needs/a%2Fb"],
)
def test_an_id_that_would_reach_another_route_is_refused(path: str) -> None:
    with pytest.raises(ApiError) as refused:
        _check_path(path)
    assert refused.value.status == 404
