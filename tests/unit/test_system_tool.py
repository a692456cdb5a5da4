"""The sandbox finds its system tools in /usr/sbin and /sbin when PATH lacks them (an installed sec run with a
minimal PATH), and names the package to install when they are nowhere."""

from __future__ import annotations

import pytest

from sec_wrapper.sandbox import processes
from sec_wrapper.sandbox.processes import system_tool


def test_found_in_sbin_without_it_on_path(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    sbin = tmp_path / "sbin"
    sbin.mkdir()
    tool = sbin / "runuser"
    tool.write_text("#!/bin/sh\n")
    tool.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.setattr(processes, "SYSTEM_BIN_DIRS", (str(sbin),))
    assert system_tool(("runuser",), "util-linux") == str(tool)


def test_missing_everywhere_names_the_package(monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(processes, "SYSTEM_BIN_DIRS", (str(tmp_path),))
    with pytest.raises(RuntimeError, match="install the apache2 package"):
        system_tool(("apache2", "httpd"), "apache2")
