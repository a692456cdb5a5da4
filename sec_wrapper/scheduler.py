"""`sec serve`'s scheduler thread: the due schedules (sec_wrapper/schedules.py) and the alerts' check
(sec_wrapper/alerts.py), every few seconds, in the console's own process."""

from __future__ import annotations

import threading
from collections.abc import Callable

from sec_wrapper import alerts, history
from sec_wrapper.operations import service
from sec_wrapper.operations.spec import OperationRequest
from sec_wrapper.schedules import Schedule, run_due


class Scheduler:
    """`sec serve`'s scheduler: every `every` seconds, the due runs (started detached, as the console starts
    operations, so they outlive the console) and the alerts' check."""

    def __init__(self, every: float = 30.0, start: Callable[[Schedule, OperationRequest], str] | None = None) -> None:
        self.every = every
        self.start_run = start
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.last_error: str | None = None

    def start(self) -> None:
        self._thread = threading.Thread(target=self._loop, name="sec-scheduler", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()

    def _loop(self) -> None:
        start = self.start_run or (lambda schedule, request: service.start_detached(request, schedule.user))
        while not self._stop.is_set():
            try:
                run_due(start)
                alerts.check_and_send()
                self.last_error = None
            except Exception as exc:  # the loop outlives any one failure; the next turn tries again
                self.last_error = f"{type(exc).__name__}: {history.one_line(exc)}"
            self._stop.wait(self.every)
