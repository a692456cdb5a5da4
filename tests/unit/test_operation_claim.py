"""A detached start claims its operation's id ahead of the run (to answer with it at once): the run takes
only a claimed, unused folder."""

from __future__ import annotations

import getpass

import pytest

from sec_wrapper import history
from sec_wrapper.errors import SecError

pytestmark = pytest.mark.usefixtures("home")  # a data folder of each test's own (tests/unit/conftest.py)


def test_a_claimed_id_is_taken_while_its_folder_is_unused() -> None:
    op_id = history.new_operation_id()
    assert history.check_claimed(op_id) == op_id


def test_a_claimed_id_must_be_an_unused_folder() -> None:
    with pytest.raises(SecError, match="not a claimed, unused operation folder"):
        history.check_claimed("20260101T000000Z-abcd")
    op_id = history.new_operation_id()
    history.write_record(op_id, {"id": op_id, "status": "successful"})
    with pytest.raises(SecError, match="not a claimed, unused"):
        history.check_claimed(op_id)
    with pytest.raises(SecError, match="is not an operation id"):
        history.check_claimed("../../etc")


def test_a_shell_run_is_recorded_as_the_os_user() -> None:
    assert history.current_user() == getpass.getuser()  # the machine is the record's `host`
    assert history.started_via(None) == "cli" and history.started_via("alice") == "console"
    assert history.started_via("schedule:nightly") == "schedule"
