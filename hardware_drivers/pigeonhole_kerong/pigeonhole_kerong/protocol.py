"""Kerong frames, built and read the same way by the drivers and the simulators.

KR-CU48 (vendor document v2.1): ``02 ADDR LOCK CMD 03 SUM``; status ``50``
answers ``02 ADDR LOCK 65 D1..D6 03 SUM``, 48 hook bits with lock 1 in the
lowest bit of D1; unlock ``51`` has no answer; LOCK ``30`` means every lock,
ADDR ``0A`` every board.

KR-CU16 (no vendor document; four codebases agree): ``02 ADDR CMD 03 SUM``,
ADDR = board in the high nibble, lock - 1 in the low one; ``30`` status answers
``02 ADDR 35 H1 H2 I1 I2 03 SUM``; ``31`` unlocks one lock, ``33`` every lock.
Which of H1/H2 carries locks 1-8 is not written down anywhere we have: we read
H1 as locks 1-8, lock 1 in its lowest bit, like the CU48 (decision 0016).

SUM is the low byte of the sum of the bytes before it.
"""

from __future__ import annotations

from pigeonhole.hardware import BadFrame, hexbytes, sum8

STX, ETX = 0x02, 0x03

CU48_STATUS, CU48_UNLOCK, CU48_REPLY = 0x50, 0x51, 0x65
CU48_ALL_LOCKS, CU48_ALL_BOARDS = 0x30, 0x0A
CU16_STATUS, CU16_UNLOCK, CU16_UNLOCK_ALL, CU16_REPLY = 0x30, 0x31, 0x33, 0x35


def _framed(body: bytes) -> bytes:
    head = bytes([STX]) + body + bytes([ETX])
    return head + bytes([sum8(head)])


def checksum_ok(frame: bytes) -> bool:
    return len(frame) >= 3 and frame[0] == STX and frame[-2] == ETX and frame[-1] == sum8(frame[:-1])


# ---------------------------------------------------------------- CU48


def cu48(address: int, lock_byte: int, command: int) -> bytes:
    return _framed(bytes([address, lock_byte, command]))


def cu48_status(board: int) -> bytes:
    return cu48(board, 0x00, CU48_STATUS)


def cu48_unlock(board: int, lock: int) -> bytes:
    """Lock numbered from 1, as printed on the board; the frame counts from 0."""
    return cu48(board, lock - 1, CU48_UNLOCK)


def cu48_unlock_board(board: int) -> bytes:
    return cu48(board, CU48_ALL_LOCKS, CU48_UNLOCK)


def cu48_unlock_everything() -> bytes:
    return cu48(CU48_ALL_BOARDS, CU48_ALL_LOCKS, CU48_UNLOCK)


def cu48_status_reply(board: int, bits: list[bool]) -> bytes:
    data = bytes(sum(1 << i for i in range(8) if bits[byte * 8 + i]) for byte in range(6))
    return _framed(bytes([board, 0x00, CU48_REPLY]) + data)


def cu48_read_status(frame: bytes, board: int) -> list[bool]:
    """The 48 hook bits of a status reply from ``board``, lock 1 first."""
    if len(frame) != 12 or not checksum_ok(frame):
        raise BadFrame(f"not a CU48 status reply: {hexbytes(frame)}")
    if frame[1] != board or frame[3] != CU48_REPLY:
        raise BadFrame(
            f"CU48 reply from board {frame[1]} command {frame[3]:02X}, expected board {board}: {hexbytes(frame)}"
        )
    return [bool(frame[4 + i // 8] >> (i % 8) & 1) for i in range(48)]


# ---------------------------------------------------------------- CU16


def cu16(address: int, command: int) -> bytes:
    return _framed(bytes([address, command]))


def cu16_address(board: int, lock: int = 1) -> int:
    return (board << 4) | (lock - 1)


def cu16_status(board: int) -> bytes:
    return cu16(cu16_address(board), CU16_STATUS)


def cu16_unlock(board: int, lock: int) -> bytes:
    return cu16(cu16_address(board, lock), CU16_UNLOCK)


def cu16_unlock_board(board: int) -> bytes:
    return cu16(cu16_address(board), CU16_UNLOCK_ALL)


def _two(bits: list[bool]) -> bytes:
    return bytes(sum(1 << i for i in range(8) if bits[byte * 8 + i]) for byte in range(2))


def cu16_status_reply(board: int, hooks: list[bool], items: list[bool]) -> bytes:
    return _framed(bytes([cu16_address(board), CU16_REPLY]) + _two(hooks) + _two(items))


def cu16_read_status(frame: bytes, board: int) -> tuple[list[bool], list[bool]]:
    """Hook bits and infrared "item present" bits of locks 1..16."""
    if len(frame) != 9 or not checksum_ok(frame):
        raise BadFrame(f"not a CU16 status reply: {hexbytes(frame)}")
    if frame[1] >> 4 != board or frame[2] != CU16_REPLY:
        raise BadFrame(
            f"CU16 reply from board {frame[1] >> 4} command {frame[2]:02X}, expected board {board}: {hexbytes(frame)}"
        )
    hooks = [bool(frame[3 + i // 8] >> (i % 8) & 1) for i in range(16)]
    items = [bool(frame[5 + i // 8] >> (i % 8) & 1) for i in range(16)]
    return hooks, items
