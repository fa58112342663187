"""The QR token's form: long, recognizable, tolerant of what scanners type."""

from __future__ import annotations

import pytest
from pigeonhole.api import InvalidSecret

from pigeonhole_qr import LENGTH, PREFIX, QrMethod


def test_tokens_are_long_random_and_prefixed():
    method = QrMethod()
    tokens = {method.new_secret() for _ in range(200)}
    assert len(tokens) == 200
    for token in tokens:
        assert token.startswith(PREFIX) and len(token) == len(PREFIX) + LENGTH
        assert LENGTH * 5 >= 128, "at least 128 random bits"
        assert token.isalnum(), "URL-safe"
        assert not token[len(PREFIX) :].isdigit()


def test_what_a_scanner_types_is_normalized():
    method = QrMethod()
    token = method.new_secret()
    assert method.normalize(token + "\r\n") == token
    assert method.normalize(token.lower()) == token
    assert method.normalize(f"  {token[:10]}-{token[10:]} ") == token


@pytest.mark.parametrize("bad", ["123456", "PHQ123", "", "XYZ" + "A" * LENGTH, "PHQ" + "U" * LENGTH])
def test_other_values_are_refused_with_the_rule(bad):
    with pytest.raises(InvalidSecret, match="starts with PHQ"):
        QrMethod().normalize(bad)
