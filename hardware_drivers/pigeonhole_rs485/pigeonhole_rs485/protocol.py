"""Frames of the generic RS485 lock boards; every frame ends with the XOR of the bytes before it.

Unlock channel CH (from 1) of board BB: ``8A BB CH 11 XX``, answered about
500 ms later by ``8A BB CH SS XX``, SS = ``00`` or ``11``: the sensor after the
pulse. Status: ``80 BB 00 33 XX``, answered ``80 BB S.. 33 XX`` with
ceil(channels / 8) bytes, the highest group of eight channels first, the
lowest channel of a group in the lowest bit.
"""

from __future__ import annotations

from pigeonhole.hardware import BadFrame, hexbytes, xor8

UNLOCK, STATUS = 0x8A, 0x80
UNLOCK_CMD, STATUS_CMD, SENSOR_SET = 0x11, 0x33, 0x11


def _with_xor(body: bytes) -> bytes:
    return body + bytes([xor8(body)])


def xor_ok(frame: bytes) -> bool:
    return len(frame) >= 2 and frame[-1] == xor8(frame[:-1])


def groups(channels: int) -> int:
    return (channels + 7) // 8


def unlock(board: int, channel: int) -> bytes:
    return _with_xor(bytes([UNLOCK, board, channel, UNLOCK_CMD]))


def unlock_reply(board: int, channel: int, sensor_set: bool) -> bytes:
    return _with_xor(bytes([UNLOCK, board, channel, SENSOR_SET if sensor_set else 0x00]))


def read_unlock_reply(frame: bytes, board: int, channel: int) -> bool:
    """The raw sensor bit after the pulse."""
    if len(frame) != 5 or not xor_ok(frame) or frame[:3] != bytes([UNLOCK, board, channel]):
        raise BadFrame(f"not the unlock reply of board {board} channel {channel}: {hexbytes(frame)}")
    if frame[3] not in (0x00, SENSOR_SET):
        raise BadFrame(f"unlock reply with sensor byte {frame[3]:02X}: {hexbytes(frame)}")
    return frame[3] == SENSOR_SET


def status(board: int) -> bytes:
    return _with_xor(bytes([STATUS, board, 0x00, STATUS_CMD]))


def status_reply(board: int, bits: list[bool]) -> bytes:
    data = [
        sum(1 << i for i in range(8) if g * 8 + i < len(bits) and bits[g * 8 + i])
        for g in range(groups(len(bits)))
    ]
    return _with_xor(bytes([STATUS, board, *reversed(data), STATUS_CMD]))


def read_status(frame: bytes, board: int, channels: int) -> list[bool]:
    """Raw sensor bits of channels 1..``channels``."""
    n = groups(channels)
    if (
        len(frame) != n + 4
        or not xor_ok(frame)
        or frame[:2] != bytes([STATUS, board])
        or frame[-2] != STATUS_CMD
    ):
        raise BadFrame(f"not the status reply of board {board} ({channels} channels): {hexbytes(frame)}")
    data = list(reversed(frame[2 : 2 + n]))
    return [bool(data[i // 8] >> (i % 8) & 1) for i in range(channels)]
