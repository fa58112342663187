"""A tenant's plugins: enabled and configured per tenant, changed without a restart (A8).

An outside vendor's plugin is built from a folder outside the repo, installed
into a folder of its own (the venv stays clean) and loaded by a real
``pigeonhole serve`` through PYTHONPATH, exactly as a deployment installs a
plugin next to the host. The plugin appends every custody event it observes
to a file named in its configuration, so the file shows who called it, for
which tenant, built with which configuration.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path

import httpx
import pytest

from tests.support import tenants
from tests.support.smtp import free_port, pickup_code

ROOT = Path(__file__).resolve().parents[1]
PIGEONHOLE = str(Path(sys.executable).with_name("pigeonhole"))
SECRET = "test-secret-key-not-for-production"
PLUGIN = "custody_log"
DISTRIBUTION = "acme-custody-log"

PYPROJECT = """\
[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[project]
name = "acme-custody-log"
version = "0.3.1"
description = "Acme's custody log for Pigeonhole"
requires-python = ">=3.11"
dependencies = ["pigeonhole-platform"]

[project.entry-points."pigeonhole.plugins"]
custody_log = "acme_custody_log:CustodyLogPlugin"

[tool.hatch.build.targets.wheel]
packages = ["acme_custody_log"]
"""

# Deliberately without forbid_unknown_fields: the host must refuse a mistyped
# key even when the vendor forgot to.
PLUGIN_SOURCE = '''\
"""One line per custody event, for an outside auditor."""

import msgspec
from pigeonhole.api import CustodyEvent, Plugin, hookimpl


class CustodyLogConfig(msgspec.Struct):
    log_path: str
    label: str = "acme"


class CustodyLogPlugin(Plugin):
    name = "custody_log"
    Config = CustodyLogConfig
    description = "Appends every custody event to a file"

    @hookimpl
    def pigeonhole_custody_event(self, event: CustodyEvent) -> None:
        line = f"{event.tenant} {event.kind} {self.config.label} {event.package_id or '-'}\\n"
        with open(self.config.log_path, "a", encoding="utf-8") as log:
            log.write(line)
'''


@pytest.fixture(scope="module")
def vendor_site(tmp_path_factory) -> Path:
    """The vendor's distribution, built and installed into a folder of its own."""
    root = tmp_path_factory.mktemp("vendor")
    assert ROOT not in root.parents, "the vendor's plugin must live outside the repo"
    source = root / "acme-custody-log"
    (source / "acme_custody_log").mkdir(parents=True)
    (source / "pyproject.toml").write_text(PYPROJECT)
    (source / "acme_custody_log" / "__init__.py").write_text(PLUGIN_SOURCE)
    site = root / "site"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--quiet",
            "--no-deps",
            "--no-build-isolation",
            "--no-index",
            "--target",
            str(site),
            str(source),
        ],
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, f"pip install failed:\n{done.stdout}\n{done.stderr}"
    return site


def pigeonhole_env(database: str, smtp, data_dir: Path, site: Path | None = None) -> dict[str, str]:
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("PIGEONHOLE_") and k not in ("PORT", "PYTHONPATH")
    }
    env.update(
        PIGEONHOLE_DATABASE_URL=database,
        PIGEONHOLE_SECRET_KEY=SECRET,
        PIGEONHOLE_SMTP_URL=smtp.url,
        PIGEONHOLE_DATA_DIR=str(data_dir),
    )
    if site is not None:
        env["PYTHONPATH"] = str(site)
    return env


def pigeonhole(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    done = subprocess.run([PIGEONHOLE, *args], env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"pigeonhole {' '.join(args)}:\n{done.stdout}\n{done.stderr}"
    return done


class Server:
    """``pigeonhole serve`` in its own process; always stopped by the fixture."""

    def __init__(self, env: dict[str, str], log: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.output = log.open("w")
        self.process = subprocess.Popen(
            [PIGEONHOLE, "serve", "--port", str(self.port)],
            env=env,
            stdout=self.output,
            stderr=subprocess.STDOUT,
        )

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"pigeonhole serve exited:\n{self.log.read_text()}")
            try:
                if httpx.get(f"{self.url}/health", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"pigeonhole serve did not become healthy:\n{self.log.read_text()}")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.output.close()


@dataclass
class TenantApi:
    """One tenant of the running server, with the keys its manifest gave it."""

    http: httpx.Client
    slug: str

    def call(self, role: str, method: str, path: str, json=None) -> httpx.Response:
        return self.http.request(
            method,
            f"/api/v1/t/{self.slug}{path}",
            json=json,
            headers={"Authorization": f"Bearer ph_test_{self.slug}_{role}"},
        )

    def ok(self, role: str, method: str, path: str, json=None):
        response = self.call(role, method, path, json)
        assert response.status_code < 300, f"{method} {path}: {response.status_code} {response.text}"
        return response.json() if response.content else None

    def bank(self, name: str) -> str:
        return next(b["id"] for b in self.ok("operator", "GET", "/banks") if b["name"] == name)

    def plugin(self, name: str) -> dict:
        return next(p for p in self.ok("admin", "GET", "/plugins") if p["name"] == name)


@dataclass
class Deployment:
    server: Server
    http: httpx.Client
    a: TenantApi
    b: TenantApi
    smtp: object
    logs: Path


@pytest.fixture
def deployment(database, smtp, vendor_site, tmp_path):
    """Two tenants applied from manifests, then a server that can load the vendor's plugin."""
    env = pigeonhole_env(database, smtp, tmp_path / "data", vendor_site)
    slugs = [f"{prefix}{uuid.uuid4().hex[:8]}" for prefix in ("pa", "pb")]
    for slug in slugs:
        pigeonhole(env, "tenant", "apply", str(tenants.write(tmp_path / "tenants", slug)))
    server = Server(env, tmp_path / "serve.log")
    try:
        server.wait_ready()
        with httpx.Client(base_url=server.url, timeout=30) as http:
            logs = tmp_path / "logs"
            logs.mkdir()
            yield Deployment(server, http, TenantApi(http, slugs[0]), TenantApi(http, slugs[1]), smtp, logs)
    finally:
        server.stop()


def wait_for_mail(smtp, address: str):
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        found = smtp.to(address)
        if found:
            return found[0]
        time.sleep(0.05)
    raise AssertionError(f"no mail to {address}")


def deliver(t: TenantApi, smtp, *, pickup: bool = True) -> tuple[str, list[str]]:
    """Deposit a package, close its door, pick it up: returns its id and event kinds."""
    bank = t.bank("Lobby")
    email = f"r{uuid.uuid4().hex[:10]}@example.test"
    package = t.ok(
        "operator",
        "POST",
        "/packages",
        {
            "tracking_id": f"TRK-{uuid.uuid4().hex[:10].upper()}",
            "carrier": "UPS",
            "size": "s",
            "recipient": {"name": "Ada Lovelace", "email": email},
            "bank_id": bank,
        },
    )
    t.ok("admin", "POST", f"/ext/simulator/banks/{bank}/doors/{package['door']['door']}/close")
    if pickup:
        code = pickup_code(wait_for_mail(smtp, email))
        t.ok("kiosk", "POST", f"/banks/{bank}/pickup", {"code": code})
    events = t.ok("operator", "GET", f"/packages/{package['id']}/events")
    return package["id"], [e["kind"] for e in events]


def lines(log: Path) -> list[str]:
    return log.read_text().splitlines() if log.exists() else []


def unordered(observed: list[str]) -> tuple[str, list[str]]:
    """The change's own event, then the package's events in any order.

    The log has commit order; the events API orders by timestamp, and two events
    of one transaction may share it.
    """
    return observed[0], sorted(observed[1:])


def test_the_vendor_plugin_is_not_installed_in_the_venv(vendor_site):
    assert PLUGIN not in {ep.name for ep in entry_points(group="pigeonhole.plugins")}
    assert (vendor_site / "acme_custody_log" / "__init__.py").exists()


def test_a_plugin_reaches_only_the_tenant_that_enabled_it(deployment):
    d = deployment
    a, b = d.a, d.b
    log = d.logs / "a.log"
    offered = b.plugin(PLUGIN)
    assert offered["distribution"] == DISTRIBUTION and offered["version"] == "0.3.1"
    assert offered["enabled"] is False and offered["config"] is None
    schema = offered["config_schema"]
    assert schema["$defs"]["CustodyLogConfig"]["required"] == ["log_path"]

    enabled = a.ok("admin", "PUT", f"/plugins/{PLUGIN}", {"config": {"log_path": str(log), "label": "blue"}})
    assert enabled["enabled"] is True
    assert enabled["config"] == {"log_path": str(log), "label": "blue"}
    assert lines(log) == [f"{a.slug} plugin.enabled blue -"], "the plugin observes its own enabling"

    a_package, a_kinds = deliver(a, d.smtp)
    b_package, b_kinds = deliver(b, d.smtp)
    assert sorted(b_kinds) == sorted(a_kinds) and "package.picked_up" in a_kinds, "both walked the whole flow"
    assert unordered(lines(log)) == unordered(
        [f"{a.slug} plugin.enabled blue -"] + [f"{a.slug} {kind} blue {a_package}" for kind in a_kinds]
    )
    text = log.read_text()
    assert b.slug not in text and b_package not in text, "the other tenant never calls the plugin"
    assert b.plugin(PLUGIN)["enabled"] is False

    # A refused configuration names its field, changes nothing and calls nobody.
    before = a.plugin(PLUGIN)["config"]
    for config, field in [
        ({"log_path": str(log), "label": 7}, "label"),
        ({"log_path": str(log), "label": "red", "colour": "red"}, "colour"),
        ({"label": "red"}, "log_path"),
    ]:
        refused = a.call("admin", "PUT", f"/plugins/{PLUGIN}", {"config": config})
        assert refused.status_code == 400, refused.text
        body = refused.json()
        assert field in body["detail"] and PLUGIN in body["detail"]
        assert body["field"] == field
    assert a.plugin(PLUGIN)["config"] == before
    assert len(lines(log)) == 1 + len(a_kinds)

    # A new label takes effect on the next event, in the same server process.
    seen = len(lines(log))
    a.ok("admin", "PUT", f"/plugins/{PLUGIN}", {"config": {"log_path": str(log), "label": "green"}})
    second, kinds = deliver(a, d.smtp, pickup=False)
    assert unordered(lines(log)[seen:]) == unordered(
        [f"{a.slug} plugin.configured green -"] + [f"{a.slug} {kind} green {second}" for kind in kinds]
    )

    # Disabled: no call at all, not even for the disabling itself.
    seen = len(lines(log))
    disabled = a.call("admin", "DELETE", f"/plugins/{PLUGIN}")
    assert disabled.status_code == 204, disabled.text
    assert a.plugin(PLUGIN)["enabled"] is False
    _, kinds = deliver(a, d.smtp, pickup=False)
    assert "package.deposited" in kinds, "the tenant still works without the plugin"
    assert len(lines(log)) == seen
    assert d.server.process.poll() is None, "no restart happened along the way"


def test_each_tenant_gets_its_own_instance_built_with_its_config(deployment):
    d = deployment
    for t, label in ((d.a, "north"), (d.b, "south")):
        config = {"log_path": str(d.logs / f"{t.slug}.log"), "label": label}
        t.ok("admin", "PUT", f"/plugins/{PLUGIN}", {"config": config})
    packages = {t.slug: deliver(t, d.smtp) for t in (d.a, d.b)}
    for t, label in ((d.a, "north"), (d.b, "south")):
        package, kinds = packages[t.slug]
        assert unordered(lines(d.logs / f"{t.slug}.log")) == unordered(
            [f"{t.slug} plugin.enabled {label} -"] + [f"{t.slug} {kind} {label} {package}" for kind in kinds]
        )


def test_unknown_plugin_is_refused_by_name(deployment):
    a = deployment.a
    for method in ("PUT", "DELETE"):
        response = a.call(
            "admin", method, "/plugins/acme_nonexistent", {"config": {}} if method == "PUT" else None
        )
        assert response.status_code == 404, response.text
        assert "acme_nonexistent" in response.json()["detail"]
    assert "acme_nonexistent" not in {p["name"] for p in a.ok("admin", "GET", "/plugins")}
    refused = a.call("operator", "PUT", f"/plugins/{PLUGIN}", {"config": {"log_path": "/dev/null"}})
    assert refused.status_code == 403, "only an admin changes the tenant's plugins"
    assert a.plugin(PLUGIN)["enabled"] is False
