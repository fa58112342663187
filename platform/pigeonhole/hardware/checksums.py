"""The one-byte checksums lock boards use; CRCs belong to their protocol libraries."""

from __future__ import annotations


def sum8(data: bytes | bytearray) -> int:
    """Low byte of the sum of ``data`` (Kerong boards)."""
    return sum(data) & 0xFF


def xor8(data: bytes | bytearray) -> int:
    """XOR of every byte of ``data`` (the common unbranded RS485 boards)."""
    result = 0
    for byte in data:
        result ^= byte
    return result


def hexbytes(data: bytes | bytearray) -> str:
    """``02 00 30 51 03 86``: frames in messages and logs, the way datasheets print them."""
    return " ".join(f"{b:02X}" for b in data)
