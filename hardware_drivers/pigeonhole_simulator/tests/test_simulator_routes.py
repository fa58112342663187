from uuid import uuid4

import pytest
from litestar.testing import TestClient
from pigeonhole.api import DoorState, UnlockOutcome
from simulator_app import DriverThread, make_app
from simulator_fakes import Listener

ACME, GLOBEX = uuid4(), uuid4()


@pytest.fixture
def bank():
    running = DriverThread(Listener(tenant_id=ACME), doors=(1, 2, 3))
    yield running
    running.stop()


@pytest.fixture
def client():
    with TestClient(make_app({"acme": ACME, "globex": GLOBEX})) as c:
        yield c


def url(bank_id, tail="/doors", tenant="acme"):
    return f"/api/v1/t/{tenant}/ext/simulator/banks/{bank_id}{tail}"


def test_door_states(bank, client):
    bank.run(bank.driver.unlock(2))
    response = client.get(url(bank.driver.board.bank_id))
    assert response.status_code == 200
    assert response.json() == {
        "bank_id": str(bank.driver.board.bank_id),
        "doors": [
            {
                "bank_id": str(bank.driver.board.bank_id),
                "door": 1,
                "state": "closed",
                "fault": None,
            },
            {"bank_id": str(bank.driver.board.bank_id), "door": 2, "state": "open", "fault": None},
            {
                "bank_id": str(bank.driver.board.bank_id),
                "door": 3,
                "state": "closed",
                "fault": None,
            },
        ],
    }


def test_close_tells_the_listener_on_the_drivers_own_loop(bank, client):
    bank_id = bank.driver.board.bank_id
    bank.run(bank.driver.unlock(3))
    response = client.post(url(bank_id, "/doors/3/close"))
    assert response.status_code == 200
    assert response.json() == {"bank_id": str(bank_id), "door": 3, "state": "closed", "fault": None}
    listener = bank.driver.listener
    assert listener.changes == [(3, DoorState.CLOSED)]
    assert listener.loops == [bank.loop]


def test_force_open(bank, client):
    response = client.post(url(bank.driver.board.bank_id, "/doors/1/force-open"))
    assert response.status_code == 200
    assert response.json()["state"] == "open"
    assert bank.driver.listener.changes == [(1, DoorState.OPEN)]


def test_fault_is_set_and_cleared(bank, client):
    bank_id = bank.driver.board.bank_id
    response = client.put(url(bank_id, "/doors/2/fault"), json={"fault": "jammed"})
    assert response.status_code == 200
    assert response.json()["fault"] == "jammed"
    assert bank.run(bank.driver.unlock(2)) is UnlockOutcome.JAMMED
    response = client.put(url(bank_id, "/doors/2/fault"), json={"fault": None})
    assert response.json()["fault"] is None
    assert bank.run(bank.driver.unlock(2)) is UnlockOutcome.OPENED


def test_unknown_fault_is_a_bad_request(bank, client):
    response = client.put(
        url(bank.driver.board.bank_id, "/doors/2/fault"), json={"fault": "on_fire"}
    )
    assert response.status_code == 400


@pytest.mark.parametrize(
    ("method", "tail"),
    [("GET", "/doors"), ("POST", "/doors/1/close"), ("POST", "/doors/1/force-open"), ("PUT", "/doors/1/fault")],
)  # fmt: skip
def test_another_tenants_bank_is_not_found(bank, client, method, tail):
    bank_id = bank.driver.board.bank_id
    response = client.request(method, url(bank_id, tail, tenant="globex"), json={"fault": "jammed"})
    assert response.status_code == 404
    assert response.json()["detail"] == f"No simulated board for bank {bank_id}"
    assert bank.driver.board.door_states()[1] is DoorState.CLOSED
    assert bank.driver.board.faults == {}


def test_unknown_bank_is_not_found(client):
    bank_id = uuid4()
    response = client.get(url(bank_id))
    assert response.status_code == 404
    assert response.json()["detail"] == f"No simulated board for bank {bank_id}"


def test_unknown_door_is_not_found(bank, client):
    response = client.post(url(bank.driver.board.bank_id, "/doors/9/close"))
    assert response.status_code == 404
    assert "no door 9" in response.json()["detail"]


def test_routes_can_be_mounted_in_several_apps(bank):
    for _ in range(2):
        with TestClient(make_app({"acme": ACME})) as c:
            assert c.get(url(bank.driver.board.bank_id)).status_code == 200
