"""Watching a site from outside while an operation runs: GET /status through its real vhost, in a thread,
every `poll` seconds. What the tests and the benchmarks measure a maintenance window with."""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request


def status(port: int, site: str, address: str = "127.0.0.1") -> tuple[int, str | None]:
    """(HTTP status, the version the app says it runs) of GET /status through the vhost; -1 if nothing answers."""
    request = urllib.request.Request(f"http://{address}:{port}/status?light=1", headers={"Host": site})
    try:
        with urllib.request.urlopen(request, timeout=5) as response:
            return response.status, json.loads(response.read()).get("version")
    except urllib.error.HTTPError as err:
        return err.code, None
    except (urllib.error.URLError, OSError):
        return -1, None


class VhostWatch:
    """Samples (time, status, version) while entered; a settle pause at each end catches the edges."""

    def __init__(self, port: int, site: str, address: str = "127.0.0.1", poll: float = 0.05,
                 settle: float = 0.3) -> None:
        self.port, self.site, self.address, self.poll, self.settle = port, site, address, poll, settle
        self.samples: list[tuple[float, int, str | None]] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            self.samples.append((started, *status(self.port, self.site, self.address)))
            self._stop.wait(max(0.0, self.poll - (time.monotonic() - started)))

    def __enter__(self) -> VhostWatch:
        self._thread.start()
        time.sleep(self.settle)
        return self

    def __exit__(self, *exc: object) -> None:
        time.sleep(self.settle)
        self._stop.set()
        self._thread.join()

    def runs(self) -> list[tuple[int, str | None]]:
        """The samples compressed into runs of the same (status, version), in order."""
        out: list[tuple[int, str | None]] = []
        for _t, code, version in self.samples:
            if not out or out[-1] != (code, version):
                out.append((code, version))
        return out

    def window(self) -> dict:
        """How long the site did not answer 200: the first and last non-200 answers bound it from inside;
        one poll interval is added for the part between the last 200 and the first non-200 (and back)."""
        bad = [(t, code) for t, code, _v in self.samples if code != 200]
        if not bad:
            return {"seconds": 0.0, "statuses": []}
        return {"seconds": round(bad[-1][0] - bad[0][0] + self.poll, 2), "statuses": sorted({c for _t, c in bad})}
