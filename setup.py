"""What pyproject.toml cannot say declaratively: the version and the project files the wheel carries.

The version is the collection's (its galaxy.yml): one number for the wheel, the collection and
`sec --version`. The wheel carries the project's playbooks, its ansible.cfg and the fpt.sec collection as
sec_wrapper/_project/, laid out as in the checkout, so that an installed `sec` finds them beside its own code
(sec_wrapper/paths.py), wherever it was installed. The sdist carries them through MANIFEST.in.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

from setuptools import setup
from setuptools.command.build_py import build_py

HERE = Path(__file__).resolve().parent
COLLECTION = Path("collections/ansible_collections/fpt/sec")
# Relative to the project root; copied under sec_wrapper/_project/ with the same relative paths.
SHIPPED = [Path("ansible.cfg"), Path("playbooks"), COLLECTION]
# The collection's own tests (and their output) are for its developers, not for running sec.
NOT_SHIPPED = shutil.ignore_patterns("__pycache__", "*.pyc", "tests", "*.tar.gz")


def collection_version() -> str:
    # sec_wrapper.paths reads it for `sec --version`; loaded by file, as the package's dependencies are not
    # installed while it builds.
    spec = importlib.util.spec_from_file_location("sec_paths", HERE / "sec_wrapper" / "paths.py")
    paths = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(paths)
    return paths.collection_version(HERE / COLLECTION)


class BuildPyWithProject(build_py):
    def run(self) -> None:
        super().run()
        if self.editable_mode:  # an editable install reads the checkout itself
            return
        target = Path(self.build_lib) / "sec_wrapper" / "_project"
        shutil.rmtree(target, ignore_errors=True)
        for relative in SHIPPED:
            source, dest = HERE / relative, target / relative
            dest.parent.mkdir(parents=True, exist_ok=True)
            if source.is_dir():
                shutil.copytree(source, dest, ignore=NOT_SHIPPED)
            else:
                shutil.copy2(source, dest)


setup(version=collection_version(), cmdclass={"build_py": BuildPyWithProject})
