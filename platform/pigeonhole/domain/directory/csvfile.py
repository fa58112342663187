"""Reading an uploaded CSV file: size cap, encodings, header, rows with their line numbers.

People export these files from spreadsheets, HR systems and old scripts, so
the reader accepts what those produce and refuses, naming the line, what it
cannot read without guessing:

- UTF-8, with or without a byte order mark, and Latin-1 (ISO-8859-1) are read.
  Latin-1 can decode any byte, so "Latin-1" here means: the file is not valid
  UTF-8, and none of its bytes is a C1 control character (0x80-0x9F). Those
  bytes are the curly quotes, dashes and euro sign of Windows-1252, or garbage;
  reading them as Latin-1 would store invisible control characters in names.
- A file that starts as UTF-8 (a byte order mark, or a valid multi-byte
  character) and later has a line that is not UTF-8 mixes encodings: refused
  at that line. Likewise a Latin-1 file with a later UTF-8 line.
- UTF-16/32 (a UTF-16 byte order mark, NUL bytes), spreadsheets saved as
  .xlsx (a zip archive) and control characters are refused naming the line.

The size cap is enforced while bytes arrive (:meth:`CsvReader.feed`), so a
50 MB upload is refused after the first ``max_bytes`` without being held in
memory. Rows are parsed once every byte has arrived: an import is all or
nothing, so it needs every row before it writes any.
"""

from __future__ import annotations

import codecs
import csv
import os
import re
import unicodedata
from collections.abc import AsyncIterable, Iterable, Iterator
from dataclasses import dataclass, field

from pigeonhole.domain.errors import DomainError, Invalid

#: The default largest file an import reads: 100,000 contacts with every column
#: take about 15 MB; PIGEONHOLE_IMPORT_MAX_BYTES changes it.
DEFAULT_MAX_BYTES = 32 * 1024 * 1024


def max_bytes() -> int:
    return int(os.environ.get("PIGEONHOLE_IMPORT_MAX_BYTES", DEFAULT_MAX_BYTES))


class FileTooLarge(DomainError):
    status_code = 413

    def __init__(self, limit: int) -> None:
        super().__init__(
            f"The file is larger than the import limit of {_size(limit)}; nothing was imported. "
            "Split it into smaller files, or ask the platform operator to raise PIGEONHOLE_IMPORT_MAX_BYTES",
            limit_bytes=limit,
        )


class FileRefused(Invalid):
    """The file as a whole cannot be read; ``line`` says where (1 = the header)."""

    def __init__(self, message: str, line: int | None = None) -> None:
        self.bare = message if line is not None else message[:1].upper() + message[1:]
        super().__init__(self.bare if line is None else f"Line {line}: {message}", line=line)
        self.line = line


def _size(n: int) -> str:
    return f"{n / (1024 * 1024):.0f} MB" if n >= 1024 * 1024 else f"{n} bytes"


def normalize_header(name: str) -> str:
    """'Personnel ID', 'personnel-id' and 'PERSONNEL_ID' all name one column."""
    return "_".join(name.strip().lower().replace("-", " ").replace("_", " ").split())


@dataclass
class Row:
    line: int  # the physical line the record starts on (the header is line 1)
    values: dict[str, str]  # normalized column name -> stripped text


@dataclass
class Table:
    columns: list[str]  # normalized, in file order
    rows: list[Row]
    encoding: str
    size: int
    delimiter: str = ","
    header_line: int = 1
    filename: str = ""  # as the upload named it, when it did
    row_errors: list[tuple[int, str]] = field(default_factory=list)


_BOM_UTF8 = codecs.BOM_UTF8
_BOMS_UTF16_32 = (codecs.BOM_UTF32_LE, codecs.BOM_UTF32_BE, codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
_ALLOWED_CONTROLS = {"\t", "\r", "\n"}
_BAD_BYTES = re.compile(rb"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")
_C1 = re.compile("[\x80-\x9f]")


class CsvReader:
    """Push bytes with :meth:`feed`, then :meth:`finish` for the table."""

    def __init__(self, *, limit: int | None = None) -> None:
        self.limit = max_bytes() if limit is None else limit
        self.size = 0
        self._pending = b""
        self._lines: list[str] = []
        self._line_no = 0
        self._mode: str | None = None  # None (ASCII so far), "utf-8", "latin-1"
        self._bom = False
        self._multibyte_line: int | None = None  # first line with a UTF-8 multi-byte character
        self._latin1_line: int | None = None

    # --- bytes in ------------------------------------------------------------

    def feed(self, chunk: bytes) -> None:
        if not chunk:
            return
        self.size += len(chunk)
        if self.size > self.limit:
            raise FileTooLarge(self.limit)
        data = self._pending + chunk
        end = data.rfind(b"\n") + 1
        self._pending = data[end:]
        block = data[:end]
        if not block:
            return
        if self._line_no == 0:  # the first line has its own checks (BOM, workbook, UTF-16)
            first = block.index(b"\n") + 1
            self._decode(block[:first])
            block = block[first:]
        if block and not self._decode_block(block):
            for raw in block[:-1].split(b"\n"):
                self._decode(raw + b"\n")

    def _decode_block(self, block: bytes) -> bool:
        """Many whole lines at once when none needs a closer look; False to go line by line.

        The same rules as :meth:`_decode`, checked on the block: it is faster on
        100,000 lines, and any doubt (a control character, bytes that are not
        UTF-8, a Latin-1 file) sends the block through the line-by-line path,
        which names the line.
        """
        if self._mode == "latin-1" or _BAD_BYTES.search(block):
            return False
        if block.isascii():
            text = block.decode("ascii")
        else:
            try:
                text = block.decode("utf-8")
            except UnicodeDecodeError:
                return False
            if _C1.search(text):
                return False
        lines = text.splitlines(keepends=True)
        if len(lines) != block.count(b"\n"):
            return False  # other line breaks (\r alone, U+2028...): let csv and the slow path judge
        if not block.isascii():
            self._mode = "utf-8"
            if self._multibyte_line is None:
                first = next(i for i, line in enumerate(lines) if not line.isascii())
                self._multibyte_line = self._line_no + first + 1
        self._line_no += len(lines)
        self._lines.extend(lines)
        return True

    def _decode(self, raw: bytes) -> None:
        self._line_no += 1
        n = self._line_no
        if n == 1:
            if raw.startswith(b"PK\x03\x04"):
                raise FileRefused(
                    "this is a spreadsheet workbook (.xlsx), not a CSV file; "
                    "save it as 'CSV UTF-8 (comma delimited)' and upload that",
                    1,
                )
            if raw.startswith(_BOMS_UTF16_32):
                raise FileRefused(
                    "the file is encoded as UTF-16 or UTF-32 (it starts with their byte order mark); "
                    "save it as CSV UTF-8",
                    1,
                )
            if raw.startswith(_BOM_UTF8):
                raw = raw[len(_BOM_UTF8) :]
                self._bom = True
                self._mode = "utf-8"
        if b"\x00" in raw:
            raise FileRefused(
                "the line contains NUL bytes: the file is UTF-16 or not a text file; save it as CSV UTF-8", n
            )
        if raw.isascii():
            text = raw.decode("ascii")
        else:
            text = self._decode_non_ascii(raw, n)
        for ch in text:
            if (ch < " " and ch not in _ALLOWED_CONTROLS) or ch == "\x7f" or "\x80" <= ch <= "\x9f":
                raise FileRefused(f"the line contains the control character U+{ord(ch):04X}", n)
        self._lines.append(text)

    def _decode_non_ascii(self, raw: bytes, n: int) -> str:
        if self._mode != "latin-1":
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError as exc:
                if self._bom or self._multibyte_line is not None:
                    why = (
                        "a UTF-8 byte order mark"
                        if self._bom
                        else f"UTF-8 text on line {self._multibyte_line}"
                    )
                    raise FileRefused(
                        f"byte 0x{raw[exc.start]:02X} is not UTF-8, but the file started as UTF-8 ({why}); "
                        "the file mixes encodings: save it again as CSV UTF-8",
                        n,
                    ) from None
                self._mode = "latin-1"
                self._latin1_line = n
            else:
                self._mode = "utf-8"
                if self._multibyte_line is None:
                    self._multibyte_line = n
                return text
        # Latin-1: every byte is a character, so refuse the ones that are not text.
        for i, byte in enumerate(raw):
            if 0x80 <= byte <= 0x9F:
                raise FileRefused(
                    f"byte 0x{byte:02X} (position {i + 1}) is neither UTF-8 nor Latin-1 text "
                    "(it looks like Windows-1252 or another encoding); save the file as CSV UTF-8",
                    n,
                )
        if n != self._latin1_line:
            try:
                raw.decode("utf-8")
            except UnicodeDecodeError:
                pass
            else:
                raise FileRefused(
                    f"this line is UTF-8 but line {self._latin1_line} was Latin-1; "
                    "the file mixes encodings: save it again as CSV UTF-8",
                    n,
                )
        return raw.decode("latin-1")

    # --- rows out ------------------------------------------------------------

    def finish(self) -> Table:
        if self._pending:
            self._decode(self._pending)
            self._pending = b""
        lines = self._lines
        while lines and not lines[-1].strip():
            lines.pop()
        first = next((i for i, text in enumerate(lines) if text.strip()), None)
        if first is None:
            raise FileRefused(
                "the file is empty: it needs a header line naming the columns, then one line per row"
            )
        header_line = lines[first]
        delimiter = ";" if header_line.count(";") > header_line.count(",") else ","
        reader = csv.reader(iter(lines), delimiter=delimiter, strict=True)
        table = Table(columns=[], rows=[], encoding=self.encoding, size=self.size, delimiter=delimiter)
        start = 1
        try:
            for record in reader:
                line = start
                start = reader.line_num + 1
                if not any(value.strip() for value in record):
                    continue  # blank line
                if not table.columns:
                    table.columns = _header(record, line)
                    table.header_line = line
                    continue
                if len(record) != len(table.columns):
                    table.row_errors.append(
                        (
                            line,
                            f"{len(record)} values for {len(table.columns)} columns (check the quotes and the {_name(delimiter)})",
                        )
                    )
                    continue
                table.rows.append(
                    Row(line, {c: _unescape(v.strip()) for c, v in zip(table.columns, record, strict=True)})
                )
        except csv.Error as exc:
            raise FileRefused(f"the CSV cannot be read ({exc}); check the quotes", start) from None
        if not table.rows and not table.row_errors:
            raise FileRefused("the file has a header but no rows")
        return table

    @property
    def encoding(self) -> str:
        if self._mode == "latin-1":
            return "latin-1"
        return "utf-8-sig" if self._bom else "utf-8"


def _name(delimiter: str) -> str:
    return "semicolons" if delimiter == ";" else "commas"


def _header(record: list[str], line: int) -> list[str]:
    columns = [normalize_header(unicodedata.normalize("NFC", c)) for c in record]
    if any(not c for c in columns):
        position = columns.index("") + 1
        raise FileRefused(f"column {position} of the header has no name", line)
    seen: set[str] = set()
    for c in columns:
        if c in seen:
            raise FileRefused(f"the column '{c}' appears twice in the header", line)
        seen.add(c)
    return columns


def check_columns(table: Table, *, required: Iterable[str], optional: Iterable[str]) -> None:
    """Refuse a header that lacks a required column or names one we do not know."""
    required = list(required)
    known = set(required) | set(optional)
    missing = [c for c in required if c not in table.columns]
    extra = [c for c in table.columns if c not in known]
    problems = []
    if missing:
        problems.append(f"missing column{'s' if len(missing) > 1 else ''}: {', '.join(missing)}")
    if extra:
        problems.append(f"unknown column{'s' if len(extra) > 1 else ''}: {', '.join(extra)}")
    if problems:
        expected = ", ".join([*required, *[c for c in optional if c not in required]])
        raise FileRefused(f"{'; '.join(problems)} (the columns are: {expected})", table.header_line)


def read_bytes(chunks: Iterable[bytes], *, limit: int | None = None) -> Table:
    reader = CsvReader(limit=limit)
    for chunk in chunks:
        reader.feed(chunk)
    return reader.finish()


async def read_stream(chunks: AsyncIterable[bytes], *, limit: int | None = None) -> Table:
    reader = CsvReader(limit=limit)
    async for chunk in chunks:
        reader.feed(chunk)
    return reader.finish()


def read_path(path, *, limit: int | None = None, on_bytes=None, chunk_size: int = 1 << 20) -> Table:
    """Read a file from disk in chunks; ``on_bytes(n)`` reports progress."""
    reader = CsvReader(limit=limit)
    with open(path, "rb") as f:
        while chunk := f.read(chunk_size):
            reader.feed(chunk)
            if on_bytes is not None:
                on_bytes(len(chunk))
    return reader.finish()


def write_rows(columns: list[str], rows: Iterable[Iterable[object]]) -> Iterator[str]:
    """CSV text in pieces (UTF-8 is the caller's encoding), header first: for streamed exports."""
    import io

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\r\n")
    writer.writerow(columns)
    count = 0
    for row in rows:
        writer.writerow(["" if v is None else _safe_cell(str(v)) for v in row])
        count += 1
        if count % 500 == 0:
            yield buffer.getvalue()
            buffer.seek(0)
            buffer.truncate()
    yield buffer.getvalue()


_FORMULA_START = "=+-@"
_PLAIN_NUMBER = set("0123456789 ()-+./")


def _safe_cell(value: str) -> str:
    """A cell a spreadsheet would run as a formula gets a leading quote (CSV injection).

    Phone numbers such as "+33 1 23 45 67 89" stay as they are; the importer
    removes the quote again, so an export imports back unchanged.
    """
    if value and value[0] in _FORMULA_START and not set(value) <= _PLAIN_NUMBER:
        return "'" + value
    return value


def _unescape(value: str) -> str:
    if len(value) > 1 and value[0] == "'" and value[1] in _FORMULA_START:
        return value[1:]
    return value
