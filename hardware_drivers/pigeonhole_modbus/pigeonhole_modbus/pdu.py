"""FC05 with any 16-bit value: the request a board-timed pulse needs.

The Modbus spec allows only 0xFF00 and 0x0000 in a write-single-coil, and
pymodbus encodes and decodes it as a bool. Waveshare-style boards overload it:
FC05 to 0x0200 + channel with value = pulse length in tenths of a second. This
PDU carries the raw value both ways, so the driver can send it and check the
board's echo, and the simulator can read it.
"""

from __future__ import annotations

import struct

from pymodbus.constants import ExcCodes
from pymodbus.pdu import ExceptionResponse, ModbusPDU

ON = 0xFF00
OFF = 0x0000


class RawWriteCoil(ModbusPDU):
    function_code = 5
    rtu_frame_size = 8

    def __init__(self, dev_id: int = 0, address: int = 0, value: int = OFF, transaction_id: int = 0) -> None:
        super().__init__(dev_id=dev_id, transaction_id=transaction_id, address=address)
        self.value = value

    def encode(self) -> bytes:
        return struct.pack(">HH", self.address, self.value)

    def decode(self, data: bytes) -> None:
        self.address, self.value = struct.unpack(">HH", data[:4])

    def get_response_pdu_size(self) -> int:
        return 1 + 2 + 2

    async def datastore_update(self, context, device_id: int) -> ModbusPDU:
        """Server side: hand the raw value to the datastore (its action reads it), echo the request."""
        result = await context.async_setValues(device_id, self.function_code, self.address, [self.value])
        if result:
            return ExceptionResponse(self.function_code, result)
        return RawWriteCoil(dev_id=self.dev_id, address=self.address, value=self.value)

    def __str__(self) -> str:
        return f"RawWriteCoil(dev_id={self.dev_id}, address={self.address:#06x}, value={self.value:#06x})"


__all__ = ["OFF", "ON", "ExcCodes", "RawWriteCoil"]
