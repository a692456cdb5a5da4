# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Release versions and the enforced upgrade path.

Pure standard library: this file is shipped to managed hosts with the modules that import it, so it keeps
Python 3.8 compatible syntax.

The rules, as the vendor enforces them:

* patch releases never change the schema, so any number of them may be jumped;
* minor releases go in sequence, one minor at a time;
* a major is entered only from the last minor of the previous major, and always at its minor 0;
* every intermediate step uses the highest patch present in the releases folder for that minor;
* the target itself must be present, exactly.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable

# ASCII digits only ("\d" would accept other scripts' digits); no leading zeros, so that a version has
# exactly one spelling and file names, manifests and VERSION files compare as strings too.
_VERSION_RE = re.compile(r"(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)\.(0|[1-9][0-9]*)")


@functools.total_ordering
class Version:
    """A MAJOR.MINOR.PATCH release version: ``Version("8.1.2")``.

    Immutable, hashable, ordered numerically (``Version("8.10.0") > Version("8.9.3")``), and ``str()``
    gives back the canonical spelling.
    """

    __slots__ = ("major", "minor", "patch")

    major: int
    minor: int
    patch: int

    def __init__(self, text: str) -> None:
        if isinstance(text, Version):
            parts = (text.major, text.minor, text.patch)
        else:
            if not isinstance(text, str):
                raise ValueError(f"invalid version {text!r}: expected a string MAJOR.MINOR.PATCH")
            match = _VERSION_RE.fullmatch(text)
            if match is None:
                raise ValueError(
                    f"invalid version {text!r}: expected MAJOR.MINOR.PATCH, three non-negative integers "
                    "without leading zeros, such as 8.1.2"
                )
            parts = (int(match.group(1)), int(match.group(2)), int(match.group(3)))
        # __slots__ + object.__setattr__ keeps instances read-only after construction.
        object.__setattr__(self, "major", parts[0])
        object.__setattr__(self, "minor", parts[1])
        object.__setattr__(self, "patch", parts[2])

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Version is immutable")

    @property
    def key(self) -> tuple[int, int, int]:
        return (self.major, self.minor, self.patch)

    @property
    def minor_key(self) -> tuple[int, int]:
        """(major, minor): the unit the path moves by."""
        return (self.major, self.minor)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self.key == other.key

    def __lt__(self, other: object) -> bool:
        if not isinstance(other, Version):
            return NotImplemented
        return self.key < other.key

    def __hash__(self) -> int:
        return hash(self.key)

    def __str__(self) -> str:
        return f"{self.major}.{self.minor}.{self.patch}"

    def __repr__(self) -> str:
        return f"Version({str(self)!r})"


class UpgradePathError(ValueError):
    """No valid upgrade path. ``str()`` is one line meant for the operator.

    ``missing`` lists what to add to releases/, in path order: exact versions ("9.0.0") or a minor with
    any patch ("8.2.x"); empty when adding releases cannot help (downgrade, same version, bad input).
    """

    def __init__(self, message: str, missing: Iterable[str] = ()) -> None:
        super().__init__(message)
        self.missing: list[str] = list(missing)


def parse_versions(texts: Iterable[str]) -> list[Version]:
    """Parse and sort ascending, dropping duplicates; a bad entry raises ValueError naming it."""
    return sorted({Version(text) for text in texts})


def highest_patches(available: Iterable[Version]) -> dict[tuple[int, int], Version]:
    """Map (major, minor) to the highest patch present for it."""
    best: dict[tuple[int, int], Version] = {}
    for version in available:
        known = best.get(version.minor_key)
        if known is None or version > known:
            best[version.minor_key] = version
    return best


def _last_minor(major: int, current: Version, present: dict[tuple[int, int], Version]) -> int:
    """Last minor of ``major``, as far as anything we hold can tell; -1 when nothing can."""
    minors = [minor for (maj, minor) in present if maj == major]
    if current.major == major:
        # The site already runs this minor, so the major has at least that many minors even when the
        # releases folder no longer holds them.
        minors.append(current.minor)
    return max(minors) if minors else -1


def _gap_label(item: str) -> str:
    if item.count(".") == 1:
        return f"major {item[:-2]}"
    return f"minor {item[:-2]}"


def _add_label(item: str) -> str:
    if item.count(".") == 1:
        major = item[:-2]
        return f"{major}.0.x through the last {major}.y minor (any patch of each)"
    if item.endswith(".x"):
        return f"{item} (any patch)"
    return item


def upgrade_path(current: str, target: str, available: list[str]) -> list[str]:
    """Return the versions to install, in order, to go from ``current`` to ``target``.

    The last element is ``target``; a patch-only upgrade (same major and minor) is the single step
    ``[target]``. Intermediate steps are one per minor, each the highest patch present for that minor.

    "Last minor of the previous major" is read from the releases folder, because nothing else says how
    many minors a major had: it is the highest minor of that major present in ``available`` (or the
    site's current minor, when that is higher). Consequences of that choice:

    * a gap *inside* a major is always caught: with 8.1 and 8.3 present, 8.2 is required and reported;
    * a major with no release at all in the folder is reported as missing: we know it starts at minor 0
      but not where it ends, so the message asks for its releases "through its last minor";
    * a folder that lacks the *newest* minors of a major cannot be told apart from a major that really
      ended earlier; the folder is expected to hold each needed major up to its final minor. This is the
      one thing the path cannot check, and why ``sec releases list`` shows what the folder holds.

    Example: with 8.0.0, 8.1.0, 8.2.0, 8.2.3, 8.3.0 and 9.0.0 available, 8.1.0 -> 9.0.0 is
    ``["8.2.3", "8.3.0", "9.0.0"]``.

    Raises UpgradePathError (a ValueError) with a one-line message for: an unparsable version, a target
    equal to or older than the current version, a target not in ``available``, or missing intermediate
    minors; the last two list every release to add, in path order.
    """
    try:
        cur = Version(current)
        tgt = Version(target)
    except ValueError as exc:
        raise UpgradePathError(str(exc)) from None
    try:
        releases = parse_versions(available)
    except ValueError as exc:
        raise UpgradePathError(f"releases: {exc}") from None

    if tgt == cur:
        raise UpgradePathError(f"the site is already at {cur}: nothing to upgrade")
    if tgt < cur:
        raise UpgradePathError(f"{tgt} is older than the current {cur}: downgrades are refused")

    present = highest_patches(releases)
    steps: list[str] = []
    # What to add, in path order: "8.2.x" (a minor, any patch), "8.x" (a whole major whose extent we
    # cannot know), or an exact target "9.0.0".
    missing: list[str] = []

    if tgt.minor_key != cur.minor_key:
        for major in range(cur.major, tgt.major + 1):
            first = cur.minor + 1 if major == cur.major else 0
            if major == tgt.major:
                last = tgt.minor - 1
            else:
                last = _last_minor(major, cur, present)
                if last < 0:
                    missing.append(f"{major}.x")
                    continue
            for minor in range(first, last + 1):
                best = present.get((major, minor))
                if best is None:
                    missing.append(f"{major}.{minor}.x")
                else:
                    steps.append(str(best))

    reasons: list[str] = []
    gaps = list(missing)
    if tgt not in releases:
        reasons.append(f"release {tgt} is not in releases/")
        missing.append(str(tgt))
    if gaps:
        labels = [_gap_label(m) for m in gaps]
        reasons.append(f"no release for intermediate {', '.join(labels)}")

    if missing:
        items = [_add_label(m) for m in missing]
        plural = "s" if len(items) > 1 else ""
        raise UpgradePathError(
            f"cannot upgrade {cur} to {tgt}: {'; '.join(reasons)}; "
            f"add release{plural} {', '.join(items)} to releases/",
            missing,
        )

    steps.append(str(tgt))
    return steps
