# Copyright: contributors to sec
# GNU General Public License v3.0+ (see COPYING or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Marks every extra var as data before the first play: text from people is never a template."""

from __future__ import annotations

DOCUMENTATION = r"""
name: untemplated_extra_vars
type: aggregate
short_description: Marks every extra var as data that Ansible never templates
description:
  - Extra vars carry what people typed (a maintenance message, a setting value, a label, an AWX survey
    answer). Ansible renders a string variable that holds C({{ ... }}) or C({% ... %}) as a template when it
    is used, so a pipe lookup typed into a maintenance message would run a command on the controller.
  - Before the first play is templated, this callback marks every extra var (strings in nested lists and
    dictionaries too) unsafe, the way a C(!unsafe) YAML tag does. The playbooks then use the values as
    typed, whether they came from C(ansible-playbook -e), an AWX survey or the C(sec) command.
  - Enable it in C(ansible.cfg) with C(callbacks_enabled = fpt.sec.untemplated_extra_vars); the
    repository's C(ansible.cfg) does, and so does every run started by C(sec).
requirements:
  - enabled in callbacks_enabled
"""

from typing import Any

from ansible.plugins.callback import CallbackBase
from ansible.utils.unsafe_proxy import wrap_var

MARKER = "fpt_sec_extra_vars_untemplated"


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "fpt.sec.untemplated_extra_vars"
    CALLBACK_NEEDS_ENABLED = True

    def v2_playbook_on_start(self, playbook: Any) -> None:
        # Every play of a run shares the executor's one VariableManager: marking its extra vars once, before
        # the first play's `hosts:` is templated, covers the whole run.
        for play in playbook.get_plays():
            manager = getattr(play, "_variable_manager", None)
            extra = getattr(manager, "_extra_vars", None)
            if isinstance(extra, dict):
                for name in list(extra):
                    extra[name] = wrap_var(extra[name])
                # What the playbooks' first task checks: a run without this callback stops there.
                extra[MARKER] = True
                return
