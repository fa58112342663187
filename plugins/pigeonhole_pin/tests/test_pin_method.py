from datetime import timedelta

import msgspec
import pytest
from pigeonhole.api import InvalidSecret
from pigeonhole_pin import PinConfig, PinMethod, PinPlugin


def method(**config) -> PinMethod:
    return PinMethod(msgspec.convert(config, PinConfig))


def test_plugin_contributes_a_pin_method_with_the_tenant_config():
    plugin = PinPlugin(PinConfig(length=8))
    [contributed] = plugin.pigeonhole_access_methods()
    assert contributed.name == "pin"
    assert len(contributed.new_secret()) == 8


@pytest.mark.parametrize("length", [4, 6, 12])
def test_secret_is_zero_padded_digits_of_the_configured_length(length):
    m = method(length=length)
    for _ in range(200):
        code = m.new_secret()
        assert len(code) == length
        assert code.isascii() and code.isdigit()


def test_leading_zeros_are_kept():
    m = method(length=4)
    assert any(m.new_secret().startswith("0") for _ in range(2000))


def test_secrets_are_spread():
    m = method()
    assert len({m.new_secret() for _ in range(1000)}) > 990


@pytest.mark.parametrize("length", [3, 13, 0, -1])
def test_length_outside_4_to_12_is_rejected(length):
    with pytest.raises(msgspec.ValidationError):
        method(length=length)


def test_unknown_config_field_is_rejected():
    with pytest.raises(msgspec.ValidationError):
        method(lenght=6)


@pytest.mark.parametrize(
    "presented", ["123456", " 123456 ", "123 456", "123-456", "12 34-56", "1-2-3-4-5-6"]
)
def test_normalize_strips_spaces_and_dashes(presented):
    assert method().normalize(presented) == "123456"


@pytest.mark.parametrize(
    "presented", ["12345", "1234567", "12345a", "", "   ", "１２３４５６", "12345²", "123.456"]
)
def test_normalize_rejects_what_cannot_be_a_code(presented):
    with pytest.raises(InvalidSecret, match="A pickup code has 6 digits"):
        method().normalize(presented)


def test_error_names_the_configured_length():
    with pytest.raises(InvalidSecret, match="has 8 digits"):
        method(length=8).normalize("123456")


def test_lifetime_defaults_to_the_package_wait():
    assert method().lifetime() is None
    assert method(ttl_hours=48).lifetime() == timedelta(hours=48)


def test_max_failures_comes_from_config():
    assert method().max_failures == 5
    assert method(max_failures=3).max_failures == 3


def test_method_works_without_config():
    assert len(PinMethod(None).new_secret()) == 6
