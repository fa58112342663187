"""The site agent's record of the commands it executed, on disk.

A command is written down as *started* (and synced to disk) before its lock
fires, and with its outcome once the board answered (flushed to the kernel, not
synced: a killed agent keeps it; only a power loss can lose it, which leaves
"started", reported as unknown, which is safe -- see 0019). A killed agent therefore
comes back knowing, for every command it ever touched, either what happened
or that it cannot know: it never fires such a command again, and it tells the
server so the server can settle what it had left open. The server answers
``settled`` and the entry is kept (a re-sent id still must not fire) but no
longer reported. One JSON object per line, appended; rewritten smaller when
it grows past ``keep`` entries.
"""

from __future__ import annotations

import logging
import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from uuid import UUID

import msgspec

log = logging.getLogger(__name__)


_sync = getattr(os, "fdatasync", os.fsync)


class _Line(msgspec.Struct, omit_defaults=True):
    id: UUID
    bank_id: UUID | None = None
    doors: list[int] | None = None
    outcomes: dict[int, str] | None = None
    settled: bool = False


@dataclass
class Entry:
    id: UUID
    bank_id: UUID
    doors: list[int]
    #: None until the board answered; stays None for a command cut short by a crash
    outcomes: dict[int, str] | None = None
    settled: bool = False


class Journal:
    def __init__(self, path: Path, *, keep: int = 5000) -> None:
        self.path = Path(path)
        self.keep = keep
        self.entries: OrderedDict[UUID, Entry] = OrderedDict()
        self._lines = 0
        self._load()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._file = open(self.path, "ab")  # noqa: SIM115 - held for the agent's life

    def _load(self) -> None:
        if not self.path.exists():
            return
        decoder = msgspec.json.Decoder(_Line)
        for raw in self.path.read_bytes().splitlines():
            if not raw.strip():
                continue
            try:
                line = decoder.decode(raw)
            except msgspec.DecodeError:
                log.warning("journal %s: a torn line skipped (a crash while writing)", self.path)
                continue
            self._lines += 1
            entry = self.entries.get(line.id)
            if entry is None:
                if line.bank_id is None:
                    continue
                entry = self.entries[line.id] = Entry(line.id, line.bank_id, line.doors or [])
            if line.outcomes is not None:
                entry.outcomes = line.outcomes
            if line.settled:
                entry.settled = True

    def _write(self, line: _Line, *, durable: bool = False) -> None:
        self._file.write(msgspec.json.encode(line) + b"\n")
        self._file.flush()
        if durable:
            _sync(self._file.fileno())
        self._lines += 1
        if self._lines > 2 * self.keep:
            self._compact()

    def _compact(self) -> None:
        while len(self.entries) > self.keep:
            self.entries.popitem(last=False)
        tmp = self.path.with_suffix(".tmp")
        with open(tmp, "wb") as out:
            for e in self.entries.values():
                line = _Line(e.id, e.bank_id, e.doors, e.outcomes, e.settled)
                out.write(msgspec.json.encode(line) + b"\n")
            out.flush()
            os.fsync(out.fileno())
        self._file.close()
        os.replace(tmp, self.path)
        self._file = open(self.path, "ab")  # noqa: SIM115
        self._lines = len(self.entries)

    def get(self, command_id: UUID) -> Entry | None:
        return self.entries.get(command_id)

    def started(self, command_id: UUID, bank_id: UUID, doors: list[int]) -> None:
        self.entries[command_id] = Entry(command_id, bank_id, list(doors))
        # On disk before the lock fires: the one line that must survive a crash.
        self._write(_Line(command_id, bank_id, list(doors)), durable=True)

    def finished(self, command_id: UUID, outcomes: dict[int, str]) -> None:
        entry = self.entries[command_id]
        entry.outcomes = dict(outcomes)
        # Not synced: lost in a crash, the entry reads "started" and is reported unknown,
        # which is safe; a sync here would only slow every command down.
        self._write(_Line(command_id, outcomes=entry.outcomes))

    def settle(self, ids: list[UUID]) -> None:
        for command_id in ids:
            entry = self.entries.get(command_id)
            if entry is not None and not entry.settled:
                entry.settled = True
                self._write(_Line(command_id, settled=True))

    def unsettled(self, *, except_ids: set[UUID] = frozenset()) -> list[Entry]:
        return [e for e in self.entries.values() if not e.settled and e.id not in except_ids]

    def close(self) -> None:
        self._file.close()
