"""Alerts to a tenant's administrators (directory #6: a scheduled import failed)."""

from __future__ import annotations

import pytest
from pigeonhole.api import Notification, Recipient
from pigeonhole_email.render import render

DATA = {
    "tenant_name": "Acme Corp",
    "schedule_name": "HR nightly",
    "kind": "contacts",
    "source": "sftp://hr@sftp.example.com:22/exports/people.csv",
    "status": "refused",
    "message": "Line 4: Duplicate Personnel ID 'P-1' (lines 2 and 4)",
    "import_id": "0b7e0c1e-0000-4000-8000-000000000001",
    "failed_at": "2026-11-21T03:00:00+00:00",
}


@pytest.mark.parametrize("language", ["en", "fr"])
def test_import_failure_alert_renders_in_both_languages(language):
    rendered = render(
        Notification(
            id="n-1", tenant="acme", event="directory.import_failed", language=language,
            recipient=Recipient(name="Ann", email="ann@example.com", language=language), data=DATA,
        )
    )  # fmt: skip
    assert rendered.language == language
    assert "HR nightly" in rendered.subject
    assert "$" not in rendered.subject + rendered.text + rendered.html
    for value in (
        "sftp://hr@sftp.example.com:22/exports/people.csv",
        "Duplicate Personnel ID 'P-1'",
        "Acme Corp",
    ):
        assert value in rendered.text
    assert "package" not in rendered.text.lower() and "colis" not in rendered.text.lower()
