"""What the unit tests share."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A data folder of the test's own (SEC_HOME): modules using it add `pytestmark = usefixtures("home")`."""
    monkeypatch.setenv("SEC_HOME", str(tmp_path / "home"))
    return tmp_path / "home"
