"""The per-bank configuration of a Modbus lock bank, validated by the host when the bank is saved."""

from __future__ import annotations

from typing import Annotated, Literal

import msgspec

Unit = Annotated[int, msgspec.Meta(ge=1, le=247)]
Address = Annotated[int, msgspec.Meta(ge=0, le=0xFFFF)]


class DoorMap(msgspec.Struct, forbid_unknown_fields=True):
    """Where one door of the bank is wired: the relay that fires its lock and its sensor."""

    door: Annotated[int, msgspec.Meta(ge=1)]
    coil: Address
    unit: Unit = 1
    #: The discrete input of the door sensor; None: the same number as the coil.
    input: Address | None = None

    @property
    def sensor(self) -> int:
        return self.coil if self.input is None else self.input


class ModbusConfig(msgspec.Struct, forbid_unknown_fields=True):
    #: ``tcp``: a Modbus TCP board or gateway at host:port; ``rtu``: RS485 on a serial port.
    transport: Literal["tcp", "rtu"] = "tcp"
    host: str = "127.0.0.1"
    port: Annotated[int, msgspec.Meta(ge=1, le=65535)] = 502
    serial_port: str = "/dev/ttyUSB0"
    baudrate: Literal[1200, 2400, 4800, 9600, 19200, 38400, 57600, 115200] = 9600
    parity: Literal["N", "E", "O"] = "N"
    stopbits: Literal[1, 2] = 1
    #: Explicit wiring. Empty: door N is coil N-1 and input N-1 of ``unit`` (a
    #: Waveshare-style board, relay 0 for door 1).
    doors: list[DoorMap] = []
    unit: Unit = 1
    #: How long the lock's relay stays on.
    pulse_ms: Annotated[int, msgspec.Meta(ge=100, le=25_500)] = 500
    #: ``board``: the board times the pulse itself (FC05 to ``pulse_base`` +
    #: coil, value = tenths of a second), so a host crash cannot leave a lock
    #: powered; a board that refuses it falls back to ``host``. ``host``: coil
    #: on, wait, coil off.
    pulse: Literal["board", "host"] = "board"
    pulse_base: Address = 0x0200
    #: A coil that switches every relay of a unit at once (Waveshare: 0x00FF);
    #: None: switch the mapped coils off one by one at start.
    all_relays_coil: Address | None = 0x00FF
    #: The input level that means "door open": depends on how the sensor is wired.
    open_when: Literal["set", "clear"] = "set"
    #: Fire the lock even when its sensor already reads open (sensors fail).
    fire_when_open: bool = False
    #: Wait this long for a board's reply to one request.
    timeout_ms: Annotated[int, msgspec.Meta(ge=10, le=10_000)] = 500
    #: Extra attempts for reads and for switching relays off; never for firing a lock.
    read_retries: Annotated[int, msgspec.Meta(ge=0, le=5)] = 2
    #: How long to watch the sensor for the door to open after the lock fired.
    open_timeout_ms: Annotated[int, msgspec.Meta(ge=0, le=10_000)] = 1_500
    #: Sensor polling for changes nobody commanded (0: no polling).
    poll_ms: Annotated[int, msgspec.Meta(ge=0, le=60_000)] = 250
    #: At most one attempt to reopen a lost link per this interval.
    reconnect_ms: Annotated[int, msgspec.Meta(ge=0, le=60_000)] = 1_000
    #: Silence kept between two frames on the bus. None: 3.5 character times for
    #: RTU (1.75 ms above 19200 baud, as the Modbus spec says), nothing for TCP.
    gap_ms: Annotated[float, msgspec.Meta(ge=0, le=1_000)] | None = None

    def __post_init__(self) -> None:
        seen_doors: set[int] = set()
        seen_coils: set[tuple[int, int]] = set()
        for entry in self.doors:
            if entry.door in seen_doors:
                raise ValueError(f"door {entry.door} is mapped twice in `doors`")
            if (entry.unit, entry.coil) in seen_coils:
                raise ValueError(f"coil {entry.coil} of unit {entry.unit} drives two doors in `doors`")
            seen_doors.add(entry.door)
            seen_coils.add((entry.unit, entry.coil))

    def mapping(self, doors: list[int]) -> dict[int, DoorMap]:
        """The wiring of the bank's doors; doors the explicit mapping lacks are left out."""
        if self.doors:
            return {entry.door: entry for entry in self.doors}
        return {door: DoorMap(door=door, unit=self.unit, coil=door - 1) for door in doors}

    def gap_seconds(self) -> float:
        if self.gap_ms is not None:
            return self.gap_ms / 1000
        if self.transport == "tcp":
            return 0.0
        return (
            0.00175
            if self.baudrate > 19200
            else 3.5 * char_seconds(self.baudrate, self.parity, self.stopbits)
        )


def char_seconds(baudrate: int, parity: str = "N", stopbits: int = 1) -> float:
    """One character on the wire: start bit, 8 data bits, parity, stop bits."""
    return (1 + 8 + (parity != "N") + stopbits) / baudrate
