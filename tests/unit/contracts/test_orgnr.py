import pytest

from services.contracts.orgnr import is_public_body, luhn_check_digit, normalize_org_number


def test_luhn_check_digit() -> None:
    # 2*2 1 2*2 0 0*2 0 0*2 1 4*2 -> 4+1+4+0+0+0+0+1+8 = 18 -> 2
    assert luhn_check_digit("212000014") == 2
    # 10 5 12 0 6 6 0 7 18 -> 1+5+3+0+6+6+0+7+9 = 37 -> 3
    assert luhn_check_digit("556036079") == 3


@pytest.mark.parametrize(
    ("given", "canonical"),
    [
        ("556036-0793", "556036-0793"),
        ("5560360793", "556036-0793"),
        ("  556036-0793\n", "556036-0793"),
        ("212000-0142", "212000-0142"),
        ("202100-5489", "202100-5489"),
        ("232100-0180", "232100-0180"),
        ("16556036-0793", "556036-0793"),
        ("165560360793", "556036-0793"),
    ],
)
def test_valid_numbers_normalize(given: str, canonical: str) -> None:
    assert normalize_org_number(given) == canonical


@pytest.mark.parametrize("given", ["556036-0794", "5560360790", "212000-0143"])
def test_bad_check_digit(given: str) -> None:
    with pytest.raises(ValueError, match=r"^check digit does not match"):
        normalize_org_number(given)


def test_third_digit_must_mark_a_legal_person() -> None:
    # A valid personal identity number (born 1980-12-12) is not an organisation number.
    assert luhn_check_digit("801212123") == 5
    with pytest.raises(ValueError) as error:
        normalize_org_number("801212-1235")
    assert str(error.value) == "third digit must be 2 or more for an organisation number"


def test_twelve_digit_personal_identity_number_is_refused() -> None:
    with pytest.raises(ValueError, match="personal identity number"):
        normalize_org_number("198012121235")


@pytest.mark.parametrize("given", ["", "556036-079", "556036/0793", "55603607931", "abc"])
def test_malformed_input(given: str) -> None:
    with pytest.raises(ValueError, match="is not an organisation number: expected 10 digits"):
        normalize_org_number(given)


def test_public_body() -> None:
    assert is_public_body("212000-0142")
    assert is_public_body("2021005489")
    assert not is_public_body("556036-0793")


def test_public_body_of_invalid_number_raises() -> None:
    with pytest.raises(ValueError):
        is_public_body("212000-0143")
