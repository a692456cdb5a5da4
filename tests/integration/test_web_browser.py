"""The console in a real headless Chromium (Debian's chromium and chromium-driver) against the sandbox.

One browser, one `sec serve` (the session's console fixture) and the session's sandbox: log in, add the
sandbox's cluster from the form, open a site, back it up and watch the log arrive live, edit a setting,
refuse a production trim until the name is typed, upload a release and a tampered one. Every page is
photographed into tests/output/test_web_browser/.
"""

from __future__ import annotations

import io
import shutil
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from sec_wrapper import store
from sec_wrapper.sandbox.releases import build_release
from tests.integration.conftest import Console

pytestmark = pytest.mark.integration
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
OUTPUT = Path(__file__).resolve().parents[1] / "output" / "test_web_browser"
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
            element = self.find(f"{form} [name={name}]")
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
    page.find("#check-health").click()  # each site checked from its App server, each a recorded operation

    def health_checks_ended() -> bool:
        browser.refresh()
        states = [e.text for e in page.all("table.ops .status")]
        return len(states) >= 2 and "running" not in states

    page.wait(health_checks_ended, 120, "the health checks")
    page.open("/clusters/sandbox")
    assert [e.text for e in page.all("#sites .health")] == ["healthy", "healthy"]
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

    # The site's backups, checked.
    page.open(f"/sites/{PROD}/backups?check=1")
    assert page.all("#backups tbody tr") and "no backup" not in page.find("#backups").text
    state = page.find("#backups tbody tr td:nth-child(5)").text  # checked just now: says when
    assert state.startswith("verified\nat ") or state.startswith("verified at "), state
    page.shot("07-backups")

    # Settings: an invalid value refused with the schema's words, a valid one persisted, redeploy pending,
    # and redeploy clears it.
    page.open(f"/sites/{STAGING}/settings")
    page.wait(lambda: page.find("#settings"), 60, "the settings")
    import json

    settings = json.loads(page.find("#settings").get_attribute("value"))
    settings["max_upload_mb"] = 0
    page.fill("#settings-form", settings=json.dumps(settings, indent=2))
    page.find("#save-settings").click()
    error = page.wait(lambda: page.find("#error").text, 60, "the refusal")
    assert "max_upload_mb" in error and "an integer from 1 to 100000" in error, error
    page.shot("08-settings-refused")
    settings["max_upload_mb"] = 777 if settings.get("max_upload_mb") != 777 else 778
    page.fill("#settings-form", settings=json.dumps(settings, indent=2))
    page.find("#save-settings").click()
    page.wait(lambda: page.find("#diff"), 60, "the saved settings")
    assert "max_upload_mb" in page.find("#diff").text and str(settings["max_upload_mb"]) in page.find("#diff").text
    assert "Redeploy pending" in page.find("#pending").text
    page.shot("09-settings-pending")
    page.find("#redeploy").click()
    page.wait(lambda: "/operations/" in browser.current_url, 30, "the redeploy operation")
    assert page.operation_ends() == "successful", page.text()
    page.open(f"/sites/{STAGING}/settings")
    page.wait(lambda: page.find("#applied"), 60, "the applied settings")
    assert not page.all("#pending")
    assert json.loads(page.find("#settings").get_attribute("value"))["max_upload_mb"] == settings["max_upload_mb"]
    page.shot("10-settings-applied")

    # Trim on production: refused until the site's name is typed.
    page.open(f"/sites/{PROD}")
    form = "#op-trim"
    browser.execute_script("document.querySelector('#op-trim [name=before]').value = '2000-01-01'")
    button = page.find(f"{form} button")
    assert not button.is_enabled()
    page.fill(form, confirm="prod.teststudio")
    assert not button.is_enabled()
    page.shot("11-trim-refused")
    page.fill(form, confirm=PROD)
    assert button.is_enabled()
    button.click()
    page.wait(lambda: "/operations/" in browser.current_url, 30, "the trim operation")
    assert page.operation_ends() == "successful", page.text()

    # The upgrade plan is shown first (the sandbox's series ends at 9.1.0).
    page.open(f"/sites/{STAGING}")
    page.fill("#op-upgrade", to="9.1.0")
    page.find("#op-upgrade button").click()
    page.wait(lambda: "Steps" in page.text(), 60, "the plan")
    assert "shotgun-9.1.0.tar.gz" in page.find("table").text and "Upgrade to 9.1.0" in page.text()
    page.shot("12-upgrade-plan")

    # Releases: upload one, then a tampered one, refused whole.
    good = build_release(tmp_path / "good", "9.2.0")
    bad = _tampered(build_release(tmp_path / "src", "9.3.0"), tmp_path / "bad")
    page.open("/releases")
    page.find("#upload-release input[type=file]").send_keys(str(good))
    page.find("#upload-release button").click()
    added = page.wait(lambda: page.find("#added").text, 60, "the upload")
    assert "Added shotgun-9.2.0.tar.gz" in added
    assert "9.2.0" in page.find("#releases").text
    page.shot("13-releases-added")
    page.find("#upload-release input[type=file]").send_keys(str(bad))
    page.find("#upload-release button").click()
    error = page.wait(lambda: page.find("#error").text, 60, "the refusal")
    assert "shotgun-9.3.0.tar.gz refused, nothing was added" in error, error
    assert "9.3.0" not in page.find("#releases").text
    assert not (sec_home / "releases" / "shotgun-9.3.0.tar.gz").exists()
    page.shot("14-releases-tampered-refused")

    # The remaining pages, photographed; the history shows who ran what.
    page.open("/operations")
    assert console.user in page.find("table.ops").text
    page.shot("15-operations")
    page.open("/operations?status=successful&operation=backup")
    page.shot("16-operations-filtered")
    page.open("/hosts")
    assert "app" in page.text()
    page.shot("17-hosts")
    page.open("/advanced?module=site_health")
    module = page.find("#module-site_health")
    assert "through its real Apache virtual host" in module.text  # the module's own DOCUMENTATION
    page.shot("18-advanced")
    _, staging = store.find_site(STAGING)
    page.fill("#module-site_health form", site=STAGING, opt_url=staging.health_url, opt_host_header=STAGING)
    page.find("#module-site_health form button").click()
    page.wait(lambda: "/operations/" in browser.current_url, 30, "the advanced operation")
    assert page.operation_ends() == "successful", page.text()
    assert page.find("h1").text.startswith("advanced site_health")
    browser.set_window_size(400, 900)
    page.open(f"/sites/{PROD}")
    page.shot("19-site-narrow")
    browser.set_window_size(1280, 1400)
    assert len(list(OUTPUT.glob("*.png"))) == 19
