"""Version parsing and the enforced upgrade path (module_utils/versions.py)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from ansible_collections.fpt.sec.plugins.module_utils import versions
from ansible_collections.fpt.sec.plugins.module_utils.versions import (
    UpgradePathError,
    Version,
    upgrade_path,
)

# 8.0 .. 8.3 with several patches, 9.0 .. 9.2, one 10.0.
SERIES = [
    "8.0.0", "8.0.1",
    "8.1.0", "8.1.1", "8.1.7",
    "8.2.0", "8.2.5", "8.2.3",
    "8.3.0", "8.3.2",
    "9.0.0", "9.0.4",
    "9.1.0",
    "9.2.0", "9.2.1",
    "10.0.0",
]


def test_module_parses_as_python_3_8() -> None:
    # Runs on managed hosts; the venv is 3.11, so guard the syntax explicitly.
    ast.parse(Path(versions.__file__).read_text(), feature_version=(3, 8))


class TestVersion:
    def test_parts_and_round_trip(self) -> None:
        v = Version("8.10.2")
        assert (v.major, v.minor, v.patch) == (8, 10, 2)
        assert str(v) == "8.10.2"
        assert repr(v) == "Version('8.10.2')"
        assert v.minor_key == (8, 10)

    def test_numeric_order_not_lexical(self) -> None:
        assert Version("8.10.0") > Version("8.9.9")
        assert Version("10.0.0") > Version("9.99.99")
        assert Version("8.1.2") < Version("8.1.10")
        assert sorted(Version(t) for t in ["9.0.0", "8.10.0", "8.2.1", "8.2.0"]) == [
            Version("8.2.0"), Version("8.2.1"), Version("8.10.0"), Version("9.0.0"),
        ]

    def test_equality_and_hash(self) -> None:
        assert Version("8.1.2") == Version("8.1.2")
        assert Version("8.1.2") != Version("8.1.3")
        assert len({Version("8.1.2"), Version("8.1.2"), Version("8.1.3")}) == 2
        assert Version("8.1.2") != "8.1.2"

    def test_immutable(self) -> None:
        with pytest.raises(AttributeError):
            Version("8.1.2").major = 9  # type: ignore[misc]

    @pytest.mark.parametrize(
        "text",
        ["", "8", "8.1", "8.1.2.3", "v8.1.2", "8.1.x", "8.1.2-rc1", "08.1.2", "8.01.2", " 8.1.2",
         "8.1.2\n", "-1.0.0", "8..2", "\u0668.1.2", "8.1.2 "],
    )
    def test_rejects_anything_but_major_minor_patch(self, text: str) -> None:
        with pytest.raises(ValueError, match="MAJOR.MINOR.PATCH") as info:
            Version(text)
        assert repr(text) in str(info.value)
        assert "\n" not in str(info.value)

    def test_rejects_non_string(self) -> None:
        with pytest.raises(ValueError, match="MAJOR.MINOR.PATCH"):
            Version(812)  # type: ignore[arg-type]


class TestPath:
    def test_patch_only_upgrade_is_one_step_and_jumps_patches(self) -> None:
        assert upgrade_path("8.1.0", "8.1.7", SERIES) == ["8.1.7"]
        # The target is exact even when it is not the highest patch of its minor.
        assert upgrade_path("8.2.0", "8.2.3", SERIES) == ["8.2.3"]

    def test_next_minor_is_direct(self) -> None:
        assert upgrade_path("8.1.7", "8.2.5", SERIES) == ["8.2.5"]

    def test_minors_in_sequence_with_highest_patch(self) -> None:
        # 8.2 has 8.2.0, 8.2.5 and 8.2.3 (unsorted input): 8.2.5 is used.
        assert upgrade_path("8.0.1", "8.3.0", SERIES) == ["8.1.7", "8.2.5", "8.3.0"]

    def test_current_patch_level_does_not_matter(self) -> None:
        assert upgrade_path("8.1.0", "8.3.2", SERIES) == upgrade_path("8.1.7", "8.3.2", SERIES)

    def test_target_is_exact_not_highest_patch(self) -> None:
        assert upgrade_path("8.1.0", "8.3.0", SERIES) == ["8.2.5", "8.3.0"]

    def test_major_from_last_minor_of_previous_major(self) -> None:
        assert upgrade_path("8.3.2", "9.0.0", SERIES) == ["9.0.0"]
        assert upgrade_path("8.3.0", "9.0.4", SERIES) == ["9.0.4"]

    def test_major_goes_through_the_last_minor_first(self) -> None:
        assert upgrade_path("8.1.0", "9.0.0", SERIES) == ["8.2.5", "8.3.2", "9.0.0"]

    def test_brief_example(self) -> None:
        available = ["8.0.0", "8.1.0", "8.2.0", "8.3.0", "9.0.0"]
        assert upgrade_path("8.1.0", "9.0.0", available) == ["8.2.0", "8.3.0", "9.0.0"]

    def test_major_then_minors_of_the_new_major(self) -> None:
        assert upgrade_path("8.2.0", "9.2.1", SERIES) == ["8.3.2", "9.0.4", "9.1.0", "9.2.1"]

    def test_two_majors(self) -> None:
        assert upgrade_path("8.3.2", "10.0.0", SERIES) == ["9.0.4", "9.1.0", "9.2.1", "10.0.0"]

    def test_current_minor_beyond_the_folder_counts_as_last_minor(self) -> None:
        # The site runs 8.5, which the folder no longer holds: 8.5 is at least the last 8.x minor.
        assert upgrade_path("8.5.1", "9.0.0", ["8.0.0", "8.3.0", "9.0.0"]) == ["9.0.0"]

    def test_duplicates_in_available_are_harmless(self) -> None:
        assert upgrade_path("8.1.0", "8.2.0", ["8.2.0", "8.2.0"]) == ["8.2.0"]


class TestPathErrors:
    def test_same_version(self) -> None:
        with pytest.raises(UpgradePathError, match="already at 8.1.0") as info:
            upgrade_path("8.1.0", "8.1.0", SERIES)
        assert info.value.missing == []

    @pytest.mark.parametrize(("current", "target"), [("8.2.5", "8.2.3"), ("8.2.0", "8.1.7"), ("9.0.0", "8.3.2")])
    def test_downgrade(self, current: str, target: str) -> None:
        with pytest.raises(UpgradePathError, match="downgrades are refused") as info:
            upgrade_path(current, target, SERIES)
        assert info.value.missing == []

    def test_target_not_available(self) -> None:
        with pytest.raises(UpgradePathError) as info:
            upgrade_path("8.1.0", "8.2.9", SERIES)
        message = str(info.value)
        assert "release 8.2.9 is not in releases/" in message
        assert message.endswith("add release 8.2.9 to releases/")
        assert info.value.missing == ["8.2.9"]

    def test_target_of_an_unknown_minor_not_available(self) -> None:
        with pytest.raises(UpgradePathError) as info:
            upgrade_path("9.2.0", "9.3.0", SERIES)
        assert info.value.missing == ["9.3.0"]

    def test_missing_intermediate_minor_lists_exactly_what_to_add(self) -> None:
        available = ["8.1.0", "8.3.0"]
        with pytest.raises(UpgradePathError) as info:
            upgrade_path("8.1.0", "8.3.0", available)
        assert str(info.value) == (
            "cannot upgrade 8.1.0 to 8.3.0: no release for intermediate minor 8.2; "
            "add release 8.2.x (any patch) to releases/"
        )
        assert info.value.missing == ["8.2.x"]

    def test_every_missing_step_is_listed_in_path_order(self) -> None:
        # 8.2 and 9.0 are missing; the target 9.1.0 is missing as well.
        available = ["8.1.0", "8.3.0", "9.2.0"]
        with pytest.raises(UpgradePathError) as info:
            upgrade_path("8.1.0", "9.1.0", available)
        assert info.value.missing == ["8.2.x", "9.0.x", "9.1.0"]
        message = str(info.value)
        assert "add releases 8.2.x (any patch), 9.0.x (any patch), 9.1.0 to releases/" in message
        assert "\n" not in message

    def test_missing_first_minor_of_the_new_major(self) -> None:
        with pytest.raises(UpgradePathError) as info:
            upgrade_path("8.3.0", "9.1.0", ["8.3.0", "9.1.0"])
        assert info.value.missing == ["9.0.x"]

    def test_gap_inside_the_previous_major_before_the_boundary(self) -> None:
        # The brief's series without 8.2: the last minor is still 8.3, so 8.2 is required.
        with pytest.raises(UpgradePathError) as info:
            upgrade_path("8.1.0", "9.0.0", ["8.0.0", "8.1.0", "8.3.0", "9.0.0"])
        assert info.value.missing == ["8.2.x"]
        assert "add release 8.2.x (any patch) to releases/" in str(info.value)

    def test_whole_intermediate_major_missing(self) -> None:
        with pytest.raises(UpgradePathError) as info:
            upgrade_path("7.4.0", "9.0.0", ["7.4.0", "9.0.0"])
        assert info.value.missing == ["8.x"]
        assert "8.0.x through the last 8.y minor" in str(info.value)

    @pytest.mark.parametrize(
        ("current", "target", "available", "bad"),
        [("8.1", "8.2.0", ["8.2.0"], "'8.1'"), ("8.1.0", "latest", ["8.2.0"], "'latest'"),
         ("8.1.0", "8.2.0", ["8.2.0", "8.2.0.1"], "'8.2.0.1'")],
    )
    def test_invalid_versions_are_path_errors_naming_the_value(
        self, current: str, target: str, available: list[str], bad: str
    ) -> None:
        with pytest.raises(UpgradePathError, match="MAJOR.MINOR.PATCH") as info:
            upgrade_path(current, target, available)
        assert bad in str(info.value)

    def test_path_error_is_a_value_error(self) -> None:
        assert issubclass(UpgradePathError, ValueError)
