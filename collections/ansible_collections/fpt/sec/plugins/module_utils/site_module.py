# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every fpt.sec module that works on one site shares: its `site_dir` argument (documented once, in
the doc fragment fpt.sec.site) and, for a module that changes the site under an operation's lock, the
record of its work on the host (site_work.SiteWork) kept from its own exit or failure.

Pure standard library and Ansible, Python 3.8 compatible syntax: this file ships to managed hosts.
"""

from __future__ import annotations

from collections.abc import Callable

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.fpt.sec.plugins.module_utils.postgres import PgClient, PostgresError
from ansible_collections.fpt.sec.plugins.module_utils.site_model import DatabaseConfigError
from ansible_collections.fpt.sec.plugins.module_utils.site_work import SiteWork

# The argument of doc fragment fpt.sec.site.
SITE_ARGUMENT_SPEC = {"site_dir": {"type": "path", "required": True}}


def site_module(argument_spec: dict, **kwargs: object) -> AnsibleModule:
    """An AnsibleModule taking `site_dir` besides its own `argument_spec`."""
    return AnsibleModule(argument_spec={**SITE_ARGUMENT_SPEC, **argument_spec}, **kwargs)


def recorded_work(module: AnsibleModule, name: str, summary=()) -> SiteWork:
    """Registers this module's process as the work of the operation holding the site lock (a killed
    controller leaves it going there, and its outcome recorded for the history), and records how it ended
    from the module's own exit_json/fail_json: its msg, and `summary` (keys of its result, or a function of
    it)."""
    work = SiteWork(module.params["site_dir"], name, module.check_mode)
    work.begin()
    work.attach(module, summary)
    return work


def site_database(module: AnsibleModule, site_dir: str, fail: Callable[[str], object] | None = None) -> PgClient:
    """The site's database, as its database.yml describes it, with the password masked in whatever the
    module prints (no_log, even a server message that quoted it). Settings that cannot be read end the
    module through `fail` (default: fail_json) with one line."""
    try:
        client = PgClient.for_site(site_dir)
    except (PostgresError, DatabaseConfigError) as exc:
        message = f"cannot read the site's database settings: {exc}"
        (fail or (lambda msg: module.fail_json(msg=msg)))(message)
        raise AssertionError(message) from None  # `fail` does not return
    if client.password:
        module.no_log_values.add(client.password)
    return client
