"""The console over HTTP (Starlette's TestClient, the real app): sessions, CSRF, login throttle, the API's
answers to bad input, and the accounts behind them. The CLI runs for real where an action launches it."""

from __future__ import annotations

import json
import os
import re
import ssl
import stat
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

import pytest
from starlette.routing import Route
from starlette.testclient import TestClient

from sec_wrapper import accounts, history, store
from sec_wrapper.errors import SecError
from sec_wrapper.web.app import SESSION_COOKIE, create_app

PASSWORD = "correct horse battery staple"
SITE = "prod.teststudio.com"


pytestmark = pytest.mark.usefixtures("home")  # a data folder of each test's own (tests/unit/conftest.py)


@pytest.fixture
def app():
    accounts.add_user("alice", PASSWORD)
    return create_app()


def _csrf(page: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', page)
    assert match, "the page carries no CSRF token"
    return match.group(1)


def _login(client: TestClient, name: str = "alice", password: str = PASSWORD):
    csrf = _csrf(client.get("/login").text)
    return client.post("/login", data={"username": name, "password": password, "csrf": csrf},
                       follow_redirects=False)


@pytest.fixture
def logged_in(app) -> TestClient:
    client = TestClient(app)
    assert _login(client).status_code == 303
    return client


def _stored_site() -> None:
    site = store.Site(name=SITE, reverse_name="com_teststudio_prod", site_dir="/nonexistent/com_teststudio_prod",
                      role="production", version="8.1.2", app_hosts=["app1"],
                      database=store.Database(host="127.0.0.1", port=1, name="db", user="sg"))
    store.save_cluster(store.Cluster(name="studio", hosts=[store.Host(name="app1", address="127.0.0.1", port=1,
                                                                      roles=["app", "db"])], sites=[site]), new=True)


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", lambda m: "20260101T000000Z-abcd" if m.group(0) == "{id}" else "x", path)


def _routes(app, method: str) -> list[str]:
    return [_concrete(r.path) for r in app.routes if isinstance(r, Route) and method in (r.methods or ())
            and r.path != "/login"]


# ---- accounts ---------------------------------------------------------------------------------------

def test_user_add_stores_a_slow_salted_hash_in_a_private_file(home: Path) -> None:
    run = subprocess.run([sys.executable, "-m", "sec_wrapper.cli", "user", "add", "bob"], input=PASSWORD + "\n",
                         capture_output=True, text=True, check=True)
    assert PASSWORD not in run.stdout + run.stderr
    path = home / "users.json"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert PASSWORD not in text and "$argon2id$" in text
    assert accounts.verify_password("bob", PASSWORD)
    assert not accounts.verify_password("bob", PASSWORD + "x")
    assert not accounts.verify_password("nobody", PASSWORD)
    with pytest.raises(SecError, match="too short"):
        accounts.add_user("carol", "short")
    with pytest.raises(SecError, match="exists"):
        accounts.add_user("bob", PASSWORD)


def test_token_is_shown_once_and_stored_only_as_a_digest(home: Path) -> None:
    accounts.add_user("bob", PASSWORD)
    token = subprocess.run([sys.executable, "-m", "sec_wrapper.cli", "user", "token", "bob"], capture_output=True,
                           text=True, check=True).stdout.strip()
    assert token.startswith("sec_") and token not in (home / "users.json").read_text()
    assert accounts.user_for_token(token) == "bob"
    assert accounts.user_for_token(token + "x") is None
    accounts.remove_user("bob")
    assert accounts.user_for_token(token) is None


# ---- every page and endpoint needs a session or a token --------------------------------------------

def test_every_page_and_endpoint_refuses_an_unauthenticated_request(app) -> None:
    client = TestClient(app)
    paths = {m: _routes(app, m) for m in ("GET", "POST", "PATCH", "DELETE")}
    assert "/api/hosts/x/x" in paths["PATCH"] and "/api/clusters/x" in paths["DELETE"]
    assert "/api/sites/x/x" in paths["POST"] and "/operations/20260101T000000Z-abcd/events" in paths["GET"]
    for method, found in paths.items():
        for path in found:
            answer = client.request(method, path, follow_redirects=False)
            if path.startswith("/api/") or path == "/metrics":  # machines' paths: 401, never a login page
                assert answer.status_code == 401, (method, path)
                assert answer.json()["error"].startswith("authentication required")
            else:
                # A page asked for is where the login leads back to; a form's POST is not asked again.
                asked = method == "GET" and path != "/"
                back = f"/login?next={urllib.parse.quote(path, safe='')}" if asked else "/login"
                assert answer.status_code == 303 and answer.headers["location"] == back, (method, path)
            wrong = client.request(method, path, headers={"Authorization": "Bearer sec_not-a-token"},
                                   follow_redirects=False)
            assert wrong.status_code == 401, (method, path)
    assert client.get("/login").status_code == 200


def test_a_removed_account_loses_its_session(logged_in: TestClient) -> None:
    assert logged_in.get("/api/clusters").status_code == 200
    accounts.remove_user("alice")
    assert logged_in.get("/api/clusters").status_code == 401


def _captured(client: TestClient) -> dict[str, str]:
    """The session cookie as an attacker who copied it would replay it."""
    return {SESSION_COOKIE: client.cookies[SESSION_COOKIE]}


def _replayed(app, cookie: dict[str, str]) -> int:
    return TestClient(app, cookies=cookie).get("/api/clusters").status_code


def test_a_session_cookie_captured_before_logout_is_refused_after_it(app, logged_in: TestClient) -> None:
    cookie = _captured(logged_in)
    assert _replayed(app, cookie) == 200
    csrf = _csrf(logged_in.get("/").text)
    assert logged_in.post("/logout", data={"csrf": csrf}, follow_redirects=False).status_code == 303
    assert _replayed(app, cookie) == 401


def test_a_new_password_ends_every_session_and_the_token(app, logged_in: TestClient) -> None:
    other = TestClient(app)
    assert _login(other).status_code == 303
    token = accounts.new_token("alice")
    cookies = [_captured(logged_in), _captured(other)]
    accounts.add_user("alice", PASSWORD + "2", replace=True)
    assert [_replayed(app, c) for c in cookies] == [401, 401]
    bearer = TestClient(app, headers={"Authorization": f"Bearer {token}"})
    assert bearer.get("/api/clusters").status_code == 401


def test_a_removed_account_added_again_does_not_get_its_old_sessions_back(app, logged_in: TestClient) -> None:
    cookie = _captured(logged_in)
    accounts.remove_user("alice")
    accounts.add_user("alice", PASSWORD)
    assert _replayed(app, cookie) == 401


def test_sessions_are_stored_only_as_digests_and_can_be_revoked(app, logged_in: TestClient, home: Path) -> None:
    cookie = _captured(logged_in)
    stored = (home / "users.json").read_text()
    assert "sessions" in stored and logged_in.cookies[SESSION_COOKIE] not in stored
    assert accounts.list_users()[0]["sessions"] == 1
    assert accounts.end_sessions("alice") == 1
    assert _replayed(app, cookie) == 401


def test_session_cookie_is_httponly_samesite_and_secure_under_tls() -> None:
    accounts.add_user("alice", PASSWORD)
    for secure in (False, True):
        client = TestClient(create_app(secure_cookies=secure), base_url="https://testserver")
        cookie = _login(client).headers["set-cookie"]
        assert cookie.startswith(f"{SESSION_COOKIE}=")
        assert "httponly" in cookie.lower() and "samesite=strict" in cookie.lower()
        assert ("secure" in cookie.lower()) is secure


def test_bearer_token_reaches_the_api_without_a_session(app) -> None:
    token = accounts.new_token("alice")
    client = TestClient(app)
    answer = client.get("/api/clusters", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200 and answer.json() == []


# ---- CSRF -------------------------------------------------------------------------------------------

def test_every_post_without_the_csrf_token_is_refused_and_nothing_runs(app, logged_in: TestClient) -> None:
    _stored_site()
    posts = _routes(app, "POST")
    assert len(posts) >= 10
    for path in posts:
        answer = logged_in.post(path, data={"csrf": "wrong"}, follow_redirects=False)
        assert answer.status_code == 403, path
        answer = logged_in.post(path, follow_redirects=False)
        assert answer.status_code == 403, path
    answer = logged_in.post(f"/api/sites/{SITE}/backup", json={}, follow_redirects=False)
    assert answer.status_code == 403 and "CSRF" in answer.json()["error"]
    for method in ("PATCH", "DELETE"):
        for path in _routes(app, method):
            answer = logged_in.request(method, path.replace("/x/x", "/studio/app1").replace("/x", "/studio"),
                                       json={"address": "127.0.0.8"}, follow_redirects=False)
            assert answer.status_code == 403 and "CSRF" in answer.json()["error"], (method, path)
    assert store.load_cluster("studio").host("app1").address == "127.0.0.1"
    assert history.all_ids() == []
    assert logged_in.get("/api/clusters").status_code == 200  # still logged in: logout needed the token too


# ---- login throttle ---------------------------------------------------------------------------------

def test_wrong_password_is_refused_and_repeated_failures_are_slowed(app) -> None:
    client = TestClient(app)
    times = []
    for _ in range(5):
        started = time.monotonic()
        answer = _login(client, password="wrong password")
        times.append(time.monotonic() - started)
        assert answer.status_code == 401 and "wrong name or password" in answer.text
        assert client.get("/api/clusters").status_code == 401
    assert max(times[:3]) < 1.0
    assert times[3] >= 1.0 and times[4] >= 2.0, times
    started = time.monotonic()
    assert _login(client).status_code == 303  # the right password still works, slowed as well
    assert time.monotonic() - started >= 4.0
    assert client.get("/api/clusters").status_code == 200


def test_parallel_guesses_take_their_turn_and_each_pays_its_delay() -> None:
    """Guesses sent at once are checked one after another: 0, 0.3, 0.6 and 1.2 s of waits add up."""
    import asyncio

    import httpx2

    from sec_wrapper.web.security import LoginThrottle

    accounts.add_user("alice", PASSWORD)
    app = create_app(throttle=LoginThrottle(free=1, base=0.3, ceiling=5.0))

    async def guess_in_parallel() -> tuple[list[int], float]:
        async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://test") as client:
            csrf = _csrf((await client.get("/login")).text)
            form = {"username": "alice", "password": "wrong password", "csrf": csrf}
            started = time.monotonic()
            answers = await asyncio.gather(*(client.post("/login", data=form) for _ in range(4)))
            return [a.status_code for a in answers], time.monotonic() - started

    codes, elapsed = asyncio.run(guess_in_parallel())
    assert codes == [401] * 4
    assert elapsed >= 2.1, elapsed


def test_a_flood_of_parallel_guesses_is_refused_past_the_queue() -> None:
    import asyncio

    import httpx2

    from sec_wrapper.web.security import LoginThrottle

    accounts.add_user("alice", PASSWORD)
    throttle = LoginThrottle(free=0, base=0.5, ceiling=0.5, most_waiting=3)  # the first holds its turn 0.5 s
    app = create_app(throttle=throttle)

    async def flood() -> list[int]:
        async with httpx2.AsyncClient(transport=httpx2.ASGITransport(app=app), base_url="http://test") as client:
            csrf = _csrf((await client.get("/login")).text)
            form = {"username": "alice", "password": "wrong password", "csrf": csrf}
            answers = await asyncio.gather(*(client.post("/login", data=form) for _ in range(8)))
            return [a.status_code for a in answers]

    codes = asyncio.run(flood())
    assert codes.count(401) == 3 and codes.count(429) == 5, codes
    assert throttle.waiting == {}  # every queued attempt let go of its place


def test_unknown_account_is_refused_like_a_wrong_password(app) -> None:
    answer = _login(TestClient(app), name="mallory")
    assert answer.status_code == 401 and "wrong name or password" in answer.text


# ---- the API's answers ------------------------------------------------------------------------------

def _post(client: TestClient, path: str, body: dict) -> object:
    csrf = _csrf(client.get("/").text)
    return client.post(path, json=body, headers={"X-CSRF-Token": csrf})


def test_bad_input_answers_400_with_the_cli_message_and_runs_nothing(logged_in: TestClient) -> None:
    answer = _post(logged_in, "/api/sites/nosuch.example.com/backup", {})
    assert answer.status_code == 400
    assert answer.json()["error"] == "no site nosuch.example.com: see `sec site list`"
    _stored_site()
    answer = _post(logged_in, f"/api/sites/{SITE}/frobnicate", {})
    assert answer.status_code == 400 and answer.json()["error"].startswith("no operation frobnicate")
    # Refused by the operation's spec (the CLI's arguments are built from it), before any process starts.
    answer = _post(logged_in, f"/api/sites/{SITE}/backup", {"bogus": 1})
    assert answer.status_code == 400 and answer.json()["error"] == "backup has no option 'bogus'"
    answer = _post(logged_in, f"/api/sites/{SITE}/trim-events", {"before": "2020-01-01"})
    assert answer.status_code == 400
    assert answer.json()["error"] == ("trimming deletes events (archived to a CSV) of prod.teststudio.com, a "
                                      "production site: type the site's name (prod.teststudio.com) in confirm "
                                      "to go ahead")
    answer = _post(logged_in, f"/api/sites/{SITE}/trim-events", {"before": "2020-01-01", "yes": True})
    assert answer.status_code == 400 and "no option 'yes'" in answer.json()["error"]
    answer = _post(logged_in, f"/api/sites/{SITE}/backup", {"label": "--json"})
    assert answer.status_code == 400
    # Issue 21: a value longer than an operation takes (it once gave a 500, "Argument list too long"), and inputs
    # the playbook would refuse: 400 with one line, before anything is recorded.
    for operation, options in (("maintenance", {"state": "on", "message": "m" * 200_000}),
                               ("backup", {"label": "not a label"}), ("backup", {"keep": -1}),
                               ("trim-events", {"before": "2020-02-30", "confirm": SITE})):
        answer = _post(logged_in, f"/api/sites/{SITE}/{operation}", options)
        assert answer.status_code == 400, answer.text
        assert answer.json()["error"] and "\n" not in answer.json()["error"]
    assert history.all_ids() == []  # nothing ran, no empty operation left behind


def test_a_refused_form_shows_the_cli_message_on_the_page(logged_in: TestClient) -> None:
    _stored_site()
    page = logged_in.get(f"/sites/{SITE}").text
    answer = logged_in.post(f"/sites/{SITE}/run/trim-events",
                            data={"csrf": _csrf(page), "before": "2020-01-01", "confirm": "prod"})
    assert answer.status_code == 400
    assert "type the site&#39;s name (prod.teststudio.com) in confirm" in answer.text
    assert history.all_ids() == []


def test_unknown_operation_id_is_404(logged_in: TestClient) -> None:
    assert logged_in.get("/api/operations/20260101T000000Z-abcd").status_code == 404
    assert logged_in.get("/api/operations/20260101T000000Z-abcd/log").status_code == 404


def test_pages_render_for_a_logged_in_user(logged_in: TestClient) -> None:
    _stored_site()
    for path in ("/", "/clusters/studio", f"/sites/{SITE}", "/hosts", "/operations", "/releases"):
        answer = logged_in.get(path)
        assert answer.status_code == 200, path
        assert 'id="user">alice<' in answer.text and PASSWORD not in answer.text
    assert logged_in.get("/api/sites").json()[0]["name"] == SITE


# ---- hosts, as `sec host` ---------------------------------------------------------------------------

def test_hosts_page_adds_edits_and_removes_a_host(logged_in: TestClient) -> None:
    _stored_site()
    csrf = _csrf(logged_in.get("/hosts").text)
    answer = logged_in.post("/hosts/add", data={"csrf": csrf, "cluster": "studio", "name": "api1",
                                                "address": "127.0.0.9", "port": "9", "user": "shotgun",
                                                "roles": ["api", "db"]})
    # Checked over SSH by default, as `sec host add`: 127.0.0.9 does not answer, so nothing is added.
    assert answer.status_code == 400 and "127.0.0.9" in answer.text
    assert "api1" not in [h.name for h in store.load_cluster("studio").hosts]
    answer = logged_in.post("/hosts/add", data={"csrf": csrf, "cluster": "studio", "name": "api1",
                                                "address": "127.0.0.9", "port": "9", "user": "shotgun",
                                                "roles": ["api", "db"], "no_check": "on"})
    assert answer.status_code == 200 and "api1" in answer.text  # followed back to the Hosts page
    host = store.load_cluster("studio").host("api1")
    assert (host.address, host.port, host.user, host.roles) == ("127.0.0.9", 9, "shotgun", ["api", "db"])
    answer = logged_in.post("/hosts/edit", data={"csrf": csrf, "cluster": "studio", "name": "api1",
                                                 "address": "127.0.0.10", "roles": ["api"]})
    assert answer.status_code == 200
    host = store.load_cluster("studio").host("api1")
    assert (host.address, host.roles) == ("127.0.0.10", ["api"])
    # The CLI's own refusal, shown on the page: app1 serves the site.
    answer = logged_in.post("/hosts/remove", data={"csrf": csrf, "cluster": "studio", "name": "app1",
                                                   "confirm": "app1"})
    assert answer.status_code == 400 and "sites prod.teststudio.com depend on it" in answer.text
    # Removing a host asks for its name typed, as every action that can take production down.
    answer = logged_in.post("/hosts/remove", data={"csrf": csrf, "cluster": "studio", "name": "api1",
                                                   "confirm": "api"})
    assert answer.status_code == 400 and "name (api1) in confirm to remove it" in answer.text
    assert "api1" in [h.name for h in store.load_cluster("studio").hosts]
    answer = logged_in.post("/hosts/remove", data={"csrf": csrf, "cluster": "studio", "name": "api1",
                                                   "confirm": "api1"})
    assert answer.status_code == 200
    assert [h.name for h in store.load_cluster("studio").hosts] == ["app1"]


def test_api_adds_edits_and_removes_hosts_and_clusters_as_the_cli_does(logged_in: TestClient) -> None:
    _stored_site()
    csrf = {"X-CSRF-Token": _csrf(logged_in.get("/").text)}
    api1 = {"cluster": "studio", "name": "api1", "address": "127.0.0.9", "port": 9, "roles": ["api"]}
    answer = logged_in.post("/api/hosts", json=api1, headers=csrf)  # checked over SSH first: nothing answers
    assert answer.status_code == 400 and "127.0.0.9" in answer.json()["error"]
    assert "api1" not in [h.name for h in store.load_cluster("studio").hosts]
    answer = logged_in.post("/api/hosts", json={**api1, "key": "../../etc/shadow"}, headers=csrf)
    assert answer.status_code == 400 and answer.json()["error"].startswith("no key '../../etc/shadow' in ")
    answer = logged_in.post("/api/hosts", json={**api1, "no_check": True}, headers=csrf)
    assert answer.status_code == 201, answer.text
    assert answer.json() | {"key": None} == {"cluster": "studio", "name": "api1", "address": "127.0.0.9", "port": 9,
                                             "user": "root", "key": None, "roles": ["api"], "python": None,
                                             "backup_dir": None}
    answer = logged_in.patch("/api/hosts/studio/api1", json={"address": "127.0.0.10", "roles": ["api", "db"]},
                             headers=csrf)
    assert answer.status_code == 200 and answer.json()["address"] == "127.0.0.10"
    assert store.load_cluster("studio").host("api1").roles == ["api", "db"]
    answer = logged_in.delete("/api/hosts/studio/app1", headers=csrf)  # the CLI's own refusal
    assert answer.status_code == 400 and "sites prod.teststudio.com depend on it" in answer.json()["error"]
    assert logged_in.delete("/api/hosts/studio/api1", headers=csrf).status_code == 200
    assert [h.name for h in store.load_cluster("studio").hosts] == ["app1"]
    # Bad input to cluster create is refused before anything runs, with the fix named.
    recorded = history.all_ids()  # the host checks above ran as operations
    answer = logged_in.post("/api/clusters", json={"name": "other"}, headers=csrf)
    assert answer.status_code == 400 and "app_server" in answer.json()["error"]
    answer = logged_in.post("/api/clusters", json={"name": "other", "app_server": "--json"}, headers=csrf)
    assert answer.status_code == 400
    assert history.all_ids() == recorded
    assert logged_in.delete("/api/clusters/nosuch", headers=csrf).status_code == 400
    answer = logged_in.delete("/api/clusters/studio", headers=csrf)
    assert answer.status_code == 200 and answer.json() == {"removed": "studio"}
    assert logged_in.get("/api/clusters").json() == []


# ---- the live log -----------------------------------------------------------------------------------

def _events(text: str) -> list[tuple[str, str, str]]:
    """(id, event, data) of each server-sent event in `text`."""
    found = []
    for block in text.split("\n\n"):
        fields = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line and not line.startswith(":"))
        if "event" in fields:
            found.append((fields.get("id", ""), fields["event"], fields["data"]))
    return found


def test_the_log_streams_as_server_sent_events_and_resumes_after_a_reconnect(logged_in: TestClient) -> None:
    op_id = history.new_operation_id()
    history.write_record(op_id, {"id": op_id, "operation": "backup", "status": "successful", "user": "alice",
                                 "started": history.now_iso(), "duration": 1.5, "message": ""})
    (history.operation_dir(op_id) / "stdout").write_text("PLAY [one]\nTASK [two]\n")
    answer = logged_in.get(f"/operations/{op_id}/events")
    assert answer.headers["content-type"].startswith("text/event-stream")
    events = [e for e in _events(answer.text) if e[1] != "progress"]
    assert [e[1] for e in events] == ["log", "end"]
    assert events[0][0] == "22" and events[0][2] == '"PLAY [one]\\nTASK [two]\\n"'
    assert '"status": "successful"' in events[1][2]
    resumed = [e for e in _events(logged_in.get(f"/operations/{op_id}/events", headers={"Last-Event-ID": "11"}).text)
               if e[1] != "progress"]
    assert resumed[0][1:] == ("log", '"TASK [two]\\n"')
    page = logged_in.get(f"/operations/{op_id}").text
    assert f'data-events="/operations/{op_id}/events"' in page and "status-successful" in page


# ---- sec serve: loopback by default, a warning without TLS, HTTPS with --cert/--key ----------------

def _self_signed(folder: Path) -> tuple[Path, Path]:
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.UTC)
    import ipaddress

    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False)
            .serial_number(x509.random_serial_number()).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1)).sign(key, hashes.SHA256()))
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    key_path.chmod(0o600)
    return cert_path, key_path


def _sec(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sec_wrapper.cli", *args], capture_output=True, text=True,
                          timeout=60, stdin=subprocess.DEVNULL)


def test_serve_warns_when_not_loopback_without_tls_and_checks_its_options(tmp_path: Path) -> None:
    from sec_wrapper.commands.serve import is_loopback

    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.0.2.1")
    # 192.0.2.1 (TEST-NET) is no address of this machine: the warning comes, then the bind fails, nothing listens.
    run = _sec("serve", "--host", "192.0.2.1", "--port", "0")
    assert run.returncode == 2
    assert "warning: serving on 192.0.2.1 without TLS" in run.stderr and "cannot listen on 192.0.2.1" in run.stderr
    run = _sec("serve", "--cert", str(tmp_path / "cert.pem"))
    assert run.returncode == 2 and "--cert and --key go together" in run.stderr


def test_serve_with_cert_and_key_answers_https_with_secure_cookies(tmp_path: Path) -> None:
    import httpx2

    cert, key = _self_signed(tmp_path)
    accounts.add_user("alice", PASSWORD)
    log = tmp_path / "serve.log"
    with open(log, "wb") as out:
        server = subprocess.Popen([sys.executable, "-m", "sec_wrapper.cli", "serve", "--port", "0", "--cert",
                                   str(cert), "--key", str(key)], stdout=out, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, env={**__import__("os").environ, "PYTHONUNBUFFERED": "1"})
    try:
        deadline = time.monotonic() + 30
        while not (match := re.search(r"sec console: (https://127\.0\.0\.1:\d+/)", log.read_text())):
            assert server.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.1)
        assert "warning" not in log.read_text()
        with httpx2.Client(base_url=match.group(1), verify=ssl.create_default_context(cafile=str(cert))) as client:
            answer = _login(client)
            assert answer.status_code == 303
            cookie = answer.headers["set-cookie"].lower()
            assert "secure" in cookie and "httponly" in cookie
        assert PASSWORD not in log.read_text()
    finally:
        server.terminate()
        server.wait(timeout=15)


def test_throttle_forgets_the_oldest_names_past_its_limit() -> None:
    from sec_wrapper.web.security import LoginThrottle

    throttle = LoginThrottle(most_keys=10)
    for n in range(25):
        throttle.failed(f"user:{n}")
    assert len(throttle.failures) == 10 and "user:24" in throttle.failures and "user:0" not in throttle.failures
    for _ in range(4):
        throttle.failed("user:24")
    assert throttle.delay("user:24") == 4.0  # five failures: 1 s doubled twice and throttle.delay("user:99") == 0.0


def test_api_lists_the_modules_with_their_documentation(logged_in: TestClient) -> None:
    modules = {m["module"]: m for m in logged_in.get("/api/advanced").json()}
    assert "site_health" in modules and "run_module" not in modules
    assert "url" in modules["site_health"]["documentation"]["options"]


def test_api_release_upload_is_checked_as_releases_add_checks_it(app, home: Path, tmp_path: Path) -> None:
    from sec_wrapper.sandbox.releases import build_release

    good = build_release(tmp_path / "good", "9.2.0")
    bad = build_release(tmp_path / "bad", "9.3.0")
    data = bytearray(bad.read_bytes())
    data[len(data) // 2] ^= 0xFF  # a flipped byte inside the compressed members
    bad.write_bytes(bytes(data))
    client = TestClient(app, headers={"Authorization": f"Bearer {accounts.new_token('alice')}"})
    answer = client.post("/api/releases", files={"release": (bad.name, bad.read_bytes())})
    assert answer.status_code == 400 and answer.json()["error"].startswith("shotgun-9.3.0.tar.gz refused")
    answer = client.post("/api/releases", files={"release": (good.name, good.read_bytes())})
    assert answer.status_code == 201 and answer.json()["version"] == "9.2.0" and answer.json()["added"] is True
    assert sorted(p.name for p in (home / "releases").iterdir()) == ["shotgun-9.2.0.tar.gz",
                                                                       "shotgun-9.2.0.tar.gz.sha256"]
    assert list((home / "uploads").iterdir()) == []  # the uploads are gone, accepted or refused


# ---- bounded input, framing and origin (issue 21) ----------------------------------------------------------

def _spooled_files() -> set[str]:
    return set(os.listdir(tempfile.gettempdir()))


def test_a_20_mib_body_to_login_is_413_before_anything_reads_it(app, home: Path) -> None:
    client = TestClient(app)
    before = _spooled_files()
    body = b"x" * (20 << 20)
    answer = client.post("/login", content=body, headers={"Content-Type": "multipart/form-data; boundary=b"})
    assert answer.status_code == 413 and "at most" in answer.text and "\n" not in answer.text.strip()
    assert _spooled_files() == before


def test_a_body_without_length_is_counted_as_it_arrives(app) -> None:
    def chunks():
        for _ in range(3):
            yield b"y" * (1 << 20)

    answer = TestClient(app).post("/login", content=chunks(),
                                  headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert answer.status_code == 413


def test_an_over_size_upload_is_413_and_leaves_nothing_behind(home: Path, tmp_path: Path) -> None:
    accounts.add_user("alice", PASSWORD)
    app = create_app(max_upload=64 << 10)
    token = accounts.new_token("alice")
    client = TestClient(app, headers={"Authorization": f"Bearer {token}"})

    def stream():  # no Content-Length: the limit is met while the file is written
        yield b"--b\r\nContent-Disposition: form-data; name=\"release\"; filename=\"shotgun-9.9.9.tar.gz\"\r\n\r\n"
        for _ in range(40):
            yield b"z" * 4096
        yield b"\r\n--b--\r\n"

    answer = client.post("/api/releases", content=stream(),
                         headers={"Content-Type": "multipart/form-data; boundary=b"})
    assert answer.status_code == 413 and "--max-upload" in answer.text
    assert list((home / "uploads").iterdir()) == []
    answer = client.post("/api/releases", files={"release": ("shotgun-9.9.9.tar.gz", b"z" * (100 << 10))})
    assert answer.status_code == 413
    assert not (home / "releases").exists() or not any((home / "releases").iterdir())


@pytest.mark.parametrize("name", ["..", ".", "../../etc/passwd", ".hidden.tar.gz"])
def test_an_upload_named_as_a_path_is_400(app, home: Path, name: str) -> None:
    client = TestClient(app, headers={"Authorization": f"Bearer {accounts.new_token('alice')}"})
    answer = client.post("/api/releases", files={"release": (name, b"data")})
    assert answer.status_code == 400, answer.text
    assert list((home / "uploads").iterdir()) == []


def test_a_forged_upload_writes_nothing(logged_in: TestClient, home: Path) -> None:
    answer = logged_in.post("/releases", files={"release": ("shotgun-9.9.9.tar.gz", b"data")}, data={"csrf": "x"})
    assert answer.status_code == 403
    assert list((home / "uploads").iterdir()) == []


def test_every_answer_forbids_framing_and_inline_scripts(app, logged_in: TestClient) -> None:
    for answer in (TestClient(app).get("/login"), logged_in.get("/"), logged_in.get("/api/clusters")):
        assert answer.headers["x-frame-options"] == "DENY"
        policy = answer.headers["content-security-policy"]
        assert "frame-ancestors 'none'" in policy and "script-src 'self'" in policy


def test_a_state_changing_request_from_another_origin_is_refused(logged_in: TestClient) -> None:
    csrf = _csrf(logged_in.get("/").text)
    answer = logged_in.post("/api/clusters", json={"name": "x"}, headers={"X-CSRF-Token": csrf,
                                                                         "Origin": "http://evil.example"})
    assert answer.status_code == 403 and "evil.example" in answer.text
    # Behind a TLS proxy the browser's origin is https while the console hears http: the host is what counts.
    answer = logged_in.post("/api/clusters", json={"name": "x"}, headers={"X-CSRF-Token": csrf,
                                                                         "Origin": "https://testserver"})
    assert answer.status_code != 403, answer.text
    answer = logged_in.post("/logout", data={"csrf": csrf}, headers={"Origin": "http://testserver"},
                            follow_redirects=False)
    assert answer.status_code == 303


def test_the_accounts_page_revokes_sessions_and_rotates_a_token(app, logged_in: TestClient) -> None:
    accounts.add_user("bob", PASSWORD)
    bob = TestClient(app)
    assert _login(bob, "bob").status_code == 303
    old_token = accounts.new_token("bob")
    page = logged_in.get("/accounts")
    assert page.status_code == 200 and "bob" in page.text and "alice" in page.text
    csrf = _csrf(page.text)
    answer = logged_in.post("/accounts/bob/revoke", data={"csrf": csrf})
    assert answer.status_code == 200 and "bob: 1 session ended" in answer.text
    assert bob.get("/api/clusters").status_code == 401
    answer = logged_in.post("/accounts/bob/token", data={"csrf": csrf})
    new_token = re.search(r'id="token">([^<]+)<', answer.text).group(1)
    assert accounts.user_for_token(new_token) == "bob" and accounts.user_for_token(old_token) is None
    answer = logged_in.post("/accounts/alice/revoke", data={"csrf": csrf}, follow_redirects=False)
    assert answer.status_code == 303 and logged_in.get("/api/clusters").status_code == 401


# ---- issue 24's small frictions: the page asked for, module docs as text ----------------------------------

def test_login_returns_to_the_page_asked_for_and_never_to_another_site(app) -> None:
    from sec_wrapper.web.pages.login import local_page

    client = TestClient(app)
    asked = client.get("/operations?status=failed", follow_redirects=False)
    assert asked.status_code == 303 and asked.headers["location"] == "/login?next=%2Foperations%3Fstatus%3Dfailed"
    page = client.get(asked.headers["location"]).text
    assert 'name="next" value="/operations?status=failed"' in page
    wrong = client.post("/login", data={"csrf": _csrf(page), "username": "alice", "password": "nope",
                                     "next": "/operations?status=failed"})
    assert wrong.status_code == 401 and 'value="alice"' in wrong.text
    assert 'value="/operations?status=failed"' in wrong.text
    answer = client.post("/login", data={"csrf": _csrf(wrong.text), "username": "alice", "password": PASSWORD,
                                      "next": "/operations?status=failed"}, follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"] == "/operations?status=failed"
    for elsewhere in ("//evil.example/x", "https://evil.example/", "/\\evil.example", "evil", "", "/a\r\nb"):
        assert local_page(elsewhere) == "/", elsewhere
    assert local_page("/sites/prod.teststudio.com/backups?check=1") == "/sites/prod.teststudio.com/backups?check=1"


def test_module_documentation_markup_is_shown_as_text_never_as_html() -> None:
    from sec_wrapper.web.rendering import doc_markup, doc_text

    line = "O(state=on) writes C(<site_dir>/tmp); see M(fpt.sec.site_lock), I(never) B(twice) L(docs,https://x.y)"
    assert str(doc_markup(line)) == ("<code>state=on</code> writes <code>&lt;site_dir&gt;/tmp</code>; see "
                                     "<code>fpt.sec.site_lock</code>, <em>never</em> <b>twice</b> docs")
    assert doc_text(line) == "state=on writes <site_dir>/tmp; see fpt.sec.site_lock, never twice docs"
    assert "<script>" not in str(doc_markup("C(<script>alert(1)</script>)"))


def _running(op_id: str, window: bool) -> None:
    history.write_record(op_id, {"id": op_id, "operation": "upgrade", "status": "running", "user": "bob",
                                 "started": history.now_iso(), "pid": os.getpid(),
                                 "pid_start": history.process_start(os.getpid()), "message": ""})
    events = history.operation_dir(op_id) / "job_events"
    events.mkdir()
    tasks = ["Lock the site", *(["Put the site into maintenance"] if window else [])]
    for n, task in enumerate(tasks, 1):
        action = "fpt.sec.maintenance" if "maintenance" in task else "fpt.sec.site_lock"
        (events / f"{n}-x.json").write_text(json.dumps({"counter": n, "event": "playbook_on_task_start",
                                                        "event_data": {"task": task, "task_action": action,
                                                                       "resolved_action": action}}))


def test_cancel_is_asked_before_the_window_and_refused_inside_it(logged_in: TestClient) -> None:
    before, inside = history.new_operation_id(), history.new_operation_id()
    _running(before, window=False)
    _running(inside, window=True)
    page = logged_in.get(f"/operations/{before}").text
    assert 'id="cancel"' in page
    csrf = _csrf(page)
    answer = logged_in.post(f"/operations/{before}/cancel", data={"csrf": csrf}, follow_redirects=False)
    assert answer.status_code == 303
    assert history.cancel_request(before)["by"] == "alice"
    answer = logged_in.post(f"/operations/{inside}/cancel", data={"csrf": csrf})
    assert answer.status_code == 409 and "inside its window" in answer.text
    assert "Put the site into maintenance" in answer.text
    assert history.cancel_request(inside) is None
    answer = logged_in.post(f"/api/operations/{inside}/cancel", headers={"X-CSRF-Token": csrf})
    assert answer.status_code == 409 and "inside its window" in answer.json()["error"]


# ---- schedules and metrics (issue 27) -----------------------------------------------------------------

def test_the_schedules_page_adds_pauses_and_removes_with_the_clis_rules(logged_in: TestClient) -> None:
    _stored_site()
    page = logged_in.get("/schedules")
    assert page.status_code == 200 and "no schedule yet" in page.text
    form = {"csrf": _csrf(page.text), "name": "nightly", "site": SITE, "operation": "backup",
            "rrule": "FREQ=DAILY;BYHOUR=2", "timezone": "Europe/Paris", "keep": "7"}
    refused = logged_in.post("/schedules", data={**form, "rrule": "FREQ=WHENEVER"}, follow_redirects=False)
    assert refused.status_code == 400 and "does not parse" in refused.text
    assert logged_in.post("/schedules", data=form, follow_redirects=False).status_code == 303
    listed = logged_in.get("/schedules").text
    assert "nightly" in listed and "Europe/Paris" in listed and "Pause" in listed
    site_page = logged_in.get(f"/sites/{SITE}").text
    assert 'id="site-schedules"' in site_page and "FREQ=DAILY;BYHOUR=2" in site_page
    csrf = _csrf(listed)
    assert logged_in.post("/schedules/nightly/pause", data={"csrf": csrf}, follow_redirects=False).status_code == 303
    assert "Resume" in logged_in.get("/schedules").text
    assert logged_in.post("/schedules/nightly/remove", data={"csrf": csrf}, follow_redirects=False).status_code == 303
    assert "no schedule yet" in logged_in.get("/schedules").text


def test_metrics_answer_in_prometheus_text_to_the_apis_token(app) -> None:
    from prometheus_client.parser import text_string_to_metric_families

    token = accounts.new_token("alice")
    client = TestClient(app)
    assert client.get("/metrics").status_code == 401
    answer = client.get("/metrics", headers={"Authorization": f"Bearer {token}"})
    assert answer.status_code == 200 and answer.headers["content-type"].startswith("text/plain")
    names = {family.name for family in text_string_to_metric_families(answer.text)}
    assert {"sec_backup_last_success_timestamp_seconds", "sec_operations", "sec_schedule_next_run_timestamp_seconds",
            "sec_site_up", "sec_host_free_bytes", "sec_drill_last_restore_seconds"} <= names
