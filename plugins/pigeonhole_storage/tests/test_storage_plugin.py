import msgspec
import pytest
from pigeonhole.api import StoragePolicy
from pigeonhole_storage import StorageConfig, StoragePlugin


def policy(**config) -> StoragePolicy:
    [made] = StoragePlugin(msgspec.convert(config, StorageConfig)).pigeonhole_storage_policies()
    return made


def test_defaults():
    p = policy()
    assert p.modes == ("fixed", "flexible", "open")
    assert (p.fixed_hours, p.max_hours, p.max_advance_hours, p.reminder_minutes) == (8, 24, 168, 30)
    assert p.sizes == ("s", "m", "l")
    assert p.keep_for_deliveries == {}
    assert p.access_method == "pin"


def test_config_is_followed():
    p = policy(modes=["flexible"], max_hours=6, keep_for_deliveries={"s": 2, "m": 1}, sizes=["m"])
    assert p.modes == ("flexible",)
    assert p.max_hours == 6
    assert p.keep_for_deliveries == {"s": 2, "m": 1}
    assert p.sizes == ("m",)


def test_works_without_config():
    [p] = StoragePlugin(None).pigeonhole_storage_policies()
    assert p == StoragePolicy(sizes=("s", "m", "l"))


def test_defaults_reach_the_json_schema():
    schema = msgspec.json.decode(msgspec.json.encode(msgspec.json.schema(StorageConfig)))
    props = schema["$defs"]["StorageConfig"]["properties"]
    assert props["modes"]["default"] == ["fixed", "flexible", "open"]
    assert props["keep_for_deliveries"]["default"] == {}


@pytest.mark.parametrize(
    "config",
    [
        {"modes": []},
        {"modes": ["forever"]},
        {"fixed_hours": 0},
        {"max_hours": -1},
        {"max_advance_hours": -1},
        {"reminder_minutes": -5},
        {"sizes": ["huge"]},
        {"keep_for_deliveries": {"huge": 1}},
        {"keep_for_deliveries": {"s": -1}},
        {"fixed_hours": 30, "max_hours": 24},
        {"max_hour": 3},
    ],
)
def test_bad_config_is_rejected(config):
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert(config, StorageConfig)
