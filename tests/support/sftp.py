"""A real SFTP server on loopback (asyncssh), serving a folder the test writes into.

Key authentication only, one authorized client key, its own host key: the
same checks a tenant's real server makes. The test reads ``host_key`` and
``client_key`` to configure a schedule as an administrator would.
"""

from __future__ import annotations

from pathlib import Path

import asyncssh


def new_key() -> asyncssh.SSHKey:
    return asyncssh.generate_private_key("ssh-ed25519")


def private_text(key: asyncssh.SSHKey) -> str:
    return key.export_private_key().decode()


def public_text(key: asyncssh.SSHKey) -> str:
    return key.export_public_key().decode().strip()


class SftpServer:
    def __init__(self, root: Path, username: str = "hr-export") -> None:
        self.root = root
        self.username = username
        self.host_key = new_key()
        self.client_key = new_key()
        self.port = 0
        self._server: asyncssh.SSHAcceptor | None = None
        self.logins = 0

    async def start(self) -> None:
        outer = self

        class Server(asyncssh.SSHServer):
            def begin_auth(self, username: str) -> bool:
                return True

            def password_auth_supported(self) -> bool:
                return False

            def public_key_auth_supported(self) -> bool:
                return True

            def validate_public_key(self, username: str, key: asyncssh.SSHKey) -> bool:
                return username == outer.username and key.public_data == outer.client_key.public_data

            def auth_completed(self) -> None:
                outer.logins += 1

        root = str(self.root)
        self._server = await asyncssh.listen(
            "127.0.0.1",
            self.port,
            server_host_keys=[self.host_key],
            server_factory=Server,
            sftp_factory=lambda chan: asyncssh.SFTPServer(chan, chroot=root.encode()),
            allow_scp=False,
        )
        self.port = self._server.sockets[0].getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    @property
    def host_key_text(self) -> str:
        return public_text(self.host_key)

    @property
    def client_key_text(self) -> str:
        return private_text(self.client_key)
