"""Where sec keeps its data (SEC_HOME) and where the project's playbooks and collection live."""

from __future__ import annotations

import os
from pathlib import Path

PROJECT_DIR = Path(os.environ.get("SEC_PROJECT_DIR", Path(__file__).resolve().parent.parent))
PLAYBOOKS_DIR = PROJECT_DIR / "playbooks"
COLLECTIONS_DIR = PROJECT_DIR / "collections"
ANSIBLE_CFG = PROJECT_DIR / "ansible.cfg"


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
