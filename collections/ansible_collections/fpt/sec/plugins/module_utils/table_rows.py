# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every table's row count, read from the SQL script pg_restore writes, as the backup's read-back streams it.

A backup's read-back (``pg_restore --file -`` of the new archive) already decompresses every table's data;
counting the lines of each ``COPY ... FROM stdin;`` block on the way costs a pass over bytes already in
memory. The counts go in the manifest, and a restore drill compares them with the restored tables'.

In COPY's text format one row is one line (a newline inside a value is written ``\\n``), and the block ends
with a line ``\\.`` (a value that is a lone backslash-dot is written ``\\\\.``).

A directory-format archive compressed with gzip (or not at all) can be read back faster without
pg_restore: its data files are the COPY text itself, one per ``TABLE DATA`` entry, and pg_restore only
decompresses them into its script. ``read_data_files`` decompresses each one whole here (the gzip stream's own
CRC and length checked at its end) and counts its rows, which avoids the script's trip through a pipe in 4 KiB
writes (pg_restore's stdio buffer for a pipe): about a quarter of the read-back's time. Archives it does not
know (large objects, lz4 or zstd files, a table the catalog does not name) are left to the script's path.

Pure standard library, Python 3.8 compatible syntax: this file ships to managed hosts.
"""

from __future__ import annotations

import os
import re
import zlib

COPY_PREFIX = b"COPY "
COPY_SUFFIX = b" FROM stdin;"
END_OF_DATA = b"\\.\n"
TOC_FILE = "toc.dat"
# pg_restore --list: "<dumpId>; <tableoid> <oid> TABLE DATA <schema> <table> <owner>"; the oid is the table's.
_TABLE_DATA_RE = re.compile(r"^(\d+); \d+ (\d+) TABLE DATA ", re.MULTILINE)
_DATA_FILE_RE = re.compile(r"^(\d+)\.dat(\.gz)?$")
_TAIL_BYTES = 4096
_CHUNK_BYTES = 1 << 18


class NotReadable(Exception):
    """A data file this reader does not know how to end (another pg_dump's layout): read the archive back
    with pg_restore instead. Damage is a ValueError."""


class TableRowCounter:
    """Fed the script in chunks of any size; ``counts`` maps ``schema.table`` (as pg_restore quotes it) to
    its row count once the script has been fed whole."""

    def __init__(self) -> None:
        self.counts: dict[str, int] = {}
        self._table: str | None = None
        self._tail = b""

    def feed(self, chunk: bytes) -> None:
        end = chunk.rfind(b"\n")
        if end < 0:
            self._tail += chunk
            return
        start = 0
        if self._tail:  # the line the last chunk began, completed on its own (the chunk is not copied)
            first = chunk.find(b"\n") + 1
            line = self._tail + chunk[:first]
            self._lines(line, 0, len(line))
            start = first
        self._tail = chunk[end + 1:]
        self._lines(chunk, start, end + 1)

    def close(self) -> dict[str, int]:
        """The counts; a script that stopped inside a COPY block (or mid-line) is an error."""
        if self._tail:
            line = self._tail + b"\n"
            self._lines(line, 0, len(line))
            self._tail = b""
        if self._table is not None:
            raise ValueError(f"the data of {self._table} ends without its end-of-data line")
        return self.counts

    def _lines(self, block: bytes, pos: int, size: int) -> None:
        """Reads the whole lines of block[pos:size] (pos is at a line's start)."""
        while pos < size:
            if self._table is None:
                start = pos if block.startswith(COPY_PREFIX, pos) else block.find(b"\n" + COPY_PREFIX, pos, size)
                if start < 0:
                    return
                if start != pos:
                    start += 1
                line_end = block.find(b"\n", start, size)
                header = block[start:line_end]
                pos = line_end + 1
                if header.endswith(COPY_SUFFIX):
                    self._table = _qualified_name(header[len(COPY_PREFIX):]).decode("utf-8", "replace")
                    self.counts.setdefault(self._table, 0)
                continue
            if block.startswith(END_OF_DATA, pos):
                stop = pos
            else:
                stop = block.find(b"\n" + END_OF_DATA, pos, size)
                if stop >= 0:
                    stop += 1
            if stop < 0:
                self.counts[self._table] += block.count(b"\n", pos, size)
                return
            self.counts[self._table] += block.count(b"\n", pos, stop)
            self._table = None
            pos = stop + len(END_OF_DATA)


def _qualified_name(text: bytes) -> bytes:
    """``schema.table`` at the start of ``text``, as written (quoted parts may hold spaces): up to the first
    space outside double quotes."""
    quoted = False
    for index, byte in enumerate(text):
        if byte == 0x22:  # a doubled quote inside a quoted name toggles twice
            quoted = not quoted
        elif byte == 0x20 and not quoted:
            return text[:index]
    return text


def data_files_plan(dump_dir: str, listing: str, names_by_oid: dict[str, str]) -> dict[str, str] | None:
    """{data file path: table name} when the archive's data files and its ``TABLE DATA`` entries (from
    ``pg_restore --list``) match one to one, each a gzip or plain file of a table ``names_by_oid`` names;
    None for anything else (large objects, lz4 or zstd files, a table the catalog does not know)."""
    tables: dict[str, str] = {}
    for dump_id, oid in _TABLE_DATA_RE.findall(listing):
        if oid not in names_by_oid:
            return None
        tables[dump_id] = names_by_oid[oid]
    plan: dict[str, str] = {}
    seen: set[str] = set()
    for entry in os.listdir(dump_dir):
        if entry == TOC_FILE:
            continue
        match = _DATA_FILE_RE.match(entry)
        if not match or match.group(1) not in tables or match.group(1) in seen:
            return None
        seen.add(match.group(1))
        plan[os.path.join(dump_dir, entry)] = tables[match.group(1)]
    return plan if len(seen) == len(tables) else None


def rows_in_data_file(path: str) -> int:
    """The rows of one data file of a directory-format archive, read whole. Raises ValueError when it is
    damaged or cut short, NotReadable when it does not end as pg_dump ends COPY data (``\\.`` then blank
    lines): a layout this reader does not know."""
    name = os.path.basename(path)
    inflate = zlib.decompressobj(16 + zlib.MAX_WBITS) if path.endswith(".gz") else None
    newlines = 0
    tail = b""
    with open(path, "rb", buffering=0) as stream:
        while True:
            chunk = stream.read(_CHUNK_BYTES)
            if not chunk:
                break
            if inflate is not None:
                try:
                    chunk = inflate.decompress(chunk)
                except zlib.error as exc:
                    raise ValueError(f"{name} is damaged: {exc}") from None
            newlines += chunk.count(b"\n")
            tail = chunk[-_TAIL_BYTES:] if len(chunk) >= _TAIL_BYTES else (tail + chunk)[-_TAIL_BYTES:]
    if inflate is not None:
        rest = inflate.flush()
        newlines += rest.count(b"\n")
        tail = (tail + rest)[-_TAIL_BYTES:]
        if not inflate.eof:
            raise ValueError(f"{name} is cut short: its gzip stream does not end")
        if inflate.unused_data:
            raise NotReadable(f"{name} holds more than one gzip stream")
    body = tail.rstrip(b"\n")
    if body != END_OF_DATA[:-1] and not body.endswith(b"\n" + END_OF_DATA[:-1]):
        raise NotReadable(f"{name} does not end with COPY's end-of-data line")
    # Every newline from the end-of-data line on is not a row's.
    return newlines - (len(tail) - len(body))


def read_data_files(plan: dict[str, str]) -> dict[str, int]:
    """{table: rows} for a ``data_files_plan``, every file read whole (see rows_in_data_file)."""
    counts: dict[str, int] = {}
    for path in sorted(plan):
        counts[plan[path]] = counts.get(plan[path], 0) + rows_in_data_file(path)
    return counts
