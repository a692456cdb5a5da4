"""The sandbox: a real local mini-cluster (sshd, PostgreSQL, Apache, site apps) for tests and demos."""

import json
from pathlib import Path

from sec_wrapper.sandbox.sandbox import Sandbox, default_dir, fresh_dir

TOPOLOGIES = ("single", "split")


def open_sandbox(folder: Path | None = None, topology: str | None = None) -> Sandbox:
    """The sandbox at folder (default: the last one brought up), of the topology its state records, or of
    `topology` for a new one."""
    if topology == "split" and folder is None:
        folder = fresh_dir("-split")
    box = Sandbox(folder)
    if topology is None and box.state_file.exists():
        topology = json.loads(box.state_file.read_text()).get("topology", "single")
    if topology == "split":
        from sec_wrapper.sandbox.split import SplitSandbox

        return SplitSandbox(box.dir)
    return box


__all__ = ["TOPOLOGIES", "Sandbox", "default_dir", "open_sandbox"]
