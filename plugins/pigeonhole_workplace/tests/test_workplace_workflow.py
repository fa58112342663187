from datetime import timedelta
from uuid import uuid4

import msgspec
import pytest
from pigeonhole.api import PackageView, Recipient
from pigeonhole_workplace import WorkplaceConfig, WorkplacePlugin, WorkplaceWorkflow

PACKAGE = PackageView(
    id=uuid4(), tracking_id="T1", carrier="UPS", size="M", status="in_locker",
    recipient=Recipient(name="Ann", email="ann@example.com"),
)  # fmt: skip


def workflow(**config) -> WorkplaceWorkflow:
    [made] = WorkplacePlugin(msgspec.convert(config, WorkplaceConfig)).pigeonhole_workflows()
    return made


def test_defaults():
    w = workflow()
    assert w.name == "workplace"
    assert w.hold_period(PACKAGE) == timedelta(hours=72)
    assert w.pickup_methods(PACKAGE) == ["pin"]
    assert w.notify_events() == {
        "package.ready",
        "package.picked_up",
        "package.reminder",
        "package.escalated",
        "package.expired",
        "package.removed",
    }


def test_config_is_followed():
    w = workflow(hold_hours=24, pickup_methods=["pin", "qr"], notify_events=["package.ready"])
    assert w.hold_period(PACKAGE) == timedelta(hours=24)
    assert w.pickup_methods(PACKAGE) == ["pin", "qr"]
    assert w.notify_events() == {"package.ready"}


def test_callers_cannot_change_the_config_through_results():
    w = workflow()
    w.pickup_methods(PACKAGE).append("qr")
    assert w.pickup_methods(PACKAGE) == ["pin"]


def test_defaults_reach_the_json_schema():
    schema = msgspec.json.decode(msgspec.json.encode(msgspec.json.schema(WorkplaceConfig)))
    schema = schema["$defs"]["WorkplaceConfig"]["properties"]
    assert schema["pickup_methods"]["default"] == ["pin"]
    assert schema["notify_events"]["default"][:2] == ["package.ready", "package.picked_up"]


def test_config_round_trips_as_json_lists():
    config = msgspec.json.decode(b'{"pickup_methods": ["pin", "qr"]}', type=WorkplaceConfig)
    assert msgspec.json.decode(msgspec.json.encode(config))["pickup_methods"] == ["pin", "qr"]


@pytest.mark.parametrize(
    "config",
    [{"hold_hours": 0}, {"hold_hours": -5}, {"pickup_methods": []}, {"hold_hour": 3}],
)
def test_bad_config_is_rejected(config):
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert(config, WorkplaceConfig)


def test_workflow_works_without_config():
    assert WorkplaceWorkflow(None).hold_period(PACKAGE) == timedelta(hours=72)


# --- the timeline (H4) ---------------------------------------------------------------


def _steps(w):
    return [(s.name, s.after, s.event, s.notify, s.expire) for s in w.timeline(PACKAGE)]


def test_default_timeline_reminds_escalates_and_shelves():
    w = workflow()
    assert _steps(w) == [
        ("reminder", timedelta(hours=24), "package.reminder", ("recipient",), False),
        ("escalation", timedelta(hours=48), "package.escalated", ("recipient", "key_contact"), False),
        ("expire", timedelta(hours=72), "package.expired", ("recipient",), True),
    ]
    assert w.expiry_destination(PACKAGE) == "shelf"
    assert w.accepts(PACKAGE) is None


def test_timeline_follows_the_config():
    w = workflow(hold_hours=100, reminder_hours=10, escalation_hours=0)
    assert [(name, after) for name, after, *_ in _steps(w)] == [
        ("reminder", timedelta(hours=10)),
        ("expire", timedelta(hours=100)),
    ]


def test_a_short_hold_drops_the_default_steps_that_do_not_fit():
    assert [s[0] for s in _steps(workflow(hold_hours=24))] == ["expire"]
    assert [s[0] for s in _steps(workflow(hold_hours=30))] == ["reminder", "expire"]
    assert [s[0] for s in _steps(workflow(hold_hours=30, reminder_hours=2, escalation_hours=20))] == [
        "reminder",
        "escalation",
        "expire",
    ]


@pytest.mark.parametrize(
    "config, words",
    [
        (
            {"reminder_hours": 48, "escalation_hours": 24},
            "escalation_hours (24) must come after reminder_hours (48)",
        ),
        ({"hold_hours": 48, "escalation_hours": 48}, "hold_hours (48) is when the package expires"),
        ({"hold_hours": 10, "reminder_hours": 10}, "must come after reminder_hours (10)"),
    ],
)
def test_steps_out_of_order_are_rejected(config, words):
    with pytest.raises(msgspec.ValidationError, match=words.replace("(", r"\(").replace(")", r"\)")):
        msgspec.convert(config, WorkplaceConfig)
