"""sec: the Enterprise Console for self-hosted Flow Production Tracking sites (CLI side).

The CLI uses the project's collection (cluster model, versions, release checks) rather than copies of
it, so importing this package makes `ansible_collections.fpt.sec` importable, from the checkout or from
the copy an installed wheel carries (sec_wrapper.paths). The collection never imports the CLI.
"""

import sys

from sec_wrapper.paths import COLLECTIONS_DIR, collection_version

__version__ = collection_version()

if str(COLLECTIONS_DIR) not in sys.path:
    sys.path.insert(0, str(COLLECTIONS_DIR))
