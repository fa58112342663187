"""Dates written out for people, in the message's language.

Babel would do this for every locale; two languages do not justify the
dependency. Times are shown in the offset the host sent them with: the host
knows the site's time zone, the plugin does not.
"""

from __future__ import annotations

from datetime import datetime, timedelta

_EN_DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
_EN_MONTHS = (
    "January", "February", "March", "April", "May", "June",
    "July", "August", "September", "October", "November", "December",
)  # fmt: skip
_FR_DAYS = ("lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche")
_FR_MONTHS = (
    "janvier", "février", "mars", "avril", "mai", "juin",
    "juillet", "août", "septembre", "octobre", "novembre", "décembre",
)  # fmt: skip


def format_datetime(value: str | None, language: str) -> str:
    """The date, or "" when there is none, or the raw text when it is not ISO 8601."""
    if not value:
        return ""
    try:
        at = datetime.fromisoformat(value)
    except (TypeError, ValueError):
        return str(value)
    zone = _zone(at)
    if language == "fr":
        day = "1er" if at.day == 1 else str(at.day)
        text = (
            f"{_FR_DAYS[at.weekday()]} {day} {_FR_MONTHS[at.month - 1]} {at.year}"
            f" à {at.hour} h {at.minute:02d}"
        )
    else:
        text = (
            f"{_EN_DAYS[at.weekday()]}, {at.day} {_EN_MONTHS[at.month - 1]} {at.year}"
            f" at {at.hour:02d}:{at.minute:02d}"
        )
    return f"{text} {zone}" if zone else text


def _zone(at: datetime) -> str:
    offset = at.utcoffset()
    if offset is None:
        return ""
    if offset == timedelta(0):
        return "UTC"
    sign = "+" if offset > timedelta(0) else "-"
    minutes = abs(int(offset.total_seconds())) // 60
    return f"UTC{sign}{minutes // 60:02d}:{minutes % 60:02d}"
