# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""One GET of a site through its Apache virtual host, and what makes the answer unhealthy: shared by
fpt.sec.site_health (a check that fails) and fpt.sec.site_state (a read that reports).

Pure standard library, Python 3.8 compatible: this file ships to managed hosts.
"""

from __future__ import annotations

import json
import re
import ssl
import time
import urllib.error
import urllib.request

__all__ = ["fetch", "first_line", "parse_json", "problem"]

MAX_BODY = 1024 * 1024


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    # A redirect would leave the vhost under test (and the Host header would not follow it).
    def redirect_request(self, req, fp, code, msg, headers, newurl):
        return None


def first_line(text: str, limit: int = 200) -> str:
    """The first line of the answer with text in it: HTML tags dropped, so a 503 page gives its heading."""
    plain = re.sub(r"<(script|style|title|head)\b.*?</\1\s*>", " ", text, flags=re.S | re.I)
    plain = re.sub(r"<[^>]*>", "\n", plain)
    for line in plain.splitlines():
        line = " ".join(line.split())
        if line:
            return line[:limit]
    return ""


def fetch(url: str, host_header: str | None, timeout: float, validate_certs: bool) -> dict:
    """One GET: {status, text, location, error, elapsed}."""
    headers = {"Accept": "application/json", "User-Agent": "fpt.sec.site_health"}
    if host_header:
        headers["Host"] = host_header
    handlers: list = [_NoRedirect()]
    if url.lower().startswith("https:"):
        context = ssl.create_default_context()
        if not validate_certs:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        handlers.append(urllib.request.HTTPSHandler(context=context))
    opener = urllib.request.build_opener(*handlers)
    request = urllib.request.Request(url, headers=headers, method="GET")
    started = time.monotonic()
    answer = {"status": None, "text": "", "location": None, "error": None}
    try:
        with opener.open(request, timeout=timeout) as response:
            answer["status"] = response.status
            answer["text"] = response.read(MAX_BODY).decode("utf-8", "replace")
    except urllib.error.HTTPError as err:
        answer["status"] = err.code
        answer["location"] = err.headers.get("Location") if err.headers else None
        try:
            answer["text"] = err.read(MAX_BODY).decode("utf-8", "replace")
        except OSError:
            pass
    except (urllib.error.URLError, OSError, ValueError) as err:
        reason = getattr(err, "reason", err)
        answer["error"] = str(reason)
    answer["elapsed"] = round(time.monotonic() - started, 3)
    return answer


def parse_json(text: str) -> dict | None:
    try:
        body = json.loads(text)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def problem(answer: dict, body: dict | None, expect_status: int, expect_version: str | None) -> str | None:
    """Why the answer is unhealthy, in one line; None when healthy."""
    if answer["error"] is not None:
        return f"no answer: {answer['error']}"
    if answer["status"] != expect_status:
        text = f"answered {answer['status']} (expected {expect_status})"
        if answer["location"]:
            text += f", redirecting to {answer['location']}"
        line = first_line(answer["text"])
        return text + (f": {line}" if line else "")
    if expect_version is not None:
        version = (body or {}).get("version")
        if version != expect_version:
            return f"runs version {version}, expected {expect_version}"
    return None
