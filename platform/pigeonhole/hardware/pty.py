"""A serial cable made of a pseudo-terminal pair, that can be unplugged and plugged back.

The simulator holds the master side; the driver opens the slave path with
pyserial exactly as it would open ``/dev/ttyUSB0``. The path handed to the
driver is a symlink (as ``/dev/serial/by-id/...`` is on a real machine), so
that plugging the cable back, which makes a new pty, keeps the same path.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import termios
import tty

__all__ = ["PtyPair"]


class PtyPair:
    def __init__(self, link: str | None = None) -> None:
        """``link``: where the driver finds the port; a fresh temporary path when None."""
        if link is None:
            self._tmpdir = tempfile.mkdtemp(prefix="pigeonhole-pty-")
            link = os.path.join(self._tmpdir, "tty")
        else:
            self._tmpdir = None
        self.link = link
        self.master: int | None = None
        self._slave: int | None = None
        self.slave_name: str | None = None

    @property
    def plugged(self) -> bool:
        return self.master is not None

    def plug(self) -> int:
        """Make the pty and the link; return the master fd (non-blocking)."""
        if self.master is not None:
            return self.master
        master, slave = os.openpty()
        tty.setraw(slave, termios.TCSANOW)
        # Keeping our own slave fd open means the master never reads EIO while
        # the driver closes and reopens the port: only unplug() cuts the line.
        os.set_blocking(master, False)
        self.master, self._slave = master, slave
        self.slave_name = os.ttyname(slave)
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.link)
        os.symlink(self.slave_name, self.link)
        return master

    def unplug(self) -> None:
        """Pull the cable: the path vanishes and the driver's open port reads EIO."""
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.link)
        for fd in (self.master, self._slave):
            if fd is not None:
                with contextlib.suppress(OSError):
                    os.close(fd)
        self.master = self._slave = None
        self.slave_name = None

    def close(self) -> None:
        self.unplug()
        if self._tmpdir is not None:
            with contextlib.suppress(OSError):
                os.rmdir(self._tmpdir)
