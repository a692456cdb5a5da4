# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Every table's row count, read from the SQL script pg_restore writes, as the backup's read-back streams it.

A backup's read-back (``pg_restore --file -`` of the new archive) already decompresses every table's data;
counting the lines of each ``COPY ... FROM stdin;`` block on the way costs a pass over bytes already in
memory. The counts go in the manifest, and a restore drill compares them with the restored tables'.

In COPY's text format one row is one line (a newline inside a value is written ``\\n``), and the block ends
with a line ``\\.`` (a value that is a lone backslash-dot is written ``\\\\.``).

Pure standard library, Python 3.8 compatible syntax: this file ships to managed hosts.
"""

from __future__ import annotations

COPY_PREFIX = b"COPY "
COPY_SUFFIX = b" FROM stdin;"
END_OF_DATA = b"\\.\n"


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
