"""The extra-vars and inventory YAML sec writes: every string value reaches Ansible as data (`!unsafe`).

Loaded as ansible-playbook loads `-e @file` (DataLoader), then used in a template as a playbook uses a
variable: the value comes out as typed, where the same file without the tags renders it.
"""

from __future__ import annotations

import json
from pathlib import Path

from ansible.parsing.dataloader import DataLoader
from ansible.template import Templar

from sec_wrapper.untemplated import unsafe_yaml

try:  # ansible-core 2.19+: only trusted text is a template; `-e @file` loads its file as trusted
    from ansible.template import trust_as_template
    _AS_EXTRA_VARS: dict = {"trusted_as_template": True}
except ImportError:  # 2.16 - 2.18: every str is
    def trust_as_template(value: str) -> str:
        return value
    _AS_EXTRA_VARS = {}

PAYLOAD = "{{ 7 * 7 }} {% if true %}x{% endif %}"


def _rendered(path: Path, expression: str) -> object:
    variables = DataLoader().load_from_file(str(path), **_AS_EXTRA_VARS)
    return Templar(loader=DataLoader(), variables=variables).template(trust_as_template(expression))


def test_a_template_in_any_string_value_comes_out_as_typed(tmp_path: Path) -> None:
    data = {"message": PAYLOAD, "settings": {"site_name": PAYLOAD, "list": [PAYLOAD]}}
    tagged, plain = tmp_path / "tagged.yml", tmp_path / "plain.json"
    tagged.write_text(unsafe_yaml(data))
    plain.write_text(json.dumps(data))
    for expression in ("{{ message }}", "{{ settings.site_name }}", "{{ settings.list[0] }}"):
        assert _rendered(tagged, expression) == PAYLOAD
        assert _rendered(plain, expression) == "49 x"  # the control: untagged text is rendered


def test_other_types_stay_as_they_are_and_keys_stay_plain(tmp_path: Path) -> None:
    data = {"n": 3, "yes": True, "none": None, "multi": "a\n  b\n", "all": {"hosts": {"app1": {"u": "root"}}}}
    path = tmp_path / "vars.yml"
    path.write_text(unsafe_yaml(data))
    assert DataLoader().load_from_file(str(path)) == data
    text = path.read_text()
    assert "!unsafe 'root'" in text and "!unsafe 'all'" not in text and "!unsafe 'hosts'" not in text
