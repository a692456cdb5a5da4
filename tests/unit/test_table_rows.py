"""module_utils/table_rows: row counts from pg_restore's script, whatever the chunking, and from the data files."""

from __future__ import annotations

import gzip
import random

import pytest
from ansible_collections.fpt.sec.plugins.module_utils.table_rows import (
    NotReadable,
    TableRowCounter,
    data_files_plan,
    read_data_files,
    rows_in_data_file,
)

SCRIPT = (
    b"--\n-- PostgreSQL database dump\n--\nSET statement_timeout = 0;\n"
    b"CREATE TABLE public.projects (id integer, name text);\n"
    b"-- a comment that says COPY public.fake (id) FROM stdin; in passing\n"
    b"COPY public.projects (id, name) FROM stdin;\n"
    b"1\tAlpha\n2\tBeta\\nwith a newline\n3\t\\\\.\n"
    b"\\.\n\n\n"
    b"COPY public.empty (id) FROM stdin;\n\\.\n"
    b"COPY public.\"Odd (name)\" (id) FROM stdin;\n7\n\\.\n"
    b"COPY public.event_log_entries (id, meta) FROM stdin;\n"
    + b"".join(b"%d\t{\"k\": %d}\n" % (i, i) for i in range(1, 1001))
    + b"\\.\n\nCREATE INDEX x ON public.projects (id);\n"
)
EXPECTED = {"public.projects": 3, "public.empty": 0, 'public."Odd (name)"': 1, "public.event_log_entries": 1000}


def feed_in_chunks(data: bytes, sizes: list[int]) -> dict[str, int]:
    counter = TableRowCounter()
    pos = 0
    for size in sizes:
        counter.feed(data[pos:pos + size])
        pos += size
    counter.feed(data[pos:])
    return counter.close()


def test_counts_every_copy_block_in_one_chunk() -> None:
    assert feed_in_chunks(SCRIPT, []) == EXPECTED


@pytest.mark.parametrize("seed", range(20))
def test_the_same_counts_whatever_the_chunk_boundaries(seed: int) -> None:
    rng = random.Random(seed)
    sizes = [rng.randint(1, 40) for _ in range(len(SCRIPT) // 10)]
    assert feed_in_chunks(SCRIPT, sizes) == EXPECTED


def test_byte_by_byte() -> None:
    assert feed_in_chunks(SCRIPT, [1] * len(SCRIPT)) == EXPECTED


def test_a_script_cut_inside_a_copy_block_is_an_error() -> None:
    counter = TableRowCounter()
    counter.feed(SCRIPT[:SCRIPT.index(b"500\t")])
    with pytest.raises(ValueError, match="event_log_entries"):
        counter.close()


# -- the data files of a directory-format archive ---------------------------------------------------------------
ROWS = b"1\tAlpha\n2\tBeta\\nwith a newline\n3\t\\\\.\n4\tends with a backslash-dot \\\\.\n"
DATA = ROWS + b"\\.\n\n\n"  # as pg_dump ends a table's COPY data
LISTING = (
    ";\n; Archive created at 2026-12-07 12:00:00 UTC\n;\n"
    "216; 1259 16394 TABLE public projects owner\n"
    "3392; 0 16394 TABLE DATA public projects owner\n"
    "3390; 0 16386 TABLE DATA public schema_migrations owner\n"
    "3412; 0 0 SEQUENCE SET public projects_id_seq owner\n"
)
NAMES = {"16394": "public.projects", "16386": "public.schema_migrations", "1": "public.unused"}


def archive(tmp_path, files: dict[str, bytes]) -> str:
    folder = tmp_path / "dump"
    folder.mkdir()
    (folder / "toc.dat").write_bytes(b"PGDMP")
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return str(folder)


def test_rows_of_gzip_and_plain_data_files(tmp_path) -> None:
    folder = archive(tmp_path, {"3392.dat.gz": gzip.compress(DATA), "3390.dat": b"\\.\n\n\n"})
    plan = data_files_plan(folder, LISTING, NAMES)
    assert plan == {f"{folder}/3392.dat.gz": "public.projects", f"{folder}/3390.dat": "public.schema_migrations"}
    assert read_data_files(plan) == {"public.projects": 4, "public.schema_migrations": 0}


def test_a_big_data_file_is_counted_across_reads(tmp_path) -> None:
    rows = b"".join(b"%d\t{\"k\": %d}\n" % (i, i) for i in range(300_000))  # several reads and inflates
    path = tmp_path / "9.dat.gz"
    path.write_bytes(gzip.compress(rows + b"\\.\n\n\n", compresslevel=1))
    assert rows_in_data_file(str(path)) == 300_000


@pytest.mark.parametrize(("files", "listing"), [
    ({"3392.dat.gz": b"", "3390.dat": b""}, LISTING + "3399; 0 77 TABLE DATA public unknown owner\n"),
    ({"3392.dat.gz": b""}, LISTING),  # a TABLE DATA entry without its file
    ({"3392.dat.gz": b"", "3390.dat": b"", "blobs.toc": b""}, LISTING),  # large objects: pg_restore's job
    ({"3392.dat.zst": b"", "3390.dat": b""}, LISTING),  # zstd: pg_restore's job
    ({"3392.dat.gz": b"", "3392.dat": b"", "3390.dat": b""}, LISTING),
])
def test_archives_the_data_files_reader_does_not_know_go_to_pg_restore(tmp_path, files, listing) -> None:
    assert data_files_plan(archive(tmp_path, files), listing, NAMES) is None


def test_a_damaged_or_cut_data_file_is_an_error(tmp_path) -> None:
    whole = gzip.compress(DATA * 1000)
    (tmp_path / "1.dat.gz").write_bytes(whole[:len(whole) // 2])
    with pytest.raises(ValueError, match="cut short"):
        rows_in_data_file(str(tmp_path / "1.dat.gz"))
    flipped = bytearray(whole)
    flipped[len(flipped) // 2] ^= 0xFF
    (tmp_path / "2.dat.gz").write_bytes(bytes(flipped))
    with pytest.raises(ValueError, match="damaged"):
        rows_in_data_file(str(tmp_path / "2.dat.gz"))
    crc = bytearray(gzip.compress(DATA))
    crc[-5] ^= 0x01  # the trailer's CRC-32: every byte inflates, the check at the end fails
    (tmp_path / "3.dat.gz").write_bytes(bytes(crc))
    with pytest.raises(ValueError, match="damaged"):
        rows_in_data_file(str(tmp_path / "3.dat.gz"))


@pytest.mark.parametrize("data", [
    ROWS,  # no end-of-data line: not the layout this reader knows (a plain file cut short looks the same)
    gzip.compress(DATA) + gzip.compress(DATA),  # two gzip streams
])
def test_a_data_file_that_does_not_end_as_pg_dump_ends_it_goes_to_pg_restore(tmp_path, data) -> None:
    path = tmp_path / ("1.dat.gz" if data[:2] == b"\x1f\x8b" else "1.dat")
    path.write_bytes(data)
    with pytest.raises(NotReadable):
        rows_in_data_file(str(path))
