"""Makes the collection importable as `ansible_collections.fpt.sec` in every test."""

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "collections"))

# The tools the tests run (ansible-playbook, ansible-inventory, sec) are the ones beside this interpreter.
_BIN = str(Path(sys.executable).parent)
if _BIN not in os.environ.get("PATH", "").split(os.pathsep):
    os.environ["PATH"] = _BIN + os.pathsep + os.environ.get("PATH", "")
