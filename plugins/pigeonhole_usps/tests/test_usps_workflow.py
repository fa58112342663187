from datetime import timedelta
from uuid import uuid4

import msgspec
import pytest
from pigeonhole.api import PackageView, Recipient
from pigeonhole_usps import UspsConfig, UspsPlugin, UspsWorkflow


def package(email="ann@example.com", phone=None) -> PackageView:
    return PackageView(
        id=uuid4(), tracking_id="T1", carrier="USPS", size="m", status="received",
        recipient=Recipient(name="Ann", email=email, phone=phone),
    )  # fmt: skip


def workflow(**config) -> UspsWorkflow:
    [made] = UspsPlugin(msgspec.convert(config, UspsConfig)).pigeonhole_workflows()
    return made


def test_defaults_three_reminders_then_the_counter():
    w = workflow()
    assert w.name == "usps"
    assert w.hold_period(package()) == timedelta(days=5)
    assert w.pickup_methods(package()) == ["pin", "qr"]
    steps = w.timeline(package())
    assert [(s.name, s.after, s.event, s.expire) for s in steps] == [
        ("reminder-1", timedelta(hours=24), "package.reminder", False),
        ("reminder-2", timedelta(hours=48), "package.reminder", False),
        ("reminder-3", timedelta(hours=96), "package.reminder", False),
        ("expire", timedelta(days=5), "package.expired", True),
    ]
    assert [s.data for s in steps[:3]] == [{"reminder": n, "reminders": 3} for n in (1, 2, 3)]
    assert steps[-1].data["counter_name"] == "the retail counter"
    assert w.expiry_destination(package()) == "counter"
    assert {"package.ready", "package.reminder", "package.expired"} <= w.notify_events()


def test_config_is_followed():
    w = workflow(hold_days=3, reminder_hours=[12], expiry_destination="shelf", pickup_methods=["pin"])
    assert [(s.name, s.after) for s in w.timeline(package())] == [
        ("reminder-1", timedelta(hours=12)),
        ("expire", timedelta(days=3)),
    ]
    assert w.timeline(package())[0].data == {"reminder": 1, "reminders": 1}
    assert w.expiry_destination(package()) == "shelf"
    assert [s.name for s in workflow(reminder_hours=[]).timeline(package())] == ["expire"]


def test_k2_someone_the_office_can_reach():
    w = workflow()
    assert w.accepts(package()) is None
    assert w.accepts(package(email=None, phone="+15551234567")) is None
    assert "email address or phone number" in w.accepts(package(email=None))
    assert workflow(require_contact=False).accepts(package(email=None)) is None


@pytest.mark.parametrize(
    "config",
    [
        {"hold_days": 0},
        {"hold_days": 61},
        {"reminder_hours": [48, 24]},
        {"reminder_hours": [24, 24]},
        {"hold_days": 1, "reminder_hours": [24]},
        {"expiry_destination": "bin"},
        {"pickup_methods": []},
        {"hold_day": 3},
    ],
)
def test_bad_config_is_rejected(config):
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert(config, UspsConfig)
