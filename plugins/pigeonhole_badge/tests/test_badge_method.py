"""What a badge reader types becomes the Personnel ID to look up."""

from __future__ import annotations

import pytest
from pigeonhole.api import InvalidSecret

from pigeonhole_badge import BadgeConfig, BadgeMethod


def test_a_badge_identifies_a_person_and_is_never_issued():
    method = BadgeMethod()
    assert method.identifies_person is True
    with pytest.raises(NotImplementedError):
        method.new_secret()


def test_reader_noise_is_removed():
    method = BadgeMethod(BadgeConfig(strip_prefix="%", strip_suffix=";"))
    assert method.normalize("%E-1042;\r\n") == "E-1042"
    assert method.normalize(" E-1042 ") == "E-1042"


@pytest.mark.parametrize("bad", ["", "   \n", "x" * 65])
def test_empty_or_overlong_reads_are_refused(bad):
    with pytest.raises(InvalidSecret):
        BadgeMethod().normalize(bad)
