"""sec: the Enterprise Console for self-hosted Flow Production Tracking sites (CLI side).

The CLI uses the project's collection (cluster model, versions, release checks) rather than copies of
it, so importing this package makes `ansible_collections.fpt.sec` importable. The collection never
imports the CLI.
"""

import sys
from pathlib import Path

__version__ = "0.1.0"

_COLLECTIONS = str(Path(__file__).resolve().parent.parent / "collections")
if _COLLECTIONS not in sys.path:
    sys.path.insert(0, _COLLECTIONS)
