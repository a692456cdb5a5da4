# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The options that say how this host pulls from a source site's App server with rsync over SSH."""

from __future__ import annotations


class ModuleDocFragment:
    DOCUMENTATION = r"""
options:
  source_host:
    description:
      - The address by which this host reaches the source site's App server over SSH. Omit it when the
        source site is on this host (a local copy).
    type: str
  source_port:
    description: The SSH port of the source host.
    type: int
    default: 22
  source_user:
    description: The user to log in as on the source host. Defaults to ssh's choice (this user's name).
    type: str
  host_keys:
    description:
      - The source host's public host keys, each as C(<type> <base64>) (a line of a C(.pub) file, or a
        whole C(known_hosts) line). Only these are trusted for the source during the transfer.
      - When empty, the C(known_hosts) of the user the module runs as decides.
    type: list
    elements: str
    default: []
  ssh_key:
    description: A private key file on this host to log in to the source with, instead of the forwarded agent.
    type: path
  connect_timeout:
    description: Seconds to wait for the SSH connection to the source.
    type: int
    default: 15
"""
