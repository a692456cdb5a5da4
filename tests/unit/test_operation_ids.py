"""The operation id rule, once: the Python rule, the Jinja test and the lookup every playbook calls."""

from __future__ import annotations

import datetime
import re

import pytest
from ansible_collections.fpt.sec.plugins.module_utils.operation_ids import is_operation_id, run_operation_id
from ansible_collections.fpt.sec.plugins.test.operation_id import TestModule as OperationIdTests


@pytest.mark.parametrize("value", ["20261206T120000Z-ab12", "awx-42", "manual-x", "a" * 128, "x.y:z@w_v-1"])
def test_valid_ids(value: str) -> None:
    assert is_operation_id(value) and OperationIdTests().tests()["operation_id"](value)


@pytest.mark.parametrize("value", ["", "-lead", ".hidden", "a" * 129, "has space", "{{ x }}", "a/b", None, 7])
def test_invalid_ids(value: object) -> None:
    assert not is_operation_id(value)


def test_a_run_takes_the_given_id_else_awx_else_a_manual_one_that_differs_within_a_second() -> None:
    assert run_operation_id("mine-1", 42) == "mine-1"
    assert run_operation_id(None, 42) == "awx-42" and run_operation_id("", "43") == "awx-43"
    now = datetime.datetime(2026, 12, 6, 12, 0, 0, tzinfo=datetime.UTC)
    ids = {run_operation_id(None, None, now) for _ in range(50)}
    assert all(re.fullmatch(r"manual-20261206T120000Z-[0-9a-f]{4}", i) for i in ids) and len(ids) > 1
    with pytest.raises(ValueError, match="use letters, digits"):
        run_operation_id("not ok!", None)
