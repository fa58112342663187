"""The toolkit for lock-board driver authors: public, like :mod:`pigeonhole.api`.

A driver plugin may import :mod:`pigeonhole.hardware` and its modules besides
``pigeonhole.api``; they are kept stable the same way. The guide is
``docs/plugins/drivers.md``.

- :mod:`~pigeonhole.hardware.transport`: serial port and TCP bridge links that reopen.
- :mod:`~pigeonhole.hardware.bus`: one transaction at a time, inter-frame gaps,
  timeouts, retries only for what is safe to repeat, one bus per link.
- :mod:`~pigeonhole.hardware.driver`: :class:`BoardDriver`, everything but the frames.
- :mod:`~pigeonhole.hardware.simulation`: the base of board simulators (faults,
  byte timing, pty or TCP link); :mod:`~pigeonhole.hardware.pty`: pty pairs.
- :mod:`~pigeonhole.hardware.timing`, :mod:`~pigeonhole.hardware.checksums`.
"""

from pigeonhole.hardware.bus import BadFrame, Bus, BusError, release_bus, shared_bus
from pigeonhole.hardware.checksums import hexbytes, sum8, xor8
from pigeonhole.hardware.driver import BoardConfig, BoardDriver, Fired
from pigeonhole.hardware.timing import byte_time, char_gap, wire_time
from pigeonhole.hardware.transport import LinkDown, NoReply, SerialTransport, TcpTransport, Transport

__all__ = [
    "BadFrame",
    "BoardConfig",
    "BoardDriver",
    "Bus",
    "BusError",
    "Fired",
    "LinkDown",
    "NoReply",
    "SerialTransport",
    "TcpTransport",
    "Transport",
    "byte_time",
    "char_gap",
    "hexbytes",
    "release_bus",
    "shared_bus",
    "sum8",
    "wire_time",
    "xor8",
]
