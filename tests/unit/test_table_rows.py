"""module_utils/table_rows: row counts from pg_restore's script, whatever the chunking."""

from __future__ import annotations

import random

import pytest
from ansible_collections.fpt.sec.plugins.module_utils.table_rows import TableRowCounter

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
