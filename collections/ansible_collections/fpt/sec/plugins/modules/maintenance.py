#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: maintenance
short_description: Put a site into maintenance, or take it out
version_added: "0.1.0"
description:
  - Turns a site's maintenance page on or off on the App server. While
    C(<site_dir>/tmp/maintenance.html) exists, the site's Apache virtual host answers every request
    with 503 and that page.
  - O(state=on) writes the page atomically. The page is first written to a temporary file in the same
    folder, then renamed, so Apache never serves half a page. The mode is 0644 so that Apache's user can
    read it. O(state=off) removes the page.
  - Idempotent. The same page already in place, or no page when turning off, reports no change.
extends_documentation_fragment:
  - fpt.sec.site
options:
  state:
    description: V(on) shows the maintenance page, V(off) removes it.
    type: str
    choices: ["on", "off"]
    default: "on"
  site_name:
    description:
      - The site's name, shown on the default page. Defaults to the name of O(site_dir)'s folder.
    type: str
  notice:
    description:
      - A message to show on the default page, for example the expected end of the maintenance.
      - Ignored when O(page) is given. (Ansible reserves the option name C(message).)
    type: str
  page:
    description:
      - The complete HTML of the maintenance page, instead of the default page.
    type: str
attributes:
  check_mode:
    support: full
    description: Reports whether the page would be written or removed, and writes nothing.
  diff_mode:
    support: full
    description: Shows the page before and after.
notes:
  - The C(tmp) folder of the site dir is created (mode 0755) when missing. The site dir itself must exist.
"""

EXAMPLES = r"""
- name: Put the site into maintenance with a message
  fpt.sec.maintenance:
    site_dir: "{{ sec_site.site_dir }}"
    site_name: "{{ sec_site.name }}"
    notice: Upgrading to 8.2, back by 14:00 UTC

- name: Use our own page
  fpt.sec.maintenance:
    site_dir: /var/rails/com_teststudio_prod
    page: "{{ lookup('ansible.builtin.file', 'files/maintenance.html') }}"

- name: Back to service
  fpt.sec.maintenance:
    site_dir: /var/rails/com_teststudio_prod
    state: "off"
"""

RETURN = r"""
page_path:
  description:
    - The maintenance page's file. (Not named C(path), which would make Ansible replace RV(state) with
      the file's own state.)
  returned: always
  type: str
  sample: /var/rails/com_teststudio_prod/tmp/maintenance.html
state:
  description: The state of the site after the task (or that it would have, in check mode).
  returned: always
  type: str
  sample: "on"
"""

import html
import os

from ansible_collections.fpt.sec.plugins.module_utils.durable import write_atomic
from ansible_collections.fpt.sec.plugins.module_utils.site_module import site_module

PAGE_MODE = 0o644
DEFAULT_MESSAGE = "The site is down for maintenance. Please try again shortly."


def default_page(site_name: str, message: str | None) -> str:
    name = html.escape(site_name)
    text = html.escape(message or DEFAULT_MESSAGE)
    return (
        "<!DOCTYPE html>\n"
        "<html lang=\"en\">\n"
        f"<head><meta charset=\"utf-8\"><title>{name}: maintenance</title></head>\n"
        "<body style=\"font-family: sans-serif; margin: 4em auto; max-width: 40em\">\n"
        f"<h1>{name} is under maintenance</h1>\n"
        f"<p>{text}</p>\n"
        "</body>\n"
        "</html>\n"
    )


def read_bytes(path: str) -> bytes | None:
    try:
        with open(path, "rb") as handle:
            return handle.read()
    except FileNotFoundError:
        return None


def main() -> None:
    module = site_module(
        argument_spec={
            "state": {"type": "str", "choices": ["on", "off"], "default": "on"},
            "site_name": {"type": "str"},
            "notice": {"type": "str"},
            "page": {"type": "str"},
        },
        supports_check_mode=True,
    )
    params = module.params
    site_dir = params["site_dir"].rstrip("/") or "/"
    folder = os.path.join(site_dir, "tmp")
    path = os.path.join(folder, "maintenance.html")
    if not os.path.isdir(site_dir):
        module.fail_json(msg=f"site dir {site_dir} does not exist on this host", page_path=path)

    current = read_bytes(path)
    result = {"page_path": path, "state": params["state"]}
    before = "" if current is None else current.decode("utf-8", "replace")

    if params["state"] == "off":
        changed = current is not None
        if changed and not module.check_mode:
            try:
                os.unlink(path)
            except FileNotFoundError:
                changed = False
            except OSError as exc:
                module.fail_json(msg=f"cannot remove {path}: {exc.strerror}", **result)
        module.exit_json(changed=changed, diff={"before": before, "after": "", "before_header": path,
                                                "after_header": path}, **result)

    content = params["page"] if params["page"] is not None else default_page(
        params["site_name"] or os.path.basename(site_dir), params["notice"])
    data = content.encode("utf-8")
    mode_ok = current is not None and (os.stat(path).st_mode & 0o777) == PAGE_MODE
    changed = current != data or not mode_ok
    if changed and not module.check_mode:
        try:
            if not os.path.isdir(folder):
                os.mkdir(folder, 0o755)
            write_atomic(path, data, PAGE_MODE)  # Apache runs as its own user and must read it
        except OSError as exc:
            module.fail_json(msg=f"cannot write {path}: {exc.strerror or exc}", **result)
    module.exit_json(changed=changed, diff={"before": before, "after": content, "before_header": path,
                                            "after_header": path}, **result)


if __name__ == "__main__":
    main()
