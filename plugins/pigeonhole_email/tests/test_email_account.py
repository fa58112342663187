"""The staff account mails (welcome, password reset): both languages, a clickable link, no holes."""

import pytest
from pigeonhole.api import Notification, Recipient
from pigeonhole_email.render import render
from pigeonhole_email.templates import ACCOUNT_TEMPLATES

LINK = "https://lockers.example.com/api/v1/t/acme/auth/password/set?token=phl_abc&x=1"


def note(event: str, language: str = "en") -> Notification:
    return Notification(
        id="n-2",
        tenant="acme",
        event=event,
        language=language,
        recipient=Recipient(name="Grace", email="grace@example.com", language=language),
        data={
            "tenant_name": "Acme Corp",
            "email": "grace@example.com",
            "expires_at": "2025-03-01T09:05:00+00:00",
            "link": LINK,
        },
    )


@pytest.mark.parametrize("event", sorted(ACCOUNT_TEMPLATES))
@pytest.mark.parametrize("language", ["en", "fr"])
def test_account_mails_render_in_both_languages(event, language):
    rendered = render(note(event, language))
    assert rendered.language == language
    assert "Acme Corp" in rendered.subject
    assert "$" not in rendered.subject + rendered.text + rendered.html
    assert LINK in rendered.text
    assert "grace@example.com" in rendered.text
    assert "2025" in rendered.text  # the expiry, written out
    assert "package" not in rendered.text.lower() and "colis" not in rendered.text.lower()


def test_the_link_is_clickable_and_escaped_in_html():
    html = render(note("account.welcome")).html
    assert (
        '<a href="https://lockers.example.com/api/v1/t/acme/auth/password/set?token=phl_abc&amp;x=1">' in html
    )


def test_a_mail_without_its_link_leaves_the_paragraph_out():
    bare = Notification(
        id="n-3", tenant="acme", event="account.password_reset", language="en",
        recipient=Recipient(name="Grace", email="grace@example.com"),
        data={"tenant_name": "Acme Corp", "email": "grace@example.com"},
    )  # fmt: skip
    text = render(bare).text
    assert "this link" not in text
    assert "Acme Corp" in text
