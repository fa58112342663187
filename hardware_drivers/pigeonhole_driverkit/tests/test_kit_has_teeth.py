"""The kit passes a correct driver and fails drivers that break its rules."""

import os

import pytest

pytest_plugins = ["pytester"]
HERE = os.path.dirname(os.path.abspath(__file__))

SUITE = """
import sys
sys.path.insert(0, {here!r})
import pytest_asyncio
from pigeonhole.hardware.simulation import BankView
from pigeonhole_driverkit import DriverConformance, Rig
from toyboard import {driver}, ToySimulator


class TestToy(DriverConformance):
    wait_timeout = 1.0

    @pytest_asyncio.fixture
    async def rig(self):
        sim = ToySimulator([1, 2])
        path = await sim.start_pty()
        doors = list(range(1, 17))
        yield Rig({driver}, {{"port": path, "boards": [1, 2], "poll_interval_ms": 20, "settle_ms": 0,
                   "reply_timeout_ms": 100, "reconnect_ms": 50}}, doors,
                  BankView(sim, {{d: (1 + (d - 1) // 8, 1 + (d - 1) % 8) for d in doors}}),
                  bad_configs=[({{"boards": [1]}}, "exactly one of")])
        await sim.stop()
"""


def run_kit(pytester, driver):
    pytester.makepyfile(test_toy=SUITE.format(here=HERE, driver=driver))
    return pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "-q", "-o", "asyncio_default_fixture_loop_scope=function"
    )


def failures(result):
    return {line.split("::")[-1].split(" ")[0] for line in result.outlines if line.startswith("FAILED ")}


@pytest.mark.parametrize(
    ("driver", "caught_by"),
    [
        ("RepeatingDriver", {"test_a_lost_reply_never_repeats_the_unlock"}),
        (
            "HopefulDriver",
            {"test_a_jammed_lock_is_jammed_not_opened", "test_unlocking_an_open_door_is_already_open"},
        ),
        ("DeafDriver", {"test_a_forced_door_is_reported", "test_a_door_closed_by_a_person_is_reported"}),
    ],
)
def test_the_kit_fails_a_driver_that_breaks_a_rule(pytester, driver, caught_by):
    result = run_kit(pytester, driver)
    assert caught_by <= failures(result), result.stdout.str()


def test_the_kit_passes_a_correct_driver(pytester):
    result = run_kit(pytester, "ToyDriver")
    result.assert_outcomes(passed=18)
