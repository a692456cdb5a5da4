"""What an operation is: its options (typed, with their help), who must confirm it, and what running it needs.

One spec per operation serves every front end: the CLI builds its arguments from it, the console checks a
form or a JSON body against it, the scheduler gives it typed values. None of them spells an option twice.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sec_wrapper.errors import SecError
from sec_wrapper.operation_inputs import MAX_TEXT

if TYPE_CHECKING:
    from sec_wrapper.runner import OperationResult

_TRUE, _FALSE = {"true", "yes", "on", "1"}, {"false", "no", "off", "0", ""}


class ConfirmationNeeded(SecError):
    """Changing this data needs a confirmation the request lacks; each front end names its own fix (the CLI's
    --yes, the console's typed name)."""

    def __init__(self, what: str, name: str) -> None:
        super().__init__(f"{what}: confirm to go ahead")
        self.what, self.name = what, name


@dataclass(frozen=True)
class Option:
    """One option of an operation. `kind`: text, int, bool, choice, list (of text) or object (a JSON object)."""

    name: str
    kind: str = "text"
    help: str = ""
    required: bool = False
    positional: bool = False
    default: Any = None
    choices: tuple[str, ...] = ()
    minimum: int | None = None
    metavar: str | None = None

    def coerce(self, operation: str, value: Any) -> Any:
        """The value typed as the option says, or a SecError naming the option and the fix."""
        where = f"{operation}: {self.name.replace('_', '-')}"
        if self.kind == "bool":
            if isinstance(value, bool):
                return value
            word = str(value).strip().lower()
            if word in _TRUE | _FALSE:
                return word in _TRUE
            raise SecError(f"{where} {value!r}: give true or false")
        if isinstance(value, bool) or (self.kind != "object" and isinstance(value, dict)):
            raise SecError(f"{where}: give a single value")
        if self.kind == "list":
            values = value if isinstance(value, list) else [value]
            return [_text(where, v) for v in values]
        if self.kind == "object":
            if not isinstance(value, dict):
                raise SecError(f"{where}: give a JSON object")
            return value
        if isinstance(value, list):
            raise SecError(f"{where}: give a single value")
        text = _text(where, value)
        if self.kind == "int":
            try:
                number = int(text.strip())
            except ValueError:
                raise SecError(f"{where} {text!r}: give a whole number") from None
            if self.minimum is not None and number < self.minimum:
                raise SecError(f"{where} {number}: give {self.minimum} or more")
            return number
        if self.kind == "choice" and text not in self.choices:
            raise SecError(f"{where}: invalid choice: {text!r} (choose from {', '.join(self.choices)})")
        return text


def _text(where: str, value: Any) -> str:
    if value is None or isinstance(value, (dict, list, bool)):
        raise SecError(f"{where}: give a single value")
    text = str(value)
    if len(text) > MAX_TEXT:
        raise SecError(f"{where}: {len(text)} characters is more than an operation takes: give at most {MAX_TEXT}")
    if "\x00" in text:
        raise SecError(f"{where}: a NUL character is not a valid value")
    return text


@dataclass
class Prepared:
    """An operation checked and ready to run: everything `service.run` needs, nothing a front end adds."""

    spec: OperationSpec
    options: dict[str, Any]
    playbook: str
    inventory: dict[str, Any]
    extravars: dict[str, Any]
    arguments: dict[str, Any]  # recorded with the operation (secrets scrubbed by the runner)
    cluster: str | None
    site: str | None
    subject: str  # "backup on prod.teststudio.com": the start of a failure's one line
    context: dict[str, Any] = field(default_factory=dict)  # what `summarize` needs besides the run
    # Entered around the run; yields extra vars only known then (sync's forwarded SSH agent).
    environment: Callable[[], contextlib.AbstractContextManager[dict[str, Any]]] = \
        lambda: contextlib.nullcontext({})


@dataclass(frozen=True)
class OperationSpec:
    """An operation every front end starts the same way: its name is the CLI's, everywhere."""

    name: str
    summary: str
    options: tuple[Option, ...]
    prepare: Callable[[OperationRequest], Prepared]
    # The result document (the CLI's --json) from a run that ended; None when it says nothing.
    summarize: Callable[[Prepared, OperationResult], Any]
    # What to type to confirm: None (nothing), "production" (a production site's name), "target" (the
    # target's name, always: sync-db overwrites it).
    confirm: str | None = None
    site_scoped: bool = True  # takes a SITE (the console's site pages offer it)
    result_when_failed: bool = False  # a failed run still has a result worth keeping (sync-media's names)

    def option(self, name: str) -> Option | None:
        return next((o for o in self.options if o.name == name), None)

    def typed(self, given: Mapping[str, Any]) -> dict[str, Any]:
        """`given` checked and typed, defaults filled in; unknown and missing options are refused."""
        typed: dict[str, Any] = {}
        for name, value in given.items():
            option = self.option(name.replace("-", "_"))
            if option is None:
                raise SecError(f"{self.name} has no option {name!r}")
            if value is None or (value == "" and option.kind != "bool" and not option.required):
                continue
            typed[option.name] = option.coerce(self.name, value)
        for option in self.options:
            if option.name == "site":
                continue  # the request's own `site`, resolved by the operation
            if option.name not in typed:
                if option.required:
                    raise SecError(f"{self.name} needs {option.name.replace('_', '-')}")
                typed[option.name] = option.default
        return typed


@dataclass(frozen=True)
class OperationRequest:
    """What a front end asks for, typed: the operation's name, its site (or the cluster's name for cluster
    operations), its options, and whether the person confirmed (--yes, or the typed name)."""

    operation: str
    site: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    cluster: str | None = None
    confirmed: bool = False  # the CLI's --yes: confirms whatever needs it
    typed_name: str | None = None  # the console's confirmation: the name the person typed

    def confirms(self, name: str) -> bool:
        return self.confirmed or (self.typed_name is not None and self.typed_name.strip() == name)

    def to_json(self) -> dict[str, Any]:
        return {"operation": self.operation, "site": self.site, "options": dict(self.options),
                "cluster": self.cluster, "confirmed": self.confirmed, "typed_name": self.typed_name}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> OperationRequest:
        return cls(operation=str(data["operation"]), site=data.get("site"), options=dict(data.get("options") or {}),
                   cluster=data.get("cluster"), confirmed=bool(data.get("confirmed")),
                   typed_name=data.get("typed_name"))
