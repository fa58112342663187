"""The per-bank configuration as the host validates it, and the plugin as the host finds it."""

from __future__ import annotations

from types import SimpleNamespace

import msgspec
import pytest
from pigeonhole.domain.errors import Invalid
from pigeonhole.domain.lockers import validate_driver
from pigeonhole.runtime import registry
from pigeonhole_modbus import ModbusConfig, ModbusDriver, ModbusPlugin
from pigeonhole_modbus.config import DoorMap


def _ctx():
    """What validate_driver reads of a request context: the tenant's lock drivers."""
    return SimpleNamespace(plugins=SimpleNamespace(lock_drivers=lambda: {"modbus": ModbusDriver}))


def test_the_plugin_is_installed_under_its_entry_point():
    found = registry.get("modbus")
    assert found.cls is ModbusPlugin
    assert found.distribution == "pigeonhole-modbus"
    assert ModbusPlugin(None).pigeonhole_lock_drivers() == [ModbusDriver]


def test_a_good_configuration_is_accepted_as_the_host_stores_it():
    raw = {
        "transport": "rtu",
        "serial_port": "/dev/ttyUSB1",
        "baudrate": 9600,
        "doors": [{"door": 1, "unit": 2, "coil": 0, "input": 7}, {"door": 2, "unit": 3, "coil": 0}],
        "open_when": "clear",
        "pulse": "host",
    }
    config = validate_driver(_ctx(), "modbus", raw)
    assert isinstance(config, ModbusConfig)
    assert config.doors[0] == DoorMap(door=1, unit=2, coil=0, input=7)
    assert config.mapping([1, 2])[2].sensor == 0
    # The host stores it as JSON; the agent decodes it back.
    assert msgspec.json.decode(msgspec.json.encode(config), type=ModbusConfig) == config


def test_defaults_map_door_n_to_relay_n_minus_1_of_unit_1():
    mapping = ModbusConfig().mapping([1, 2, 8])
    assert [(m.door, m.unit, m.coil, m.sensor) for m in mapping.values()] == [
        (1, 1, 0, 0),
        (2, 1, 1, 1),
        (8, 1, 7, 7),
    ]


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ({"transport": "udp"}, "`$.transport`"),
        ({"baudrate": 9601}, "`$.baudrate`"),
        ({"pulse_ms": 50}, "`$.pulse_ms`"),
        ({"port": 0}, "`$.port`"),
        ({"unit": 248}, "`$.unit`"),
        ({"doors": [{"door": 1}]}, "missing required field `coil`"),
        ({"doors": [{"door": 1, "coil": 0}, {"door": 1, "coil": 1}]}, "door 1 is mapped twice"),
        (
            {"doors": [{"door": 1, "coil": 4, "unit": 2}, {"door": 2, "coil": 4, "unit": 2}]},
            "coil 4 of unit 2 drives two doors",
        ),
        ({"pulse": "forever"}, "`$.pulse`"),
        ({"colis": []}, "colis"),
    ],
)
def test_a_bad_configuration_is_refused_naming_what_is_wrong(raw, message):
    with pytest.raises(Invalid) as caught:
        validate_driver(_ctx(), "modbus", raw)
    assert message in str(caught.value)
    assert "lock driver 'modbus'" in str(caught.value)


def test_rtu_gap_is_three_and_a_half_characters():
    assert ModbusConfig(transport="rtu", baudrate=9600).gap_seconds() == pytest.approx(3.5 * 10 / 9600)
    assert ModbusConfig(transport="rtu", baudrate=19200, parity="E").gap_seconds() == pytest.approx(
        3.5 * 11 / 19200
    )
    assert ModbusConfig(transport="rtu", baudrate=115200).gap_seconds() == pytest.approx(0.00175)
    assert ModbusConfig(transport="tcp").gap_seconds() == 0
    assert ModbusConfig(transport="rtu", gap_ms=10).gap_seconds() == pytest.approx(0.01)
