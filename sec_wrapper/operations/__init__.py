"""The operation service: the one layer under the CLI, the console and the scheduler that checks an
operation's options, starts it (in-process, or detached) and reads it back.

- `spec`: what an operation is (typed options, confirmation) and a request for one;
- `site_work`, `pairs`, `clusters`: each operation's checks, extra vars and result document;
- `service`: prepare, run, start detached, wait; `worker`: the detached process;
- `reading`: the history, one operation's document (result included), its log, a settled outcome.
"""

from sec_wrapper.operations.spec import ConfirmationNeeded, OperationRequest, OperationSpec, Option, Prepared

__all__ = ["ConfirmationNeeded", "OperationRequest", "OperationSpec", "Option", "Prepared"]
