"""Module options as the run_module action plugin and `sec advanced list` read them: fragments included."""

from __future__ import annotations

from pathlib import Path

from ansible_collections.fpt.sec.plugins.plugin_utils.module_docs import fragment_doc, module_doc

MODULES = Path(__file__).resolve().parents[2] / "collections/ansible_collections/fpt/sec/plugins/modules"


def test_a_module_gets_site_dir_from_the_site_fragment() -> None:
    options = module_doc(str(MODULES / "db_backup.py"))["options"]
    assert options["site_dir"]["type"] == "path" and options["site_dir"]["required"] is True
    assert "keep" in options  # its own options are still there


def test_a_module_without_fragments_keeps_its_own_options_only() -> None:
    options = module_doc(str(MODULES / "site_health.py"))["options"]
    assert "url" in options and "site_dir" not in options


def test_every_module_that_takes_site_dir_documents_it() -> None:
    for path in sorted(MODULES.glob("*.py")):
        text = path.read_text()
        if '"site_dir": {' in text:
            assert "site_dir" in module_doc(str(path))["options"], path.name


def test_only_this_collections_fragments_are_read() -> None:
    assert fragment_doc("ansible.builtin.action_common_attributes") == {}
    assert "site_dir" in fragment_doc("fpt.sec.site")["options"]
