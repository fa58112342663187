"""Fetching a tenant's directory file from its SFTP server (asyncssh).

Key authentication only, and the server's host key must be the one the
administrator configured: a scheduled import that accepted any host key would
hand the tenant's directory to whoever answers on that address.

A file still being written must never be imported. The fetcher does not
decide when a file is complete; it reports the file's size and modification
time (:class:`RemoteFile`), the schedule compares them across polls (see
:mod:`pigeonhole.domain.directory.schedule`), and :func:`download` checks them
again after reading, so a writer that resumed during the download spoils that
download instead of importing half a file.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

import asyncssh

from pigeonhole.domain.directory.csvfile import FileTooLarge

#: One poll (connect, stat, read) gives up after this long.
TIMEOUT_SECONDS = 300
CONNECT_TIMEOUT_SECONDS = 20


class SftpFailed(Exception):
    """The server could not be reached or read; the message says why, for an administrator."""


@dataclass(frozen=True)
class Source:
    host: str
    port: int
    username: str
    private_key: str  # OpenSSH or PEM text
    host_key: str  # the server's public key, OpenSSH format ("ssh-ed25519 AAAA...")
    path: str

    @property
    def label(self) -> str:
        return f"sftp://{self.username}@{self.host}:{self.port}{'' if self.path.startswith('/') else '/'}{self.path}"


@dataclass(frozen=True)
class RemoteFile:
    size: int
    mtime: int

    def as_dict(self) -> dict:
        return {"size": self.size, "mtime": self.mtime}

    @classmethod
    def from_dict(cls, data: dict | None) -> RemoteFile | None:
        if not data:
            return None
        return cls(int(data["size"]), int(data["mtime"]))


def check_private_key(text: str) -> None:
    """Raise ValueError with a sentence when ``text`` is not an unencrypted private key."""
    try:
        asyncssh.import_private_key(text)
    except (asyncssh.KeyImportError, ValueError) as exc:
        raise ValueError(
            f"private_key is not a private key asyncssh can read without a passphrase ({exc})"
        ) from None


def check_host_key(text: str) -> None:
    try:
        asyncssh.import_public_key(text)
    except (asyncssh.KeyImportError, ValueError) as exc:
        raise ValueError(
            f"host_key must be the server's public key in OpenSSH format, e.g. 'ssh-ed25519 AAAA...' ({exc})"
        ) from None


async def _connect(source: Source):
    return await asyncssh.connect(
        source.host,
        port=source.port,
        username=source.username,
        client_keys=[asyncssh.import_private_key(source.private_key)],
        known_hosts=([asyncssh.import_public_key(source.host_key)], [], []),
        password=None,
        agent_path=None,
        config=[],
        connect_timeout=CONNECT_TIMEOUT_SECONDS,
    )


def _explain(source: Source, exc: BaseException) -> str:
    where = f"{source.host}:{source.port}"
    if isinstance(exc, asyncssh.HostKeyNotVerifiable):
        return f"The SFTP server {where} did not present the configured host key; nothing was fetched"
    if isinstance(exc, asyncssh.PermissionDenied):
        return f"The SFTP server {where} refused the key of user '{source.username}'"
    if isinstance(exc, asyncssh.SFTPNoSuchFile):
        return f"No file '{source.path}' on the SFTP server {where}"
    if isinstance(exc, asyncssh.SFTPError):
        return f"The SFTP server {where} refused to read '{source.path}': {exc.reason}"
    if isinstance(exc, asyncssh.DisconnectError):
        return f"The SFTP server {where} closed the connection: {exc.reason}"
    if isinstance(exc, TimeoutError):
        return f"The SFTP server {where} did not answer within {TIMEOUT_SECONDS} seconds"
    if isinstance(exc, OSError):
        return f"Cannot connect to the SFTP server {where}: {exc.strerror or exc}"
    return f"SFTP fetch from {where} failed: {type(exc).__name__}: {exc}"


async def poll(source: Source, *, fetch_if, limit: int) -> tuple[RemoteFile | None, bytes | None]:
    """Stat the file, and read it when ``fetch_if(remote_file)`` says it is stable.

    Returns (what was seen, the bytes or None). A missing file is (None, None).
    The bytes are returned only if the size and modification time after the
    read are those seen before it.
    """
    try:
        return await asyncio.wait_for(_poll(source, fetch_if, limit), TIMEOUT_SECONDS)
    except (SftpFailed, FileTooLarge):
        raise
    except asyncssh.SFTPNoSuchFile:
        return None, None
    except (asyncssh.Error, OSError, TimeoutError) as exc:
        raise SftpFailed(_explain(source, exc)) from None


async def _poll(source: Source, fetch_if, limit: int):
    async with await _connect(source) as conn, conn.start_sftp_client() as client:
        attrs = await client.stat(source.path)
        seen = RemoteFile(int(attrs.size or 0), int(attrs.mtime or 0))
        if not fetch_if(seen):
            return seen, None
        if seen.size > limit:
            too_large = FileTooLarge(limit)  # refused before reading a byte of it
            too_large.remote = seen
            raise too_large
        async with client.open(source.path, "rb") as f:
            data = await f.read(limit + 1)
        after = await client.stat(source.path)
        if (int(after.size or 0), int(after.mtime or 0)) != (seen.size, seen.mtime) or len(data) != seen.size:
            # Still being written: what was read is not the file; wait for the next poll.
            return RemoteFile(int(after.size or 0), int(after.mtime or 0)), None
        return seen, data
