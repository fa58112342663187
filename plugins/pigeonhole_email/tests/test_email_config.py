import msgspec
import pytest
from pigeonhole_email.config import DEFAULT_URL, EmailConfig, SmtpTarget


def test_defaults():
    config = msgspec.convert({}, EmailConfig)
    assert config.smtp_url is None
    assert config.from_address == "Pigeonhole <lockers@pigeonhole.local>"
    assert config.timeout_seconds == 10


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://mail.example.com:2525", SmtpTarget("mail.example.com", 2525)),
        ("smtp://mail.example.com", SmtpTarget("mail.example.com", 25)),
        ("smtps://u:p%40ss@mail.example.com", SmtpTarget("mail.example.com", 465, True, False, "u", "p@ss")),
        ("smtp+starttls://u:@relay:587", SmtpTarget("relay", 587, False, True, "u", "")),
    ],
)  # fmt: skip
def test_urls(url, expected):
    assert SmtpTarget.parse(url) == expected


@pytest.mark.parametrize("url", ["http://x:25", "smtp://:25", "smtp://host:port", "host:25"])
def test_bad_urls_fail_when_the_config_is_validated(url):
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"smtp_url": url}, EmailConfig)


def test_password_stays_out_of_logs():
    target = SmtpTarget.parse("smtps://user:hunter2@mail.example.com")
    assert "hunter2" not in str(target) and "hunter2" not in repr(target)


def test_resolution_order(monkeypatch):
    monkeypatch.delenv("PIGEONHOLE_SMTP_URL", raising=False)
    assert SmtpTarget.resolve(EmailConfig()) == SmtpTarget.parse(DEFAULT_URL)
    monkeypatch.setenv("PIGEONHOLE_SMTP_URL", "smtp://env-relay:25")
    assert SmtpTarget.resolve(EmailConfig()).host == "env-relay"
    assert SmtpTarget.resolve(EmailConfig(smtp_url="smtp://own:25")).host == "own"


def test_unknown_fields_are_rejected():
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert({"smtp_host": "x"}, EmailConfig)
