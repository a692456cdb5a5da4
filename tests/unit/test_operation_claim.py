"""The two variables `sec serve` sets on the `sec` it launches: the pre-claimed operation id, used once, and
the console user, recorded as the operation's who."""

from __future__ import annotations

from pathlib import Path

import pytest

from sec_wrapper import history
from sec_wrapper.errors import SecError


@pytest.fixture(autouse=True)
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("SEC_HOME", str(tmp_path / "home"))
    monkeypatch.delenv(history.OPERATION_ID_ENV, raising=False)
    monkeypatch.delenv(history.OPERATION_USER_ENV, raising=False)
    return tmp_path / "home"


def test_claimed_id_is_used_once(monkeypatch: pytest.MonkeyPatch) -> None:
    assert history.claimed_operation_id() is None
    op_id = history.new_operation_id()
    monkeypatch.setenv(history.OPERATION_ID_ENV, op_id)
    assert history.claimed_operation_id() == op_id
    assert history.claimed_operation_id() is None  # a second operation of the same command gets its own


def test_a_claimed_id_must_be_an_unused_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(history.OPERATION_ID_ENV, "20260101T000000Z-abcd")
    with pytest.raises(SecError, match="not a claimed, unused operation folder"):
        history.claimed_operation_id()
    op_id = history.new_operation_id()
    history.write_record(op_id, {"id": op_id, "status": "successful"})
    monkeypatch.setenv(history.OPERATION_ID_ENV, op_id)
    with pytest.raises(SecError, match="not a claimed, unused"):
        history.claimed_operation_id()
    monkeypatch.setenv(history.OPERATION_ID_ENV, "../../etc")
    with pytest.raises(SecError, match="is not an operation id"):
        history.claimed_operation_id()


def test_console_user_is_the_operations_who(monkeypatch: pytest.MonkeyPatch) -> None:
    assert "@" in history.current_user()
    monkeypatch.setenv(history.OPERATION_USER_ENV, "alice")
    assert history.current_user() == "alice"
