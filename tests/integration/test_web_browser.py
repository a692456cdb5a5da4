"""The console in a real headless Chromium (Debian's chromium and chromium-driver) against the sandbox.

One browser, one `sec serve` (the session's console fixture) and the session's sandbox: log in, add the
sandbox's cluster from the form, open a site, back it up and watch the log arrive live, edit a setting,
refuse a production trim until the name is typed, upload a release and a tampered one. Every page is
photographed into tests/output/test_web_browser/.
"""

from __future__ import annotations

import io
import json
import shutil
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from ansible_collections.fpt.sec.plugins.module_utils.site_settings_schema import describe_schema

from sec_wrapper import history, site_state, store
from sec_wrapper.render import human_size
from sec_wrapper.sandbox.releases import build_release
from tests.integration.conftest import Console, http_get, sec

pytestmark = pytest.mark.integration
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
OUTPUT = Path(__file__).resolve().parents[1] / "output" / "test_web_browser"
DOCS = Path(__file__).resolve().parents[2] / "docs" / "console"
PROD = "prod.teststudio.com"
STAGING = "staging.teststudio.com"


@pytest.fixture(scope="module")
def browser() -> Iterator:
    if not (CHROMIUM.exists() and CHROMEDRIVER.exists()):
        pytest.skip("needs Debian's chromium and chromium-driver: make system-packages")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1280,1400",
                "--lang=en-US"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.implicitly_wait(0)
    shutil.rmtree(OUTPUT, ignore_errors=True)
    OUTPUT.mkdir(parents=True)
    yield driver
    driver.quit()


class Page:
    """The browser on the console: open, fill, click, wait, photograph."""

    def __init__(self, driver, console: Console) -> None:
        self.driver, self.console = driver, console

    def open(self, path: str) -> None:
        self.driver.get(self.console.url.rstrip("/") + path)

    def find(self, css: str):
        from selenium.webdriver.common.by import By

        return self.driver.find_element(By.CSS_SELECTOR, css)

    def all(self, css: str) -> list:
        from selenium.webdriver.common.by import By

        return self.driver.find_elements(By.CSS_SELECTOR, css)

    def fill(self, form: str, **fields: str) -> None:
        for name, value in fields.items():
            element = self.find(f"{form} [name='{name}']")
            if element.tag_name == "select":
                from selenium.webdriver.support.ui import Select

                Select(element).select_by_value(value)
            else:
                element.clear()
                element.send_keys(value)

    def wait(self, condition, timeout: float = 120, what: str = "") -> object:
        deadline = time.monotonic() + timeout
        while True:
            try:
                value = condition()
            except Exception:  # noqa: BLE001 (the page may be mid-load)
                value = None
            if value:
                return value
            if time.monotonic() > deadline:
                self.shot("timeout")
                raise AssertionError(f"timed out waiting for {what}: {self.driver.current_url}: {self.text()[:2000]}")
            time.sleep(0.1)

    def shot(self, name: str) -> None:
        self.driver.save_screenshot(str(OUTPUT / f"{name}.png"))

    def text(self) -> str:
        return self.find("body").text

    def operation_ends(self, timeout: float = 300) -> str:
        """On an operation's page: waits for the live status to leave `running`; returns it."""
        return self.wait(lambda: (s := self.find("#op-status .status").text) != "running" and s, timeout,
                         "the operation to end")


def staging_settings_file() -> Path:
    return Path(store.find_site(STAGING)[1].site_dir) / "shared/config/site_settings.json"


def _tampered(source: Path, dest: Path) -> Path:
    """The same archive with one member's bytes changed behind its manifest's checksum."""
    out = io.BytesIO()
    with tarfile.open(source) as tar_in, tarfile.open(fileobj=out, mode="w:gz") as tar_out:
        for member in tar_in.getmembers():
            data = tar_in.extractfile(member).read() if member.isfile() else None
            if member.name.endswith("public/index.html"):
                data = data.replace(b"Flow", b"Fl0w")
            tar_out.addfile(member, io.BytesIO(data) if data is not None else None)
    dest.mkdir(parents=True, exist_ok=True)
    path = dest / source.name
    path.write_bytes(out.getvalue())
    return path


def test_the_console_in_a_real_browser(sandbox: dict, console: Console, sec_home: Path, tmp_path: Path,
                                       browser) -> None:
    page = Page(browser, console)

    # Every page needs a session: the console sends us to the login page, and back to the page once logged in.
    page.open("/operations")
    assert browser.current_url.endswith("/login?next=%2Foperations"), browser.current_url
    page.shot("01-login")
    page.fill("#login", username=console.user, password="not the password")
    page.find("#login button").click()
    error = page.wait(lambda: page.find("#error").text, 10, "the refusal")
    assert "wrong name or password" in error
    assert page.find("#login [name=username]").get_attribute("value") == console.user  # the name stays typed
    page.fill("#login", username=console.user, password=console.password)
    page.find("#login button").click()
    page.wait(lambda: page.find("#user").text == console.user, 10, "the login")
    assert browser.current_url.endswith("/operations"), browser.current_url

    # Add the sandbox's cluster from the form (after removing it, with confirmation, if a CLI test made it).
    app = sandbox["app_server"]
    keys = store.keys_dir()
    shutil.copyfile(app["key"], keys / "sandbox_app")
    (keys / "sandbox_app").chmod(0o600)
    page.open("/")
    if store.cluster_exists("sandbox"):
        page.find("#clusters details.danger summary").click()
        page.fill("#clusters details.danger form", confirm="sandbox")
        page.find("#clusters details.danger form button").click()
        page.wait(lambda: not store.cluster_exists("sandbox"), 30, "the cluster's removal")
    page.open("/")
    page.fill("#add-cluster", name="sandbox", app_server=app["address"], port=str(app["port"]), user=app["user"],
              key="sandbox_app")
    page.shot("02-clusters-add")
    page.find("#add-cluster button").click()
    page.wait(lambda: "/operations/" in browser.current_url, 30, "the operation page")
    assert page.operation_ends() == "successful", page.text()
    assert page.find("#op-user").text == console.user
    page.shot("03-operation-cluster-create")
    page.open("/")
    page.find("#clusters a[href='/clusters/sandbox']").click()
    page.wait(lambda: page.all("#sites a"), 30, "the cluster's sites")
    assert {a.text for a in page.all("#sites a[href^='/sites/']")} >= {PROD, STAGING}
    # The dashboard: every site's badge and numbers from the state read on its web heads, as `sec site status`
    # reads it (Refresh reads it now).
    page.find("#refresh-state").click()
    page.wait(lambda: len(page.all("#sites .badge-serving")) == 2, 60, "both sites read as serving")
    row = f"#sites tr[data-site='{PROD}']"
    # The page and the CLI read the same cached state; another read may land between the two (free space
    # moves while other work writes), so the page is shown again after the CLI's read until both agree.
    for _ in range(3):
        status = json.loads(sec("site", "status", PROD, "--cached", "--json").stdout)
        page.open("/clusters/sandbox")
        shown = [page.find(f"{row} {cell}").text for cell in (".db-size", ".events", ".free", ".release")]
        if shown[:3] == [human_size(status["database"]["size_bytes"]), f"{status['database']['events_estimate']:,}",
                         human_size(min(d["free_bytes"] for d in status["disk"]))]:
            break
    assert shown[0] == human_size(status["database"]["size_bytes"])
    assert shown[1] == f"{status['database']['events_estimate']:,}"
    assert shown[2] == human_size(min(d["free_bytes"] for d in status["disk"]))
    assert shown[3].startswith(status["heads"][0]["release"]["version"])
    page.shot("04-cluster")
    page.find("#connect").click()  # re-checks every host, as `sec cluster connect`
    page.wait(lambda: "/operations/" in browser.current_url, 30, "the connect operation")
    assert page.operation_ends() == "successful", page.text()
    assert page.find("h1").text.startswith("cluster connect")
    page.open("/clusters/sandbox")

    # Open the site; back it up and watch the log arrive while it runs, without a reload.
    page.find(f"#sites a[href='/sites/{PROD}']").click()
    page.wait(lambda: page.find("h1").text.startswith(PROD), 10, "the site page")
    page.shot("05-site")
    page.find("#op-backup button").click()
    page.wait(lambda: "/operations/" in browser.current_url, 30, "the operation page")
    browser.execute_script("window.notReloaded = true")
    seen_running_with_log = False
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline:
        status = page.find("#op-status .status").text
        log = page.find("#log").text
        if status == "running" and log.strip():
            seen_running_with_log = True
        if status != "running":
            break
        time.sleep(0.1)
    assert seen_running_with_log, "the log never showed while the backup ran"
    assert page.find("#op-status .status").text == "successful"
    assert "PLAY RECAP" in page.find("#log").text
    assert browser.execute_script("return window.notReloaded") is True
    page.shot("06-operation-backup")
    browser.refresh()  # a reload replays the whole log
    page.wait(lambda: "PLAY RECAP" in page.find("#log").text, 20, "the log after a reload")
    watched = browser.current_url
    first = browser.current_window_handle
    browser.switch_to.new_window("tab")  # a second watcher gets the same log
    browser.get(watched)
    page.wait(lambda: "PLAY RECAP" in page.find("#log").text, 20, "the log in a second tab")
    assert page.find("#op-status .status").text == "successful"
    browser.close()
    browser.switch_to.window(first)

    # The site's backups: from the cache, fast, and no history row; "Check every file" is an operation.
    rows_before = len(history.list_operations())
    for path in (f"/sites/{PROD}/backups", f"/sites/{STAGING}/settings", f"/sites/{PROD}"):
        page.open(path)
        page.wait(lambda: not page.all("#reading-again") and not page.all(".loading"), 30, f"{path} from the cache")
        # Served from the cache: a second view reads no host (the cache is not rewritten) and shows no
        # loading sign. How fast that is belongs to bench/, not to a timed test.
        cache = sec_home / "state" / "sandbox.json"
        cached_before = (cache.stat().st_mtime_ns, cache.read_bytes())
        page.open(path)
        assert not page.all(".loading") and not page.all("#reading-again"), f"{path} read the hosts again"
        assert (cache.stat().st_mtime_ns, cache.read_bytes()) == cached_before, f"{path} read the hosts again"
    assert len(history.list_operations()) == rows_before, "reading a page is not an operation"
    page.open(f"/sites/{PROD}/backups")
    assert page.all("#backups tbody tr") and "no backup" not in page.find("#backups").text
    page.find("#check-backups").click()
    page.wait(lambda: "re-read against its manifest" in page.text(), 120, "the check")
    state = page.find("#backups tbody tr td:nth-child(5)").text  # checked just now: says when
    assert state.startswith("verified\nat ") or state.startswith("verified at "), state
    page.shot("07-backups")

    # Settings: one field per schema key; an invalid value refused with the schema's words; a valid change
    # shown as a diff before it is saved, then persisted, redeploy pending, and redeploy clears it.
    page.open(f"/sites/{STAGING}/settings")
    page.wait(lambda: page.find("#settings-form"), 60, "the settings")
    assert len(page.all("#settings-form [name^='setting.']")) == len(describe_schema())
    before = site_state.site_state("sandbox", STAGING)["settings"]["persisted"]
    page.fill("#settings-form", **{"setting.timezone": "Mars/Olympus_Mons"})
    page.find("#preview-settings").click()
    error = page.wait(lambda: page.find("#error").text, 60, "the refusal")
    assert "timezone" in error and "an IANA time zone name" in error, error
    page.shot("08-settings-refused")
    page.open(f"/sites/{STAGING}/settings")
    new_size = 777 if before.get("max_upload_mb") != 777 else 778
    page.fill("#settings-form", **{"setting.max_upload_mb": str(new_size)})
    page.find("#preview-settings").click()
    preview = page.wait(lambda: page.find("#preview").text, 60, "the preview")
    assert "max_upload_mb" in preview and str(new_size) in preview
    assert json.loads(staging_settings_file().read_text())["max_upload_mb"] == before["max_upload_mb"], \
        "a preview writes nothing"
    page.shot("09-settings-preview")
    page.find("#save-settings").click()
    page.wait(lambda: page.find("#diff"), 60, "the saved settings")
    assert "max_upload_mb" in page.find("#diff").text and str(new_size) in page.find("#diff").text
    assert "Redeploy pending" in page.find("#pending").text
    page.shot("10-settings-pending")
    page.find("#redeploy").click()
    page.wait(lambda: "/operations/" in browser.current_url, 30, "the redeploy operation")
    assert page.operation_ends() == "successful", page.text()
    page.open(f"/sites/{STAGING}/settings")
    page.wait(lambda: page.find("#applied") and not page.all("#reading-again"), 60, "the applied settings")
    assert not page.all("#pending")
    assert page.find("#setting-max_upload_mb").get_attribute("value") == str(new_size)
    page.shot("11-settings-applied")

    # A site in maintenance is never shown healthy, wherever it is shown.
    page.open(f"/sites/{STAGING}")
    page.fill("#maintenance-on", message="Browser test {{ 7 * 7 }}")
    page.find("#maintenance-on button").click()
    assert page.operation_ends() == "successful", page.text()
    page.open("/clusters/sandbox")
    staging_row = f"#sites tr[data-site='{STAGING}']"
    badge = page.wait(lambda: not page.all("#reading-again") and page.find(f"{staging_row} .badge").text, 60,
                      "the state after maintenance on")
    cached = site_state.site_state("sandbox", STAGING)
    assert badge == "MAINTENANCE", (badge, cached["read_at"], cached["badge"], cached["heads"],
                                    history.list_operations(site={STAGING}, limit=1)[0]["ended"])
    assert "Browser test {{ 7 * 7 }}" in page.find(staging_row).text  # the message as typed
    assert STAGING in page.find("#needs-attention").text and PROD not in page.find("#needs-attention").text
    page.shot("12-cluster-maintenance")
    page.open("/")
    assert page.find(f"#clusters a[href='/sites/{STAGING}'] + .badge").text == "MAINTENANCE"
    page.open(f"/sites/{STAGING}")
    assert page.find("#site-state .badge").text == "MAINTENANCE"
    assert page.find("#heads .maintenance").text.startswith("ON")
    page.shot("13-site-maintenance")
    page.find("#maintenance-off button").click()
    assert page.operation_ends() == "successful", page.text()

    # Production maintenance On: the button stays disabled until the name is typed, and the server refuses
    # a request without it (nothing recorded, the site serving).
    page.open(f"/sites/{PROD}")
    button = page.find("#maintenance-on button")
    assert not button.is_enabled()
    rows_before = len(history.list_operations())
    browser.execute_script("document.querySelector('#maintenance-on button').disabled = false;"
                           "document.querySelector('#maintenance-on [name=confirm]').removeAttribute('required');")
    button.click()
    error = page.wait(lambda: page.find("#error").text, 30, "the refusal")
    assert f"type the site's name ({PROD}) in confirm" in error, error
    assert len(history.list_operations()) == rows_before
    assert http_get(sandbox, PROD)[0] == 200
    page.shot("14-maintenance-refused")

    # Trim on production: refused until the site's name is typed.
    page.open(f"/sites/{PROD}")
    form = "#op-trim"
    browser.execute_script("document.querySelector('#op-trim [name=before]').value = '2000-01-01'")
    button = page.find(f"{form} button")
    assert not button.is_enabled()
    page.fill(form, confirm="prod.teststudio")
    assert not button.is_enabled()
    page.shot("15-trim-refused")
    page.fill(form, confirm=PROD)
    assert button.is_enabled()
    button.click()
    page.wait(lambda: "/operations/" in browser.current_url, 30, "the trim operation")
    assert page.operation_ends() == "successful", page.text()

    # The upgrade: a version chosen among those the path allows; the plan is shown first.
    page.open(f"/sites/{STAGING}")
    offered = [o.get_attribute("value") for o in page.all("#op-upgrade select[name=to] option")]
    assert "9.1.0" in offered and "8.0.0" not in offered, offered
    page.fill("#op-upgrade", to="9.1.0")
    page.find("#op-upgrade button").click()
    page.wait(lambda: "Steps" in page.text(), 60, "the plan")
    assert "shotgun-9.1.0.tar.gz" in page.find("table").text and "Upgrade to 9.1.0" in page.text()
    page.shot("16-upgrade-plan")
    # On production, the staging-first warning blocks until "I have tested this" is ticked (and the name typed).
    page.open(f"/sites/{PROD}/upgrade?to=8.0.1")
    assert "upgrade staging first" in page.find("#staging-warning").text
    button = page.find("#run-upgrade button")
    page.fill("#run-upgrade", confirm=PROD)
    assert not button.is_enabled()
    page.find("#run-upgrade [name=tested]").click()
    assert button.is_enabled()
    page.shot("17-upgrade-staging-first")
    page.find("#run-upgrade [name=tested]").click()
    browser.execute_script("document.querySelector('#run-upgrade button').disabled = false")
    button.click()
    error = page.wait(lambda: page.find("#error").text, 30, "the refusal")
    assert "upgrade staging first" in error and "I have tested this" in error, error

    # Releases: upload one, then a tampered one, refused whole.
    good = build_release(tmp_path / "good", "9.2.0")
    bad = _tampered(build_release(tmp_path / "src", "9.3.0"), tmp_path / "bad")
    page.open("/releases")
    page.find("#upload-release input[type=file]").send_keys(str(good))
    page.find("#upload-release button").click()
    added = page.wait(lambda: page.find("#added").text, 60, "the upload")
    assert "Added shotgun-9.2.0.tar.gz" in added
    assert "9.2.0" in page.find("#releases").text
    page.shot("18-releases-added")
    page.find("#upload-release input[type=file]").send_keys(str(bad))
    page.find("#upload-release button").click()
    error = page.wait(lambda: page.find("#error").text, 60, "the refusal")
    assert "shotgun-9.3.0.tar.gz refused, nothing was added" in error, error
    assert "9.3.0" not in page.find("#releases").text
    assert not (sec_home / "releases" / "shotgun-9.3.0.tar.gz").exists()
    page.shot("19-releases-tampered-refused")

    # The history: who ran what (the console's account; CLI runs as the OS user), release uploads included,
    # filtered by site, operation and dates.
    page.open("/operations")
    assert console.user in page.find("table.ops").text
    assert "release add" in page.find("table.ops").text
    page.shot("20-operations")
    today = time.strftime("%Y-%m-%d", time.gmtime())
    page.open(f"/operations?site={STAGING}&operation=maintenance&since={today}&until={today}")
    rows = page.all("table.ops tbody tr")
    assert len(rows) >= 2 and all("maintenance" in r.text and STAGING in r.text for r in rows)
    page.shot("21-operations-filtered")
    page.open("/hosts")
    assert "app" in page.text()
    page.shot("22-hosts")
    page.open("/advanced?module=site_health")
    module = page.find("#module-site_health")
    assert "through its real Apache virtual host" in module.text  # the module's own DOCUMENTATION
    page.shot("23-advanced")
    _, staging = store.find_site(STAGING)
    page.fill("#module-site_health form", site=STAGING, opt_url=staging.health_url, opt_host_header=STAGING)
    page.find("#module-site_health form button").click()
    page.wait(lambda: "/operations/" in browser.current_url, 30, "the advanced operation")
    assert page.operation_ends() == "successful", page.text()
    assert page.find("h1").text.startswith("advanced site_health")
    assert len(list(OUTPUT.glob("*.png"))) == 23


def test_an_operation_page_counts_its_steps_live(sandbox: dict, console: Console, browser) -> None:
    """A second backup of staging: the page's step counter moves while it runs (no reload), says "of ~M"
    from the first backup, and the task table and result appear when it ends."""
    page = Page(browser, console)
    _logged_in(page, console)
    if not store.cluster_exists("sandbox"):
        pytest.skip("needs the cluster the first browser test adds")
    for _ in range(2):
        page.open(f"/sites/{STAGING}")
        page.find("#op-backup button").click()
        page.wait(lambda: "/operations/" in browser.current_url, 30, "the operation page")
        browser.execute_script("window.notReloaded = true")
        steps_seen = set()
        while page.find("#op-status .status").text == "running":
            steps_seen.add(page.find("#step").text)
            time.sleep(0.1)
        assert page.find("#op-status .status").text == "successful"
    assert len(steps_seen) >= 2, steps_seen  # the counter moved
    assert any(" of ~" in s for s in steps_seen), steps_seen
    assert browser.execute_script("return window.notReloaded") is True
    page.wait(lambda: page.all("#tasks tbody tr") and page.find("#result"), 20, "the tasks and result")


def _logged_in(page: Page, console: Console) -> None:
    page.open("/")
    if page.all("#login"):
        page.fill("#login", username=console.user, password=console.password)
        page.find("#login button").click()
        page.wait(lambda: page.find("#user").text == console.user, 10, "the login")


# Every page a reviewer should see, at a desktop and a phone width: docs/console/<name>-<width>.png.
SCREENSHOT_PAGES = {
    "clusters": "/", "cluster": "/clusters/sandbox", "site-production": f"/sites/{PROD}",
    "site-staging": f"/sites/{STAGING}", "settings": f"/sites/{STAGING}/settings",
    "backups": f"/sites/{PROD}/backups", "upgrade-plan": f"/sites/{PROD}/upgrade?to=8.0.1",
    "operations": "/operations", "hosts": "/hosts", "releases": "/releases", "advanced": "/advanced",
    "accounts": "/accounts", "schedules": "/schedules",
}


def test_every_page_is_photographed_for_the_docs(sandbox: dict, console: Console, browser) -> None:
    page = Page(browser, console)
    _logged_in(page, console)
    if not store.cluster_exists("sandbox"):
        pytest.skip("needs the cluster the first browser test adds")
    DOCS.mkdir(parents=True, exist_ok=True)
    last = history.list_operations(site={PROD}, limit=1)
    pages = {**SCREENSHOT_PAGES, **({"operation": f"/operations/{last[0]['id']}"} if last else {})}
    try:
        for width in (1400, 420):
            browser.set_window_size(width, 1000)
            for name, path in pages.items():
                page.open(path)
                page.wait(lambda: not page.all(".loading"), 30, f"{path} without a loading sign")
                height = browser.execute_script("return document.documentElement.scrollHeight")
                browser.set_window_size(width, min(max(height, 600), 4000))
                browser.save_screenshot(str(DOCS / f"{name}-{width}.png"))
                browser.set_window_size(width, 1000)
    finally:
        browser.set_window_size(1280, 1400)
    page.open("/logout")
    browser.delete_all_cookies()
    page.open("/login")
    for width in (1400, 420):
        browser.set_window_size(width, 800)
        browser.save_screenshot(str(DOCS / f"login-{width}.png"))
    browser.set_window_size(1280, 1400)
    assert len(list(DOCS.glob("*.png"))) >= 2 * (len(pages) + 1)
