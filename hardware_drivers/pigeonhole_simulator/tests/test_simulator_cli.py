from uuid import uuid4

import click
import pytest
from click.testing import CliRunner
from litestar.testing import TestClient
from pigeonhole_simulator import SimulatorPlugin, cli
from simulator_app import DriverThread, make_app
from simulator_fakes import Listener

ACME, GLOBEX = uuid4(), uuid4()


@pytest.fixture
def bank():
    running = DriverThread(Listener(tenant_id=ACME), doors=(1, 2))
    yield running
    running.stop()


@pytest.fixture
def root(monkeypatch):
    """The host's root command, with the server behind it replaced by the test app."""
    seen = []

    def client(url, key):
        seen.append((url, key))
        return TestClient(make_app({"acme": ACME, "globex": GLOBEX}))

    monkeypatch.setattr(cli, "_client", client)

    @click.group()
    def pigeonhole():
        pass

    SimulatorPlugin(None).pigeonhole_cli_commands(pigeonhole)
    pigeonhole.seen = seen
    return pigeonhole


def run(root, *args, tenant="acme", bank=None, env=None):
    base = ["simulator", *args, "--tenant", tenant, "--bank", str(bank)]
    return CliRunner().invoke(root, base, env=env or {}, catch_exceptions=False)


def test_doors(root, bank):
    bank.run(bank.driver.unlock(2))
    result = run(root, "doors", bank=bank.driver.board.bank_id)
    assert result.exit_code == 0, result.output
    assert result.stdout == "door 1: closed\ndoor 2: open\n"


def test_close_force_open_and_fault(root, bank):
    bank_id = bank.driver.board.bank_id
    assert run(root, "force-open", "1", bank=bank_id).stdout == "door 1: open\n"
    assert run(root, "close", "1", bank=bank_id).stdout == "door 1: closed\n"
    assert (
        run(root, "fault", "2", "jammed", bank=bank_id).stdout == "door 2: closed (fault: jammed)\n"
    )
    assert bank.driver.board.faults == {2: "jammed"}
    assert run(root, "fault", "2", "none", bank=bank_id).stdout == "door 2: closed\n"
    assert bank.driver.board.faults == {}


def test_url_and_key_come_from_the_environment(root, bank):
    env = {"PIGEONHOLE_URL": "http://locker.example:9000", "PIGEONHOLE_API_KEY": "k-123"}
    run(root, "doors", bank=bank.driver.board.bank_id, env=env)
    assert root.seen == [("http://locker.example:9000", "k-123")]


def test_defaults(root, bank, monkeypatch):
    monkeypatch.delenv("PIGEONHOLE_URL", raising=False)
    monkeypatch.delenv("PIGEONHOLE_API_KEY", raising=False)
    run(root, "doors", bank=bank.driver.board.bank_id)
    assert root.seen == [("http://127.0.0.1:8000", None)]


def test_server_error_exits_non_zero_with_its_message(root, bank):
    bank_id = bank.driver.board.bank_id
    result = run(root, "close", "1", tenant="globex", bank=bank_id)
    assert result.exit_code != 0
    assert f"No simulated board for bank {bank_id}" in result.output


def test_bad_bank_id_is_refused_before_calling(root):
    result = run(root, "doors", bank="not-a-uuid")
    assert result.exit_code == 2
    assert root.seen == []


def test_api_key_is_sent_as_bearer():
    with cli._client("http://x", "k-1") as client:
        assert client.headers["Authorization"] == "Bearer k-1"
    with cli._client("http://x", None) as client:
        assert "Authorization" not in client.headers


def test_unreachable_server_exits_non_zero():
    @click.group()
    def pigeonhole():
        pass

    SimulatorPlugin(None).pigeonhole_cli_commands(pigeonhole)
    result = CliRunner().invoke(
        pigeonhole,
        [
            "simulator",
            "doors",
            "--url",
            "http://127.0.0.1:9",
            "--tenant",
            "acme",
            "--bank",
            str(uuid4()),
        ],
    )
    assert result.exit_code == 1
    assert "cannot reach http://127.0.0.1:9" in result.output
