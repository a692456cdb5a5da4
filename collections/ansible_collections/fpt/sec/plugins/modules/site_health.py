#!/usr/bin/python
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
---
module: site_health
short_description: Check a site's health through its real Apache virtual host
version_added: "0.1.0"
description:
  - Sends an HTTP GET to the site's status URL through Apache, with the site's name as the C(Host)
    header, so that the request takes the same way as a user's. It returns the status code, the JSON
    status (version, schema version, event count) and the time taken.
  - Fails with one line (the status code and the first line of the answer) when the site answers with
    another status than O(expect_status), runs another version than O(expect_version), or does not
    answer. It tries again O(retries) times, O(delay) seconds apart, before failing.
  - Redirects are not followed. A redirect (to HTTPS, say) is reported as its own status, with its
    C(Location).
  - Read-only, and uses only the Python standard library on the host.
author:
  - sec maintainers (!UNKNOWN)
options:
  url:
    description:
      - The status URL through Apache, usually on the App server itself, for example
        C(http://127.0.0.1/status) or C(https://127.0.0.1/status).
    type: str
    required: true
  host_header:
    description:
      - The C(Host) header to send, the site's name (C(prod.teststudio.com)), so that Apache picks the
        site's virtual host. Defaults to the host of O(url).
    type: str
  expect_status:
    description: The HTTP status code of a healthy site.
    type: int
    default: 200
  expect_version:
    description: When set, the C(version) in the JSON answer must equal it.
    type: str
  retries:
    description: How many more times to try after a failed check.
    type: int
    default: 0
  delay:
    description: Seconds to wait between tries.
    type: float
    default: 2
  timeout:
    description: Seconds to wait for each answer.
    type: float
    default: 10
  validate_certs:
    description:
      - Verify the server's TLS certificate for an C(https) URL. With a loopback URL and a certificate
        issued for the site's name, set it to V(false).
    type: bool
    default: true
attributes:
  check_mode:
    support: full
    description: The check changes nothing, so it runs in check mode too.
  diff_mode:
    support: none
    description: Nothing changes, so there is no diff.
"""

EXAMPLES = r"""
- name: The site answers through its virtual host
  fpt.sec.site_health:
    url: "{{ sec_site.health_url }}"
    host_header: "{{ sec_site.name }}"

- name: The upgraded site runs the new release, allowing it a minute to start
  fpt.sec.site_health:
    url: http://127.0.0.1/status
    host_header: prod.teststudio.com
    expect_version: "8.2.0"
    retries: 12
    delay: 5
  register: health

- name: The site is in maintenance
  fpt.sec.site_health:
    url: http://127.0.0.1/status
    host_header: prod.teststudio.com
    expect_status: 503
"""

RETURN = r"""
status:
  description: The HTTP status code of the last answer, null when there was none (connection refused).
  returned: always
  type: int
  sample: 200
body:
  description: The JSON answer of the site's status URL, null when the answer is not JSON.
  returned: always
  type: dict
  sample: {site: prod.teststudio.com, version: 8.0.0, schema_version: "20200101000000", events: 20000}
version:
  description: The running version from the answer, when it has one.
  returned: always
  type: str
  sample: 8.0.0
schema_version:
  description: The database schema version from the answer, when it has one.
  returned: always
  type: str
  sample: "20200101000000"
events:
  description: The number of event log entries from the answer, when it has one.
  returned: always
  type: int
  sample: 20000
elapsed:
  description: Seconds the last request took.
  returned: always
  type: float
  sample: 0.012
attempts:
  description: How many requests were made.
  returned: always
  type: int
  sample: 1
url:
  description: The URL requested.
  returned: always
  type: str
  sample: http://127.0.0.1/status
"""

import time
from urllib.parse import urlsplit

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.fpt.sec.plugins.module_utils.health_check import fetch, parse_json, problem


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "url": {"type": "str", "required": True},
            "host_header": {"type": "str"},
            "expect_status": {"type": "int", "default": 200},
            "expect_version": {"type": "str"},
            "retries": {"type": "int", "default": 0},
            "delay": {"type": "float", "default": 2},
            "timeout": {"type": "float", "default": 10},
            "validate_certs": {"type": "bool", "default": True},
        },
        supports_check_mode=True,
    )
    params = module.params
    url = params["url"]
    if urlsplit(url).scheme not in ("http", "https"):
        module.fail_json(msg=f"url must be an http or https URL, got {url!r}")
    if params["retries"] < 0 or params["delay"] < 0 or params["timeout"] <= 0:
        module.fail_json(msg="retries and delay must be 0 or more, timeout more than 0")

    attempts = 0
    while True:
        attempts += 1
        answer = fetch(url, params["host_header"], params["timeout"], params["validate_certs"])
        body = parse_json(answer["text"])
        why = problem(answer, body, params["expect_status"], params["expect_version"])
        if why is None or attempts > params["retries"]:
            break
        time.sleep(params["delay"])

    result = {
        "changed": False,
        "url": url,
        "status": answer["status"],
        "body": body,
        "version": (body or {}).get("version"),
        "schema_version": (body or {}).get("schema_version"),
        "events": (body or {}).get("events"),
        "elapsed": answer["elapsed"],
        "attempts": attempts,
    }
    if why is not None:
        host = params["host_header"]
        where = url + (f" (Host: {host})" if host else "")
        tries = f" after {attempts} tries" if attempts > 1 else ""
        module.fail_json(msg=f"health check failed: {where} {why}{tries}", **result)
    module.exit_json(**result)


if __name__ == "__main__":
    main()
