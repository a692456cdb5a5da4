"""Packaging metadata agrees with itself: one version (the collection's) for the wheel, the collection and
`sec --version`; ansible-core bounds as the execution environment's and the collection's; no invented URL;
and the installed package finds its project files itself. Building and installing for real is
scripts/test-install's job."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from sec_wrapper import paths

ROOT = Path(__file__).resolve().parents[2]
COLLECTION = ROOT / "collections/ansible_collections/fpt/sec"


def _pyproject() -> dict:
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _requirement(name: str) -> Requirement:
    (found,) = [r for r in map(Requirement, _pyproject()["project"]["dependencies"]) if r.name == name]
    return found


def test_one_version_the_collections() -> None:
    project = _pyproject()["project"]
    assert "version" not in project and "version" in project["dynamic"], "setup.py sets it from galaxy.yml"
    galaxy = yaml.safe_load((COLLECTION / "galaxy.yml").read_text())
    assert paths.collection_version(COLLECTION) == str(galaxy["version"])
    done = subprocess.run([sys.executable, "-m", "sec_wrapper.cli", "--version"], capture_output=True, text=True,
                          cwd=ROOT, timeout=60)
    assert done.stdout.strip() == f"sec {galaxy['version']}", done.stderr


def test_collection_version_quoted_or_not(tmp_path: Path) -> None:
    (tmp_path / "galaxy.yml").write_text("namespace: fpt\nname: sec\nversion: '1.2.3'\n")
    assert paths.collection_version(tmp_path) == "1.2.3"
    (tmp_path / "galaxy.yml").write_text("namespace: fpt\nname: sec\n")
    with pytest.raises(RuntimeError, match="names no version"):
        paths.collection_version(tmp_path)
    with pytest.raises(RuntimeError, match="SEC_PROJECT_DIR"):
        paths.collection_version(tmp_path / "missing")


def test_ansible_core_bounds_agree_with_the_execution_environment_and_the_collection() -> None:
    ee = yaml.safe_load((ROOT / "execution-environment.yml").read_text())["dependencies"]
    for key, name in (("ansible_core", "ansible-core"), ("ansible_runner", "ansible-runner")):
        in_ee = Requirement(ee[key]["package_pip"])
        assert in_ee.name == name
        assert in_ee.specifier == _requirement(name).specifier, f"{name}: pyproject and the EE differ"
    runtime = yaml.safe_load((COLLECTION / "meta/runtime.yml").read_text())
    lowest = min(Version(s.version) for s in _requirement("ansible-core").specifier if s.operator == ">=")
    collection_needs = SpecifierSet(runtime["requires_ansible"])
    assert lowest in collection_needs, "pyproject allows an ansible-core the collection refuses"
    assert Version(f"{lowest.major}.{lowest.minor - 1}") not in collection_needs


def test_license_is_spdx_and_no_invented_url() -> None:
    project = _pyproject()["project"]
    assert project["license"] == "GPL-3.0-or-later"
    galaxy = yaml.safe_load((COLLECTION / "galaxy.yml").read_text())
    assert galaxy["license"] == [project["license"]]
    urls = [*project.get("urls", {}).values(),
            *(galaxy.get(k) for k in ("repository", "documentation", "homepage", "issues") if galaxy.get(k))]
    assert not [u for u in urls if ".invalid" in u or "example." in u]


def _layout(root: Path) -> Path:
    for folder in ("playbooks", "collections/ansible_collections/fpt/sec"):
        (root / folder).mkdir(parents=True)
    (root / "ansible.cfg").write_text("[defaults]\n")
    return root


def test_installed_package_uses_the_project_it_carries(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "site-packages/sec_wrapper"
    carried = _layout(package / "_project")
    monkeypatch.delenv("SEC_PROJECT_DIR", raising=False)
    monkeypatch.setattr(paths, "_PACKAGE_DIR", package)
    assert paths._project_dir() == carried


def test_checkout_uses_itself_and_sec_project_dir_wins(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    checkout = _layout(tmp_path / "checkout")
    (checkout / "sec_wrapper").mkdir()
    monkeypatch.delenv("SEC_PROJECT_DIR", raising=False)
    monkeypatch.setattr(paths, "_PACKAGE_DIR", checkout / "sec_wrapper")
    assert paths._project_dir() == checkout
    other = _layout(tmp_path / "other")
    monkeypatch.setenv("SEC_PROJECT_DIR", str(other))
    assert paths._project_dir() == other
