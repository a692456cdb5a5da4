"""What every benchmark shares: a time-stamped log on stderr, and a private sandbox in a work folder of its own
(a private SEC_HOME, so that the user's own sandbox, clusters and history are left alone)."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "collections"))
sys.path.insert(0, str(ROOT))


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


@contextmanager
def private_sandbox(name: str, folder: Path | None, keep: bool, topology: str = "single",
                    **up: Any) -> Iterator[tuple[Path, Any, dict]]:
    """Brings a sandbox up (`Sandbox.up(**up)`) in `folder`, or a new one under /var/tmp, and yields the work
    folder, the sandbox and what `up` returned. Afterwards the sandbox goes down and the folder goes, unless
    `keep`."""
    work = folder or Path(tempfile.mkdtemp(prefix=f"sec-bench-{name}-", dir="/var/tmp"))
    home = work / "home"
    home.mkdir(parents=True, exist_ok=True)
    for path in (work, home):
        path.chmod(0o755)  # as root, PostgreSQL runs as postgres and must reach its data folder
    os.environ["SEC_HOME"] = str(home)
    from sec_wrapper.sandbox import open_sandbox

    box = open_sandbox(home / "sandbox", topology)
    log(f"sandbox in {box.dir}")
    try:
        yield work, box, box.up(progress=log, **up)
    finally:
        if keep:
            log(f"sandbox left up in {box.dir}: SEC_HOME={home} sec sandbox down")
        else:
            box.down()
            shutil.rmtree(work, ignore_errors=True)
