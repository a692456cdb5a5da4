"""The site settings schema: typed parsing, one-line errors that name the key, merge/replace rules, and the
runtime bookkeeping that says whether a redeploy is pending."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from ansible_collections.fpt.sec.plugins.module_utils import site_runtime
from ansible_collections.fpt.sec.plugins.module_utils.apache_locate import ApacheInstance
from ansible_collections.fpt.sec.plugins.module_utils.site_settings_schema import (
    SCHEMA,
    SettingsError,
    allowed_text,
    apply_update,
    describe_schema,
    diff_settings,
    parse_assignment,
    parse_assignments,
    parse_value,
    settings_digest,
    validate_document,
)
from ansible_collections.fpt.sec.plugins.modules import site_settings as site_settings_module
from ansible_collections.fpt.sec.plugins.modules.redeploy import httpd_argv

# A fake time zone database, so that the tests do not depend on the host having tzdata.
NO_TZDB: tuple[str, ...] = ()

BASE = {
    "site_url": "https://staging.teststudio.com",
    "site_name": "Staging",
    "email_notifications_enabled": False,
    "timezone": "UTC",
    "max_upload_mb": 500,
    "session_timeout_minutes": 480,
}


@pytest.fixture
def tzdb(tmp_path: Path) -> tuple[str, ...]:
    folder = tmp_path / "zoneinfo"
    (folder / "Europe").mkdir(parents=True)
    (folder / "UTC").write_bytes(b"TZif")
    (folder / "Europe" / "Paris").write_bytes(b"TZif")
    return (str(folder),)


# -- typed parsing ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("email_notifications_enabled=false", ("email_notifications_enabled", False)),
        ("email_notifications_enabled=TRUE", ("email_notifications_enabled", True)),
        ("email_notifications_enabled=yes", ("email_notifications_enabled", True)),
        ("email_notifications_enabled=0", ("email_notifications_enabled", False)),
        ("two_factor_required=on", ("two_factor_required", True)),
        ("max_upload_mb=500", ("max_upload_mb", 500)),
        ("max_upload_mb= 2000 ", ("max_upload_mb", 2000)),
        ("session_timeout_minutes=5", ("session_timeout_minutes", 5)),
        ("session_timeout_minutes=10080", ("session_timeout_minutes", 10080)),
        ("failed_login_lockout=0", ("failed_login_lockout", 0)),
        ("site_url=https://staging2.teststudio.com", ("site_url", "https://staging2.teststudio.com")),
        ("site_url=http://127.0.0.1:8080/shotgun?x=1", ("site_url", "http://127.0.0.1:8080/shotgun?x=1")),
        ("site_name=Staging = copy", ("site_name", "Staging = copy")),
        ("timezone=UTC", ("timezone", "UTC")),
        ("log_level=INFO", ("log_level", "info")),
        ("smtp_security=StartTLS", ("smtp_security", "starttls")),
        ("email_from=shotgun@teststudio.com", ("email_from", "shotgun@teststudio.com")),
        ("smtp_host=smtp.teststudio.com", ("smtp_host", "smtp.teststudio.com")),
        ("smtp_host=10.0.0.25", ("smtp_host", "10.0.0.25")),
        ("smtp_host=::1", ("smtp_host", "::1")),
        ("smtp_port=587", ("smtp_port", 587)),
    ],
)
def test_assignment_is_typed_by_the_key(text: str, expected: tuple) -> None:
    key, value = parse_assignment(text, tz_dirs=NO_TZDB)
    assert (key, value) == expected
    assert type(value) is type(expected[1])


def test_typed_values_pass_as_they_are() -> None:
    assert parse_value("max_upload_mb", 700) == 700
    assert parse_value("email_notifications_enabled", True) is True
    assert validate_document(BASE, tz_dirs=NO_TZDB) == BASE


@pytest.mark.parametrize(
    ("key", "value", "words"),
    [
        ("max_upload_mb", "lots", "an integer from 1 to 100000 (MB)"),
        ("max_upload_mb", "0", "an integer from 1 to 100000"),
        ("max_upload_mb", "100001", "an integer from 1 to 100000"),
        ("max_upload_mb", "5.5", "an integer"),
        ("max_upload_mb", True, "an integer"),  # a boolean is not 1
        ("max_upload_mb", 12.0, "an integer"),
        ("session_timeout_minutes", "4", "an integer from 5 to 10080 (minutes)"),
        ("session_timeout_minutes", 10081, "an integer from 5 to 10080"),
        ("email_notifications_enabled", "maybe", "true or false"),
        ("email_notifications_enabled", 1, "true or false"),
        ("site_url", "ftp://staging.teststudio.com", "an http:// or https:// URL"),
        ("site_url", "staging.teststudio.com", "an http:// or https:// URL"),
        ("site_url", "https://", "an http:// or https:// URL"),
        ("site_url", "https://bad host/", "an http:// or https:// URL"),
        ("site_url", "https://user:pw@staging.teststudio.com", "an http:// or https:// URL"),
        ("site_url", "https://staging.teststudio.com:99999", "an http:// or https:// URL"),
        ("site_url", "https://exa_mple.com", "an http:// or https:// URL"),
        ("site_name", "", "a non-empty text"),
        ("site_name", "   ", "a non-empty text"),
        ("site_name", 2024, "a non-empty text"),
        ("site_name", "x" * 101, "at most 100 characters"),
        ("site_name", "two\nlines", "control characters"),
        ("timezone", "Mars/Olympus_Mons", "an IANA time zone name"),
        ("timezone", "Paris", "an IANA time zone name"),
        ("timezone", "../../etc/passwd", "an IANA time zone name"),
        ("log_level", "verbose", "one of debug, info, warn, error, fatal"),
        ("smtp_security", "ssl", "one of none, starttls, tls"),
        ("email_from", "not-an-address", "an email address"),
        ("smtp_host", "smtp host", "a host name or an IP address"),
        ("smtp_port", "70000", "an integer from 1 to 65535"),
        ("password_min_length", "4", "an integer from 8 to 128"),
        ("site_url", None, "a value is needed"),
    ],
)
def test_each_rejection_names_the_key_and_what_is_allowed(key: str, value: object, words: str) -> None:
    with pytest.raises(SettingsError) as caught:
        parse_value(key, value, tz_dirs=NO_TZDB)
    message = str(caught.value)
    assert message.startswith(f"{key}: ")
    assert words in message
    assert "\n" not in message
    assert caught.value.key == key


def test_a_string_assignment_is_rejected_with_the_key() -> None:
    with pytest.raises(SettingsError, match=r"^max_upload_mb: 'lots' is not allowed; expected an integer"):
        parse_assignment("max_upload_mb=lots")
    with pytest.raises(SettingsError, match=r"^max_upload_mb: expected KEY=VALUE"):
        parse_assignment("max_upload_mb")


def test_timezone_is_checked_against_the_hosts_database_when_there_is_one(tzdb: tuple[str, ...]) -> None:
    assert parse_value("timezone", "Europe/Paris", tz_dirs=tzdb) == "Europe/Paris"
    with pytest.raises(SettingsError, match=r"^timezone: 'Europe/Atlantis' is not in this host's time zone"):
        parse_value("timezone", "Europe/Atlantis", tz_dirs=tzdb)
    # Without a database only the shape and the area are checked.
    assert parse_value("timezone", "Europe/Atlantis", tz_dirs=NO_TZDB) == "Europe/Atlantis"


# -- unknown and reserved keys ----------------------------------------------------------------------------
def test_unknown_key_is_refused_without_force_with_a_suggestion() -> None:
    with pytest.raises(SettingsError) as caught:
        parse_assignment("site_ulr=https://x.example.com")
    message = str(caught.value)
    assert message.startswith("site_ulr: unknown setting")
    assert "did you mean site_url?" in message
    assert "force" in message


def test_unknown_key_with_force_keeps_json_literals_typed() -> None:
    assert parse_assignment("beta_flag=true", force=True) == ("beta_flag", True)
    assert parse_assignment("beta_limit=12", force=True) == ("beta_limit", 12)
    assert parse_assignment("beta_name=review notes", force=True) == ("beta_name", "review notes")
    assert parse_value("beta_name", "false", force=True) == "false"  # a dict value is kept as given


@pytest.mark.parametrize("key", ["_sec", "_anything", "Site URL", "1st", "a-b"])
def test_reserved_or_malformed_names_are_refused_even_with_force(key: str) -> None:
    with pytest.raises(SettingsError) as caught:
        parse_value(key, "x", force=True)
    assert str(caught.value).startswith(f"{key}: ")


def test_parse_assignments_keeps_the_last_value() -> None:
    assert parse_assignments(["max_upload_mb=1", "max_upload_mb=2", "log_level=warn"]) == {
        "max_upload_mb": 2, "log_level": "warn"}


# -- documents: merge, replace, required keys --------------------------------------------------------
def test_merge_types_the_update_and_keeps_order() -> None:
    new, warnings = apply_update(BASE, {"max_upload_mb": "2000", "log_level": "info"}, tz_dirs=NO_TZDB)
    assert new["max_upload_mb"] == 2000
    assert list(new) == [*BASE, "log_level"]
    assert warnings == []
    assert diff_settings(BASE, new) == [
        {"key": "max_upload_mb", "old": 500, "new": 2000},
        {"key": "log_level", "old": None, "new": "info"},
    ]


def test_merge_of_the_same_values_has_no_changes() -> None:
    new, _ = apply_update(BASE, {"email_notifications_enabled": "false", "max_upload_mb": 500}, tz_dirs=NO_TZDB)
    assert diff_settings(BASE, new) == []


def test_null_removes_a_key_but_not_a_required_one() -> None:
    current = {**BASE, "smtp_host": "smtp.teststudio.com"}
    new, _ = apply_update(current, {"smtp_host": None}, tz_dirs=NO_TZDB)
    assert "smtp_host" not in new
    with pytest.raises(SettingsError, match=r"^site_url: a required setting cannot be removed"):
        apply_update(current, {"site_url": None}, tz_dirs=NO_TZDB)
    with pytest.raises(SettingsError, match=r"^smtp_hots: unknown setting"):
        apply_update(current, {"smtp_hots": None}, tz_dirs=NO_TZDB)


def test_replace_needs_the_required_keys() -> None:
    with pytest.raises(SettingsError, match=r"^site_name: required setting is missing"):
        apply_update(BASE, {"site_url": "https://a.example.com"}, replace=True, tz_dirs=NO_TZDB)
    new, _ = apply_update(BASE, {"site_url": "https://a.example.com", "site_name": "A"}, replace=True,
                          tz_dirs=NO_TZDB)
    assert new == {"site_url": "https://a.example.com", "site_name": "A"}


def test_unknown_keys_in_the_file_are_kept_with_a_warning() -> None:
    current = {**BASE, "legacy_option": 3}
    new, warnings = apply_update(current, {"max_upload_mb": 1}, tz_dirs=NO_TZDB)
    assert new["legacy_option"] == 3
    assert warnings and warnings[0].startswith("legacy_option: unknown setting kept")


def test_an_invalid_value_already_in_the_file_is_named() -> None:
    current = {**BASE, "max_upload_mb": -1}
    with pytest.raises(SettingsError, match=r"^max_upload_mb: .*already in the file"):
        apply_update(current, {"site_name": "Other"}, tz_dirs=NO_TZDB)
    # ... and the update that fixes it goes through.
    new, _ = apply_update(current, {"max_upload_mb": 10}, tz_dirs=NO_TZDB)
    assert new["max_upload_mb"] == 10


def test_diff_tells_true_from_one() -> None:
    assert diff_settings({"x": 1}, {"x": True}) == [{"key": "x", "old": 1, "new": True}]


def test_schema_documents_every_key() -> None:
    described = {entry["key"]: entry for entry in describe_schema()}
    assert set(described) == set(SCHEMA)
    for key in ("site_url", "site_name", "email_notifications_enabled", "timezone", "max_upload_mb",
                "session_timeout_minutes"):
        assert key in described
    assert described["max_upload_mb"]["allowed"] == allowed_text("max_upload_mb") == "an integer from 1 to 100000 (MB)"
    for entry in described.values():
        assert entry["description"]
        # Every example is itself valid.
        assert parse_value(entry["key"], entry["example"], tz_dirs=NO_TZDB) == entry["example"]


def test_the_module_documentation_lists_every_key() -> None:
    # ansible-doc is where an admin looks; the schema and the page must not drift apart.
    for key in SCHEMA:
        assert f"C({key})" in site_settings_module.DOCUMENTATION, key


# -- files and pending redeploy ------------------------------------------------------------------------
def _site(tmp_path: Path) -> Path:
    site = tmp_path / "com_teststudio_staging"
    (site / "shared/config").mkdir(parents=True)
    (site / "tmp").mkdir()
    (site / "releases/8.0.0").mkdir(parents=True)
    os.symlink("releases/8.0.0", site / "current")
    return site


def test_write_atomic_keeps_the_previous_version_and_the_mode(tmp_path: Path) -> None:
    site = _site(tmp_path)
    path = site_runtime.settings_path(str(site))
    Path(path).write_text(json.dumps(BASE))
    os.chmod(path, 0o640)
    previous = site_runtime.write_atomic(path, site_runtime.dump_json({**BASE, "max_upload_mb": 1}),
                                         keep_previous=True)
    assert previous == path + ".prev"
    assert json.loads(Path(previous).read_text()) == BASE
    assert json.loads(Path(path).read_text())["max_upload_mb"] == 1
    assert os.stat(path).st_mode & 0o777 == 0o640
    assert not [p for p in os.listdir(os.path.dirname(path)) if p.endswith(".tmp")]


def test_pending_until_the_runtime_config_matches_and_the_app_was_told(tmp_path: Path) -> None:
    site = str(_site(tmp_path))
    # Never redeployed by sec: the application runs the persisted settings it read at its start (the deploy),
    # so nothing is pending until they are written after it.
    settings = Path(site_runtime.settings_path(site))
    settings.write_text(json.dumps(BASE))
    deployed = os.lstat(os.path.join(site, "current")).st_mtime
    os.utime(settings, (deployed - 60, deployed - 60))
    state = site_runtime.pending_state(site, BASE)
    assert not state["pending"] and "has not redeployed this site yet" in state["reason"]
    os.utime(settings, (deployed + 60, deployed + 60))
    assert site_runtime.pending_state(site, BASE)["pending"]
    Path(site_runtime.restart_path(site)).parent.mkdir(exist_ok=True)
    site_runtime.touch(site_runtime.restart_path(site))
    os.utime(site_runtime.restart_path(site), (deployed + 120, deployed + 120))  # restarted since: read them
    assert not site_runtime.pending_state(site, BASE)["pending"]
    os.unlink(site_runtime.restart_path(site))

    runtime = site_runtime.runtime_document(BASE, site, operation_id="op-1", now=0)
    assert runtime["_sec"]["release"] == "8.0.0"
    assert runtime["_sec"]["settings_sha256"] == settings_digest(BASE)
    assert site_runtime.applied_settings(runtime) == BASE
    site_runtime.write_atomic(site_runtime.runtime_path(site), site_runtime.dump_json(runtime))
    # Written but the application was not told to reload: still pending.
    assert site_runtime.pending_state(site, BASE)["pending"]

    site_runtime.touch(site_runtime.restart_path(site))
    assert site_runtime.pending_state(site, BASE) == {
        "pending": False, "reason": "the running configuration matches the persisted settings", "changes": []}

    changed = {**BASE, "site_url": "https://staging2.teststudio.com"}
    state = site_runtime.pending_state(site, changed)
    assert state["pending"]
    assert state["changes"] == [{"key": "site_url", "old": BASE["site_url"], "new": changed["site_url"]}]


def test_a_broken_settings_file_is_reported_with_its_path(tmp_path: Path) -> None:
    site = _site(tmp_path)
    path = Path(site_runtime.settings_path(str(site)))
    path.write_text("{not json")
    with pytest.raises(site_runtime.SettingsFileError, match="not valid JSON"):
        site_runtime.read_json_object(str(path))
    path.write_text("[1, 2]")
    with pytest.raises(site_runtime.SettingsFileError, match="expected a JSON object"):
        site_runtime.read_json_object(str(path))
    assert site_runtime.read_json_object(str(site / "missing.json")) == (None, None)


# -- the graceful restart command of fpt.sec.redeploy ----------------------------------------------------
def test_graceful_command_names_the_instance_but_not_its_process_mode() -> None:
    instance = ApacheInstance(config="/srv/apache/apache2.conf", server_root="/srv/apache",
                              binary="/usr/sbin/apache2", pid=42, defines=["FOREGROUND", "SSL", "NO_DETACH"],
                              pre_directives=["Define X 1"], post_directives=[])
    # -DFOREGROUND would keep httpd in the foreground should it ever start instead of signalling.
    assert httpd_argv(instance) == ["/usr/sbin/apache2", "-d", "/srv/apache", "-f", "/srv/apache/apache2.conf",
                                    "-D", "SSL", "-C", "Define X 1"]
