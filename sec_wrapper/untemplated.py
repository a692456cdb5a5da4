"""Text from people as data: the extra vars and the inventory a run gets, written as YAML whose every string
value carries Ansible's `!unsafe` tag, so that no `{{ ... }}` or `{% ... %}` in them is ever rendered.

This is the one place sec marks what people typed (CLI arguments, console forms, API bodies, settings files,
stored cluster and host fields). The playbooks also run the `fpt.sec.untemplated_extra_vars` callback, which
does the same for extra vars given by `ansible-playbook -e` or AWX.
"""

from __future__ import annotations

from typing import Any

import yaml

UNSAFE_TAG = "!unsafe"
_STR_TAG = "tag:yaml.org,2002:str"


class _UnsafeDumper(yaml.SafeDumper):
    """SafeDumper that tags string values `!unsafe` and leaves mapping keys plain (Ansible never renders
    keys, and the inventory's own words, `all`, `hosts`, `vars`, stay what its parser looks for)."""

    def ignore_aliases(self, data: Any) -> bool:
        return True  # no anchors: each value written where it stands

    def represent_mapping(self, tag: str, mapping: Any, flow_style: bool | None = None) -> yaml.MappingNode:
        node = super().represent_mapping(tag, mapping, flow_style)
        for key_node, _ in node.value:
            if key_node.tag == UNSAFE_TAG:
                key_node.tag = _STR_TAG
        return node


def _represent_str(dumper: yaml.SafeDumper, value: str) -> yaml.ScalarNode:
    return dumper.represent_scalar(UNSAFE_TAG, value, style="'" if "\n" not in value else "|")


_UnsafeDumper.add_representer(str, _represent_str)


def unsafe_yaml(data: dict[str, Any]) -> str:
    """`data` as YAML for Ansible (an extra-vars file, an inventory), every string value tagged `!unsafe`."""
    return yaml.dump(data, Dumper=_UnsafeDumper, allow_unicode=True, sort_keys=False, width=1 << 20)
