"""The execution environment definition builds its context offline, the collection it installs names its
system dependencies, and an AWX project sync finds the collection through collections/requirements.yml."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml
from bindep.depends import Depends

ROOT = Path(__file__).resolve().parents[2]
COLLECTION = ROOT / "collections/ansible_collections/fpt/sec"
BIN = Path(sys.executable).parent
# Anything that tried the network would fail at once instead of hanging: these steps must not need it.
OFFLINE = {"http_proxy": "http://127.0.0.1:9", "https_proxy": "http://127.0.0.1:9",
           "HTTP_PROXY": "http://127.0.0.1:9", "HTTPS_PROXY": "http://127.0.0.1:9", "no_proxy": ""}


def _run(argv: list[str], cwd: Path, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=300,
                          env={**clean, "PATH": f"{BIN}:{clean.get('PATH', '')}", **OFFLINE, **env})


def _create_context(tmp_path: Path) -> Path:
    context = tmp_path / "context"
    done = _run([str(BIN / "ansible-builder"), "create", "-f", "execution-environment.yml", "-c", str(context),
                 "--output-filename", "Containerfile"], ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    return context


def test_definition_is_schema_3_and_installs_this_collection() -> None:
    definition = yaml.safe_load((ROOT / "execution-environment.yml").read_text())
    assert definition["version"] == 3
    (collection,) = definition["dependencies"]["galaxy"]["collections"]
    assert collection["type"] == "dir"
    meta = yaml.safe_load((COLLECTION / "meta/execution-environment.yml").read_text())
    assert meta["dependencies"] == {"python": "requirements.txt", "system": "bindep.txt"}


def test_ansible_builder_create_writes_the_build_context_offline(tmp_path: Path) -> None:
    context = _create_context(tmp_path)
    containerfile = (context / "Containerfile").read_text()
    assert "FROM $EE_BASE_IMAGE AS base" in containerfile
    assert "ansible-galaxy collection install" in containerfile
    copied = context / "_build/fpt_sec"
    assert (copied / "galaxy.yml").is_file() and (copied / "plugins/inventory/apache_sites.py").is_file()
    assert not (copied / "tests").exists(), "the collection's tests (and their output) stay out of the image"


def test_collection_installs_from_the_context_and_names_its_dependencies(tmp_path: Path) -> None:
    """What the image build does after `create`: install the collection from the context, then let
    ansible-builder's introspection collect its Python and system requirements."""
    context = _create_context(tmp_path)
    installed = tmp_path / "installed"
    done = _run([str(BIN / "ansible-galaxy"), "collection", "install", str(context / "_build/fpt_sec"),
                 "-p", str(installed)], context / "_build", ANSIBLE_GALAXY_DISABLE_GPG_VERIFY="1")
    assert done.returncode == 0, done.stdout + done.stderr
    assert (installed / "ansible_collections/fpt/sec/MANIFEST.json").is_file()
    done = _run([str(BIN / "ansible-builder"), "introspect", str(installed)], ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    found = yaml.safe_load(done.stdout.split("---", 1)[1])
    system = " ".join(found["system"])
    for package in ("openssh-clients", "openssh-client", "rsync", "postgresql", "postgresql-client"):
        assert f"{package} " in system, package
    assert found["python"] == []


def test_bindep_names_the_tools_on_both_package_families() -> None:
    depends = Depends((COLLECTION / "bindep.txt").read_text())
    for profile, expected in (("platform:rpm", {"openssh-clients", "rsync", "postgresql"}),
                              ("platform:dpkg", {"openssh-client", "rsync", "postgresql-client"})):
        assert {rule[0] for rule in depends.active_rules([profile])} == expected


def test_an_awx_project_sync_installs_the_collection_from_the_project(tmp_path: Path) -> None:
    """AWX runs `ansible-galaxy collection install -r collections/requirements.yml` in the project folder
    with ANSIBLE_COLLECTIONS_PATH set to the job's requirements_collections folder."""
    target = tmp_path / "requirements_collections"
    done = _run([str(BIN / "ansible-galaxy"), "collection", "install", "-r", "collections/requirements.yml"], ROOT,
                ANSIBLE_COLLECTIONS_PATH=str(target))
    assert done.returncode == 0, done.stdout + done.stderr
    manifest = target / "ansible_collections/fpt/sec/MANIFEST.json"
    assert manifest.is_file() and '"namespace": "fpt"' in manifest.read_text()
