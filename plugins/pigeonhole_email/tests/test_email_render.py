import pytest
from pigeonhole.api import Notification, Recipient
from pigeonhole_email.config import EmailConfig
from pigeonhole_email.dates import format_datetime
from pigeonhole_email.message import build_message, message_id
from pigeonhole_email.render import render
from pigeonhole_email.templates import TEMPLATES

BASE = {
    "tenant_name": "Acme Corp",
    "tracking_id": "TRK-1",
    "carrier": "DHL",
    "bank_name": "North Lobby",
    "location_name": "Building A",
    "location_address": "1 Example Street",
    "compartment": 7,
    "expires_at": "2025-03-01T09:05:00+01:00",
    "package_id": "p-1",
}


def note(event="package.ready", language="en", **data) -> Notification:
    return Notification(
        id="n-1", tenant="acme", event=event, language=language,
        recipient=Recipient(name="Ann", email="ann@example.com", language=language),
        data={**BASE, "code": "123456", **data},
    )  # fmt: skip


#: What each event's data adds to BASE, and what its email must show besides the tenant's name.
EVENTS = {
    "package.ready": ({"qr": "PHQTOKEN"}, ["North Lobby", "TRK-1", "123456", "PHQTOKEN"]),
    "package.reminder": ({"reminder": 2, "reminders": 3}, ["North Lobby", "TRK-1", "2"]),
    "package.escalated": ({"hours_waiting": 48}, ["North Lobby", "TRK-1", "48"]),
    "package.expired": ({"destination": "counter"}, ["Building A", "TRK-1"]),
    "package.expired:shelf": ({"destination": "shelf"}, ["Building A", "TRK-1"]),
    "package.removed": ({"destination": "counter"}, ["North Lobby", "TRK-1"]),
    "package.removed:shelf": ({"destination": "shelf"}, ["North Lobby", "TRK-1"]),
    "package.at_counter": ({"reason": "oversized"}, ["Building A", "TRK-1", "oversized"]),
    "package.code_replaced": ({}, ["North Lobby", "TRK-1", "123456"]),
    "package.picked_up": ({"picked_up_at": "2025-03-02T10:00:00Z"}, ["North Lobby", "TRK-1"]),
    "return.created": ({"ends_at": "2025-03-05T10:00:00Z"}, ["North Lobby", "123456", "TRK-1"]),
    "return.deposited": ({}, ["North Lobby", "TRK-1"]),
    "storage.reserved": ({"starts_at": "2025-03-01T08:00:00Z", "ends_at": "2025-03-01T18:00:00Z"},
                         ["North Lobby", "123456", "2025"]),
    "storage.ending": ({"ends_at": "2025-03-01T18:00:00Z", "minutes_left": 30}, ["North Lobby"]),
    "storage.ended": ({"why": "ended"}, ["North Lobby"]),
    "storage.ended:expired": ({"why": "expired"}, ["North Lobby"]),
    "delivery.preadvised": ({"expected_at": "2025-03-01T08:00:00Z"}, ["North Lobby", "TRK-1"]),
}


def test_every_built_in_event_has_a_case():
    assert set(EVENTS) == set(TEMPLATES)


@pytest.mark.parametrize("event", sorted(EVENTS))
@pytest.mark.parametrize("language", ["en", "fr"])
def test_every_event_renders_in_both_languages(event, language):
    extra, shown = EVENTS[event]
    rendered = render(note(event.split(":")[0], language, **extra))
    assert rendered.language == language
    assert rendered.subject
    assert "$" not in rendered.subject + rendered.text + rendered.html
    for value in ["Acme Corp", *shown]:
        assert value in rendered.text, (event, value)
    # the variant is the one chosen
    assert rendered.subject == render(note(event.split(":")[0], language, **extra)).subject


def test_only_the_ready_email_carries_the_code():
    assert "123456" in render(note("package.ready")).text
    for event in ("package.reminder", "package.picked_up", "package.expired"):
        assert "123456" not in render(note(event)).text


def test_picked_up_shows_the_time():
    rendered = render(note("package.picked_up", picked_up_at="2025-03-02T10:00:00Z"))
    assert "Sunday, 2 March 2025 at 10:00 UTC" in rendered.text


@pytest.mark.parametrize("language", ["de", "", "xx-YY"])
def test_unknown_language_falls_back_to_english(language):
    assert render(note(language=language)).subject.startswith("Your package")


def test_regional_french_reads_french():
    assert render(note(language="fr-CA")).language == "fr"


def test_unknown_event_gets_a_generic_message_naming_it():
    rendered = render(note("package.resized"))
    assert rendered.subject == "News about your package"
    assert "package.resized" in rendered.text


def test_paragraphs_with_missing_values_are_left_out():
    rendered = render(note(expires_at=None, location_address=None))
    assert "before" not in rendered.text
    assert "at Building A." in rendered.text
    assert "None" not in rendered.text


def test_html_escapes_values():
    rendered = render(note(bank_name="<script>x</script>"))
    assert "<script>" not in rendered.html
    assert "&lt;script&gt;" in rendered.html


def test_newlines_cannot_reach_the_subject():
    msg = build_message(note(location_name="A\r\nBcc: evil@example.com"), EmailConfig())
    assert "\n" not in msg["Subject"]
    assert msg["Bcc"] is None


def test_message_id_is_derived_from_the_notification_id():
    assert message_id(note()) == "<n-1@pigeonhole>"


@pytest.mark.parametrize(
    ("value", "language", "expected"),
    [
        ("2025-03-01T09:05:00+01:00", "en", "Saturday, 1 March 2025 at 09:05 UTC+01:00"),
        ("2025-03-01T09:05:00+01:00", "fr", "samedi 1er mars 2025 à 9 h 05 UTC+01:00"),
        ("2025-08-15T18:30:00Z", "fr", "vendredi 15 août 2025 à 18 h 30 UTC"),
        ("2025-08-15T18:30:00-04:30", "en", "Friday, 15 August 2025 at 18:30 UTC-04:30"),
        ("2025-08-15T18:30:00", "en", "Friday, 15 August 2025 at 18:30"),
        ("next week", "en", "next week"),
        (None, "en", ""),
    ],
)
def test_dates_are_written_out(value, language, expected):
    assert format_datetime(value, language) == expected
