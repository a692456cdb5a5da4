"""The reference site's application process: stands in for the Rails app behind Apache.

It answers `/status` with the release it booted from, the schema version and the event count, all read
live from the site's database with database.yml's credentials. Like Passenger, it reloads (re-reads the
release `current` points at and the runtime settings) when `tmp/restart.txt` is touched.
Run: python -m sec_wrapper.sandbox.site_app --site-dir DIR --name NAME --port PORT
"""

from __future__ import annotations

import argparse
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import psycopg
import yaml


class SiteApp:
    def __init__(self, site_dir: Path, name: str) -> None:
        self.site_dir = site_dir
        self.name = name
        self._lock = threading.Lock()
        self._restart_mtime: float | None = None
        self.boot()

    def boot(self) -> None:
        release = (self.site_dir / "current").resolve()
        self.version = (release / "VERSION").read_text().strip()
        self.release = release.name
        db = yaml.safe_load((self.site_dir / "shared/config/database.yml").read_text())["production"]
        self.db = {"host": db["host"], "port": db["port"], "dbname": db["database"], "user": db["username"],
                   "password": str(db["password"])}
        # Until sec's first redeploy writes runtime.json, the application reads the persisted settings
        # (as the vendor's application did).
        runtime = self.site_dir / "shared/config/runtime.json"
        persisted = self.site_dir / "shared/config/site_settings.json"
        source = runtime if runtime.exists() else persisted
        self.settings = json.loads(source.read_text()) if source.exists() else {}
        self._restart_mtime = self._restart_stamp()

    def _restart_stamp(self) -> float | None:
        try:
            return (self.site_dir / "tmp/restart.txt").stat().st_mtime
        except FileNotFoundError:
            return None

    def maybe_reload(self) -> None:
        with self._lock:
            if self._restart_stamp() != self._restart_mtime:
                self.boot()

    def status(self, light: bool = False) -> dict:
        """The site's health as JSON. ``light`` (``/status?light=1``) leaves out the exact event count, a
        scan of the biggest table: what a watcher polling every 100 ms asks, so that it does not load the
        database it watches (a benchmark's 10 GB table would be scanned ten times a second)."""
        with psycopg.connect(connect_timeout=5, **self.db) as conn:
            schema = conn.execute("SELECT max(version) FROM schema_migrations").fetchone()[0]
            events = None if light else conn.execute("SELECT count(*) FROM event_log_entries").fetchone()[0]
        return {"site": self.name, "version": self.version, "schema_version": schema, "events": events,
                "site_url": self.settings.get("site_url"), "pid": os.getpid()}


def make_handler(app: SiteApp) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
            app.maybe_reload()
            if self.path.startswith("/status"):
                try:
                    light = "light=1" in self.path.partition("?")[2]
                    self._send(200, "application/json", json.dumps(app.status(light)).encode())
                except Exception as exc:  # the health check must see a database failure as a 500
                    self._send(500, "application/json", json.dumps({"error": str(exc)}).encode())
                return
            body = f"<html><body>{app.name} {app.version}</body></html>\n".encode()
            self._send(200, "text/html", body)

        def _send(self, code: int, ctype: str, body: bytes) -> None:
            self.send_response(code)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # noqa: A002
            pass  # Apache's access log is the one that counts

    return Handler


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--site-dir", required=True, type=Path)
    parser.add_argument("--name", required=True)
    parser.add_argument("--port", required=True, type=int)
    parser.add_argument("--address", default="127.0.0.1")
    args = parser.parse_args()
    app = SiteApp(args.site_dir, args.name)
    server = ThreadingHTTPServer((args.address, args.port), make_handler(app))
    server.daemon_threads = True
    server.serve_forever()


if __name__ == "__main__":
    main()
