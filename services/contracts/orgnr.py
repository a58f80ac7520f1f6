"""Swedish organisation numbers (organisationsnummer) of legal persons.

Accepted input: 10 digits with or without the hyphen ("556036-0793", "5560360793"),
surrounding whitespace ignored. The 12-digit form with the "16" prefix that some
registers use ("16556036-0793") is accepted too and shortened. Other 12-digit numbers
are personal identity numbers (a sole trader's), which are not organisation numbers.
The canonical form is "NNNNNN-NNNN".
"""

import re

__all__ = ["is_public_body", "luhn_check_digit", "normalize_org_number"]

_FORM = re.compile(r"(16)?(\d{6})-?(\d{4})")
_EXAMPLE = "556036-0793"


def luhn_check_digit(digits: str) -> int:
    """The Luhn (mod 10) check digit over the digits, weighting the first one 2."""
    total = 0
    for position, digit in enumerate(digits):
        product = int(digit) * (2 if position % 2 == 0 else 1)
        total += product // 10 + product % 10
    return (10 - total % 10) % 10


def normalize_org_number(s: str) -> str:
    """The canonical "NNNNNN-NNNN" form; ValueError says what is wrong."""
    text = s.strip()
    match = _FORM.fullmatch(text)
    if match is None:
        if re.fullmatch(r"(19|20)\d{6}-?\d{4}", text):
            raise ValueError(
                "a 12-digit number starting with 19 or 20 is a personal identity "
                f"number, not an organisation number like {_EXAMPLE}"
            )
        shown = repr(text if len(text) <= 20 else text[:20] + "...")
        raise ValueError(f"{shown} is not an organisation number: expected 10 digits, like {_EXAMPLE}")
    digits = match[2] + match[3]
    # Personal identity numbers have the month (01-12) there; legal persons have 20+.
    if int(digits[2]) < 2:
        raise ValueError("third digit must be 2 or more for an organisation number")
    if luhn_check_digit(digits[:9]) != int(digits[9]):
        raise ValueError("check digit does not match: is a digit mistyped?")
    return f"{digits[:6]}-{digits[6:]}"


def is_public_body(s: str) -> bool:
    """Whether the organisation number belongs to the state, a region or a municipality.

    Raises ValueError when s is not an organisation number at all.
    """
    return normalize_org_number(s).startswith("2")
