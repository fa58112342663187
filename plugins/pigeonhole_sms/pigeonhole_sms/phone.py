"""Phone numbers as gateways want them: E.164 (``+`` then 8 to 15 digits)."""

from __future__ import annotations

import re

_SEPARATORS = re.compile(r"[\s\-.()/\u00a0]")


class BadNumber(ValueError):
    """A number no gateway could deliver to; the message says why."""


def to_e164(raw: str, default_country_code: str | None = None) -> str:
    """``+14155550100`` from ``(415) 555-0100`` and the like; raise BadNumber with the reason."""
    text = (raw or "").strip()
    if not text:
        raise BadNumber("the recipient has no phone number")
    compact = _SEPARATORS.sub("", text)
    if compact.startswith("00"):
        compact = "+" + compact[2:]
    if compact.startswith("+"):
        digits = compact[1:]
        if not digits.isdigit():
            raise BadNumber(f"'{raw}' is not a phone number (only digits may follow '+')")
    else:
        if not compact.isdigit():
            raise BadNumber(f"'{raw}' is not a phone number (letters or symbols in it)")
        if default_country_code is None:
            raise BadNumber(
                f"'{raw}' has no country code: write it as +<country code><number>, "
                "or set default_country_code in the SMS configuration"
            )
        country = default_country_code.lstrip("+")
        if country == "1" and len(compact) == 11 and compact.startswith("1"):
            digits = compact  # North America, written with its leading 1
        else:
            digits = country + (compact[1:] if compact.startswith("0") else compact)
    if digits.startswith("0"):
        raise BadNumber(f"'{raw}' is not a valid international number (a country code never starts with 0)")
    if not 8 <= len(digits) <= 15:
        raise BadNumber(f"'{raw}' is not a valid phone number ({len(digits)} digits; E.164 allows 8 to 15)")
    return "+" + digits
