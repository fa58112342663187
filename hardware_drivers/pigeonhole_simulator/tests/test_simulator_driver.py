import asyncio

import msgspec
import pytest
import pytest_asyncio
from pigeonhole.api import DoorState, UnlockOutcome
from pigeonhole_simulator import Fault, SimulatorConfig, SimulatorDriver, SimulatorPlugin, registry
from simulator_fakes import Listener

pytestmark = pytest.mark.asyncio
OPEN, CLOSED = DoorState.OPEN, DoorState.CLOSED


@pytest_asyncio.fixture
async def make_driver():
    started = []

    async def make(doors=(1, 2, 3, 4), listener=None, **config):
        cls = SimulatorPlugin(None).pigeonhole_lock_drivers()[0]
        driver = cls(msgspec.convert(config, cls.Config), doors, listener or Listener())
        await driver.start()
        started.append(driver)
        return driver

    yield make
    for driver in started:
        await driver.stop()


async def test_unlock_opens_a_closed_door_without_telling_the_listener(make_driver):
    driver = await make_driver()
    assert await driver.unlock(2) is UnlockOutcome.OPENED
    assert (await driver.door_states())[2] is OPEN
    assert driver.listener.changes == []


async def test_unlocking_an_open_door_says_so(make_driver):
    driver = await make_driver()
    await driver.unlock(1)
    assert await driver.unlock(1) is UnlockOutcome.ALREADY_OPEN


async def test_close_reports_to_the_listener(make_driver):
    driver = await make_driver()
    await driver.unlock(3)
    await driver.board.close(3)
    assert driver.listener.changes == [(3, CLOSED)]
    await driver.board.close(3)  # nothing moved: nothing to report
    assert driver.listener.changes == [(3, CLOSED)]


async def test_force_open_reports_to_the_listener(make_driver):
    driver = await make_driver()
    await driver.board.force_open(4)
    assert driver.listener.changes == [(4, OPEN)]
    assert await driver.unlock(4) is UnlockOutcome.ALREADY_OPEN


async def test_no_answer_leaves_the_door_alone(make_driver):
    driver = await make_driver()
    driver.board.set_fault(1, "no_answer")
    assert await driver.unlock(1) is UnlockOutcome.NO_ANSWER
    assert (await driver.door_states())[1] is CLOSED


async def test_jammed_door_stays_closed_until_healed(make_driver):
    driver = await make_driver()
    driver.board.set_fault(1, Fault.JAMMED)
    assert await driver.unlock(1) is UnlockOutcome.JAMMED
    assert (await driver.door_states())[1] is CLOSED
    driver.board.set_fault(1, None)
    assert await driver.unlock(1) is UnlockOutcome.OPENED


async def test_faults_are_per_door(make_driver):
    driver = await make_driver()
    driver.board.set_fault(1, Fault.JAMMED)
    assert await driver.unlock_many([1, 2]) == {
        1: UnlockOutcome.JAMMED,
        2: UnlockOutcome.OPENED,
    }


async def test_unknown_door_is_an_error_naming_it(make_driver):
    driver = await make_driver()
    with pytest.raises(ValueError, match="Door 9 "):
        await driver.unlock(9)
    with pytest.raises(ValueError, match="Door 0 "):
        await driver.board.close(0)


async def test_board_size_can_differ_from_the_bank():
    driver = SimulatorDriver(SimulatorConfig(doors=2), [1, 2, 3, 4], Listener())
    assert list(await driver.door_states()) == [1, 2]
    with pytest.raises(ValueError, match="Door 3"):
        await driver.unlock(3)


async def test_auto_close(make_driver):
    driver = await make_driver(auto_close_after_ms=20)
    assert await driver.unlock(1) is UnlockOutcome.OPENED
    await asyncio.sleep(0.1)
    assert (await driver.door_states())[1] is CLOSED
    assert driver.listener.changes == [(1, CLOSED)]


async def test_auto_close_is_cancelled_by_a_manual_close(make_driver):
    driver = await make_driver(auto_close_after_ms=200)
    await driver.unlock(1)
    await asyncio.sleep(0.1)
    await driver.board.close(1)
    await driver.unlock(1)  # reopened: the first timer must not close it early
    await asyncio.sleep(0.15)
    assert (await driver.door_states())[1] is OPEN
    await asyncio.sleep(0.2)
    assert driver.listener.changes == [(1, CLOSED), (1, CLOSED)]


async def test_stop_cancels_pending_closes(make_driver):
    driver = await make_driver(auto_close_after_ms=20)
    await driver.unlock(1)
    await driver.stop()
    await asyncio.sleep(0.05)
    assert driver.listener.changes == []


async def test_unlock_delay(make_driver):
    driver = await make_driver(unlock_delay_ms=50)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await driver.unlock(1)
    assert loop.time() - started >= 0.045


async def test_registry_follows_start_and_stop(make_driver):
    listener = Listener()
    driver = await make_driver(listener=listener)
    assert registry.get(listener.bank_id) is driver.board
    assert registry.get(str(listener.bank_id).upper()) is driver.board
    assert driver.board.tenant_id == listener.tenant_id
    await driver.stop()
    assert registry.get(listener.bank_id) is None


async def test_a_restarted_driver_is_not_unregistered_by_the_old_one(make_driver):
    listener = Listener()
    old = await make_driver(listener=listener)
    new = await make_driver(listener=listener)
    await old.stop()
    assert registry.get(listener.bank_id) is new.board


async def test_listener_without_ids_still_works():
    class Bare:
        async def door_changed(self, door, state):
            pass

    driver = SimulatorDriver(SimulatorConfig(), [1], Bare())
    await driver.start()
    assert await driver.unlock(1) is UnlockOutcome.OPENED
    await driver.stop()


async def test_health_mentions_faults(make_driver):
    driver = await make_driver()
    driver.board.set_fault(2, Fault.NO_ANSWER)
    health = await driver.health()
    assert health.ok
    assert "door 2: no_answer" in health.detail


@pytest.mark.parametrize(
    "config", [{"unlock_delay_ms": -1}, {"doors": 0}, {"auto_close_after_ms": -5}, {"door": 3}]
)
async def test_bad_config_is_rejected(config):
    with pytest.raises(msgspec.ValidationError):
        msgspec.convert(config, SimulatorConfig)
