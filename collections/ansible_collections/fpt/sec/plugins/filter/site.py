"""Filters that turn what a user types for a site into its inventory names."""

from __future__ import annotations

from ansible.errors import AnsibleFilterError
from ansible_collections.fpt.sec.plugins.module_utils.site_model import reverse_name


def site_group(site: str) -> str:
    """`prod.teststudio.com` or `com_teststudio_prod` → `com_teststudio_prod`, the site's group."""
    if not isinstance(site, str) or not site.strip():
        raise AnsibleFilterError("site_group: give the site's name, e.g. prod.teststudio.com")
    site = site.strip()
    return site if "." not in site else reverse_name(site)


class FilterModule:
    def filters(self) -> dict:
        return {"site_group": site_group}
