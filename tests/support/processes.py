"""Real ``pigeonhole serve``, ``worker`` and ``agent`` processes for tests.

The outbox promises something about crashes: a process that dies between
commit and send loses nothing and sends nothing twice. Only a separate
process can die like that, so these tests run the command line a deployment
runs, on free ports, with an environment the test spells out in full (nothing
leaks in from the developer's shell). Every process writes its output to a
log file that failures quote, and :meth:`Deployment.close` kills whatever is
still running, so a failed test leaves no process behind.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx

from tests.support.smtp import free_port

PIGEONHOLE = str(Path(sys.executable).with_name("pigeonhole"))
SECRET_KEY = "test-secret-key-for-subprocesses"
# Settings the platform reads that a test must not inherit from the shell.
_KEEP = {"PIGEONHOLE_APP_ROLE"}


class Process:
    """One child process; its stdout and stderr go to ``log_path``."""

    def __init__(self, name: str, args: list[str], env: dict[str, str], log_path: Path) -> None:
        self.name = name
        self.args = args
        self.log_path = log_path
        self._log_file = open(log_path, "wb")  # noqa: SIM115 - closed in _reap
        self.popen = subprocess.Popen(
            args, env=env, stdin=subprocess.DEVNULL, stdout=self._log_file, stderr=subprocess.STDOUT
        )

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def running(self) -> bool:
        return self.popen.poll() is None

    @property
    def returncode(self) -> int | None:
        return self.popen.poll()

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def describe(self) -> str:
        state = "running" if self.running else f"exited {self.returncode}"
        return f"--- {self.name} (pid {self.pid}, {state}) ---\n{self.log()[-6000:]}"

    async def wait_exit(self, timeout: float = 30.0) -> int:
        """The exit code, once the process is gone (it is not asked to stop)."""
        deadline = time.monotonic() + timeout
        while self.running:
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name} is still running after {timeout}s\n{self.describe()}")
            await asyncio.sleep(0.05)
        self._reap()
        return self.popen.returncode

    async def wait_for_output(self, text: str, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.log():
            if not self.running:
                raise AssertionError(f"{self.name} exited before printing {text!r}\n{self.describe()}")
            if time.monotonic() > deadline:
                raise AssertionError(f"{self.name} did not print {text!r} in {timeout}s\n{self.describe()}")
            await asyncio.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL, as a crash or the OOM killer would: no shutdown code runs."""
        if self.running:
            self.popen.kill()
        self.popen.wait(10)
        self._reap()

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM, then SIGKILL if the process does not leave in time."""
        if self.running:
            self.popen.terminate()
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(10)
        self._reap()

    def _reap(self) -> None:
        if not self._log_file.closed:
            self._log_file.close()


class Server(Process):
    def __init__(self, name: str, args: list[str], env: dict[str, str], log_path: Path, port: int) -> None:
        super().__init__(name, args, env, log_path)
        self.port = port
        self.url = f"http://127.0.0.1:{port}"

    async def wait_healthy(self, timeout: float = 30.0) -> dict:
        deadline = time.monotonic() + timeout
        last = "no answer"
        async with httpx.AsyncClient(base_url=self.url, timeout=2) as client:
            while True:
                if not self.running:
                    raise AssertionError(f"{self.name} exited before it was healthy\n{self.describe()}")
                try:
                    response = await client.get("/health")
                    if response.status_code == 200:
                        return response.json()
                    last = f"{response.status_code} {response.text}"
                except httpx.TransportError as exc:
                    last = repr(exc)
                if time.monotonic() > deadline:
                    raise AssertionError(f"{self.name} not healthy in {timeout}s: {last}\n{self.describe()}")
                await asyncio.sleep(0.1)


class Deployment:
    """Processes sharing one database, one broker, one mail server and one secret key.

    ``queue`` and ``namespace`` are unique per deployment, so messages an
    earlier run left on the broker can never reach this one's workers.
    """

    def __init__(
        self,
        workdir: Path,
        database_url: str,
        smtp_url: str,
        broker_url: str | None = None,
        **env: str,
    ) -> None:
        self.workdir = workdir
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.database_url = database_url
        self.broker_url = broker_url
        tag = uuid.uuid4().hex[:10]
        self.queue = f"ph_test_{tag}"
        self.namespace = f"ph_test_{tag}"
        self.base_env = {
            "PIGEONHOLE_DATABASE_URL": database_url,
            "PIGEONHOLE_DATA_DIR": str(workdir / "data"),
            "PIGEONHOLE_SECRET_KEY": SECRET_KEY,
            "PIGEONHOLE_SMTP_URL": smtp_url,
            "PIGEONHOLE_QUEUE": self.queue,
            "PIGEONHOLE_QUEUE_NAMESPACE": self.namespace,
            "PIGEONHOLE_LOG_LEVEL": "INFO",
            **({"PIGEONHOLE_BROKER_URL": broker_url} if broker_url else {}),
            **env,
        }
        self.processes: list[Process] = []
        self._count = 0

    def env(self, **overrides: str) -> dict[str, str]:
        inherited = {k: v for k, v in os.environ.items() if not k.startswith("PIGEONHOLE_") or k in _KEEP}
        return {**inherited, "PYTHONUNBUFFERED": "1", **self.base_env, **overrides}

    def _log_path(self, name: str) -> Path:
        self._count += 1
        return self.workdir / f"{self._count:02d}-{name}.log"

    async def serve(self, *, wait: bool = True, **env: str) -> Server:
        """``pigeonhole serve`` on a free port; returns once /health says ok.

        The port is free when chosen but another process may take it before
        the server binds; that start is retried on a new port.
        """
        for attempt in range(3):
            port = free_port()
            name = f"serve#{self._count + 1}"
            server = Server(
                name, [PIGEONHOLE, "serve"], self.env(PORT=str(port), **env), self._log_path("serve"), port
            )
            self.processes.append(server)
            if not wait:
                return server
            try:
                await server.wait_healthy()
                return server
            except AssertionError:
                if attempt == 2 or server.running or "address already in use" not in server.log():
                    raise
        raise AssertionError("unreachable")

    async def worker(self, *, wait: bool = True, threads: int = 2, **env: str) -> Process:
        """``pigeonhole worker``; returns once it says it is consuming."""
        name = f"worker#{self._count + 1}"
        worker = Process(
            name, [PIGEONHOLE, "worker", "--threads", str(threads)], self.env(**env), self._log_path("worker")
        )
        self.processes.append(worker)
        if wait:
            await worker.wait_for_output("worker running")
        return worker

    async def serve_again(self, server: Server, **env: str) -> Server:
        """A new ``pigeonhole serve`` on the port of a stopped one: the same URL, as after a restart."""
        assert not server.running, f"{server.name} is still running"
        name = f"serve#{self._count + 1}"
        again = Server(
            name,
            [PIGEONHOLE, "serve"],
            self.env(PORT=str(server.port), **env),
            self._log_path("serve"),
            server.port,
        )
        self.processes.append(again)
        await again.wait_healthy()
        return again

    async def agent(
        self, server: Server, tenant: str, key: str, *, wait: str | None = "connected to", **env: str
    ) -> Process:
        """``pigeonhole agent`` linked to ``server``; returns once it prints ``wait`` (None: at once).

        The URL, tenant and key go through the environment, as a site would set them;
        nothing else of the deployment's does: a site has no database and no secret key.
        """
        name = f"agent#{self._count + 1}"
        site = {k: v for k, v in self.env().items() if not k.startswith("PIGEONHOLE_")}
        agent = Process(
            name,
            [PIGEONHOLE, "agent"],
            {
                **site,
                "PIGEONHOLE_LOG_LEVEL": self.base_env["PIGEONHOLE_LOG_LEVEL"],
                # The site's own folder (credentials, journal): the deployment's, not the repo's var/.
                "PIGEONHOLE_DATA_DIR": str(self.workdir / "site"),
                "PIGEONHOLE_URL": server.url,
                "PIGEONHOLE_TENANT": tenant,
                "PIGEONHOLE_AGENT_KEY": key,
                **env,
            },
            self._log_path("agent"),
        )
        self.processes.append(agent)
        if wait is not None:
            await agent.wait_for_output(wait)
        return agent

    def logs(self) -> str:
        return "\n".join(p.describe() for p in self.processes)

    def close(self) -> None:
        """Kill everything still running; a test's processes never outlive it."""
        for process in self.processes:
            process.kill()
