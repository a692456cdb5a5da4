"""What counts as a secret, once: the store refuses them, the operation record and artifacts drop them."""

from __future__ import annotations

import re
from typing import Any

# Over-broad on purpose: dropping a harmless `key_file` from a record costs nothing, keeping a password does.
_SECRET_NAME = re.compile(r"passw|passphrase|^pass$|_pass$|secret|token|key|credential|auth|cookie|private",
                          re.IGNORECASE)
_SECRET_VALUE = re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----|PRIVATE KEY")


def is_secret_name(name: str) -> bool:
    return bool(_SECRET_NAME.search(name))


def is_secret_value(value: Any) -> bool:
    return isinstance(value, str) and bool(_SECRET_VALUE.search(value))


# Names sec's own result documents use for what is no secret: a host's stored key's *name* (keys/<cluster>/
# <host>, never its content), a setting's name in a list of changes, a settings key about password rules.
RESULT_NAMES = frozenset({"key", "password_min_length"})


def scrub(data: Any, keep: frozenset[str] = frozenset()) -> Any:
    """A copy of `data` without secret-looking keys (but those in `keep`) or key material, at any depth."""
    if isinstance(data, dict):
        return {k: scrub(v, keep) for k, v in data.items()
                if (str(k) in keep or not is_secret_name(str(k))) and not is_secret_value(v)}
    if isinstance(data, (list, tuple)):
        return [scrub(v, keep) for v in data if not is_secret_value(v)]
    return data


def find_secrets(data: Any, where: str = "") -> list[str]:
    """Dotted paths of the secret-looking entries in `data` (empty when clean)."""
    found: list[str] = []
    if isinstance(data, dict):
        for k, v in data.items():
            path = f"{where}.{k}" if where else str(k)
            if is_secret_name(str(k)) and v not in (None, "", {}, []):
                found.append(path)
            elif is_secret_value(v):
                found.append(path)
            else:
                found.extend(find_secrets(v, path))
    elif isinstance(data, (list, tuple)):
        for i, v in enumerate(data):
            found.extend(find_secrets(v, f"{where}[{i}]"))
    return found


# In free text (an error line that leaves the studio in an alert): `password=...`, `PGPASSWORD=...`,
# `"password": "..."`, a URL's `user:password@`.
_SECRET_IN_TEXT = [
    (re.compile(r"(?i)\b([\w-]*(?:passw|secret|token|passphrase)[\w-]*)(\s*[=:]\s*|\"\s*:\s*\")([^\s\"',;&]+)"),
     r"\1\2***"),
    (re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://[^\s:/@]+):[^\s@/]+@"), r"\1:***@"),
]


def mask_text(text: str) -> str:
    """`text` with what looks like a password or token replaced by ***."""
    for pattern, replacement in _SECRET_IN_TEXT:
        text = pattern.sub(replacement, text)
    return _SECRET_VALUE.sub("***", text)
