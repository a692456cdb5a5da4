"""Where sec keeps its data (SEC_HOME) and where the project's playbooks, collection and ansible.cfg live.

The project files are found by the package itself, never from the working directory: an installed wheel
carries them as sec_wrapper/_project/ (setup.py copies them there); a checkout (an editable install) has
them beside the package. SEC_PROJECT_DIR points sec at another checkout, for development.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

_PACKAGE_DIR = Path(__file__).resolve().parent


def _project_dir() -> Path:
    if os.environ.get("SEC_PROJECT_DIR"):
        return Path(os.environ["SEC_PROJECT_DIR"]).resolve()
    installed = _PACKAGE_DIR / "_project"
    return installed if installed.is_dir() else _PACKAGE_DIR.parent


PROJECT_DIR = _project_dir()
PLAYBOOKS_DIR = PROJECT_DIR / "playbooks"
COLLECTIONS_DIR = PROJECT_DIR / "collections"
COLLECTION_DIR = COLLECTIONS_DIR / "ansible_collections" / "fpt" / "sec"
ANSIBLE_CFG = PROJECT_DIR / "ansible.cfg"


def collection_version(collection_dir: Path = COLLECTION_DIR) -> str:
    """The fpt.sec collection's version (galaxy.yml): also the wheel's (setup.py) and `sec --version`'s."""
    galaxy = collection_dir / "galaxy.yml"
    try:
        found = re.search(r"^version:\s*['\"]?([^'\"\s]+)", galaxy.read_text(encoding="utf-8"), re.M)
    except OSError as exc:
        raise RuntimeError(f"sec cannot find its collection at {collection_dir}: reinstall sec, or set "
                           f"SEC_PROJECT_DIR to a checkout ({exc.strerror})") from exc
    if not found:
        raise RuntimeError(f"{galaxy} names no version")
    return found.group(1)


def sec_home() -> Path:
    """$SEC_HOME, else $XDG_DATA_HOME/sec, else ~/.local/share/sec (created on first use)."""
    if os.environ.get("SEC_HOME"):
        home = Path(os.environ["SEC_HOME"])
    else:
        xdg = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
        home = Path(xdg) / "sec"
    home.mkdir(parents=True, exist_ok=True)
    return home


def releases_dir() -> Path:
    path = sec_home() / "releases"
    path.mkdir(exist_ok=True)
    return path
