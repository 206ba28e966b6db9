"""Whatever the path or its bytes, loading a tier file ends in a Catalog or a CatalogError naming the file.

Nothing else escapes: no RecursionError from deep nesting, no crash in the YAML
library, no MemoryError or hang on a device or a pipe, no ValueError from a number
too long to print. Limits (docs/tier-file.md): 16 MB, nesting 32 deep, 100,000 values.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.tiers.conftest import VALID
from tests.tiers.hostile import HOSTILE, Hostile
from tiers.loader import (
    MAX_FILE_BYTES,
    MAX_NESTING,
    MAX_TENANTS,
    MAX_TIERS,
    MAX_VALUES,
    CatalogError,
    Problem,
    load_catalog,
    parse_catalog,
)
from tiers.source_file import read_tier_file

REPO = Path(__file__).resolve().parents[2]


def only_problem(path: Path | str) -> Problem:
    with pytest.raises(CatalogError) as raised:
        load_catalog(path)
    assert len(raised.value.problems) == 1, raised.value.problems
    problem = raised.value.problems[0]
    assert problem.file == os.fspath(path)
    return problem


def problems_of(load: Callable[[], object]) -> list[Problem] | None:
    """The problems in the CatalogError ``load`` raised, or None if it returned; other exceptions escape."""
    try:
        load()
    except CatalogError as error:
        return error.problems
    return None


def check_outcome(path: Path) -> None:
    """The loader's contract: a catalog, or a CatalogError whose every problem names the file and says why."""
    problems = problems_of(lambda: load_catalog(path))
    if problems is None:
        return
    assert problems
    for problem in problems:
        assert problem.file == str(path)
        assert len(problem.message) > 20
        assert len(problem.message) < 2_000, problem.message[:200]


@pytest.mark.parametrize("hostile", HOSTILE, ids=lambda hostile: hostile.name)
def test_each_hostile_input_is_one_problem_about_the_file(tmp_path: Path, hostile: Hostile) -> None:
    # GIVEN a path that is no tier file
    path = hostile.make(tmp_path)
    # WHEN it is loaded
    problem = only_problem(path)
    # THEN its one problem says what is wrong with it
    assert hostile.words in problem.message


@pytest.mark.parametrize("depth", [MAX_NESTING + 1, 600, 30_000])
@pytest.mark.parametrize("opener", ["[", "{a: ", "- "])
def test_nesting_past_the_cap_is_reported_on_the_line_it_goes_too_deep(depth: int, opener: str) -> None:
    # GIVEN lists or mappings nested past the cap, in flow or block style, after two lines of a tier file
    if opener == "- ":
        text = "tenants: {}\ntiers:\n" + "".join(f"{' ' * (2 * level)}-\n" for level in range(depth))
    else:
        closer = "]" if opener == "[" else "}"
        text = "tenants: {}\ntiers: " + opener * depth + "x" + closer * depth + "\n"
    # WHEN parsed
    with pytest.raises(CatalogError) as raised:
        parse_catalog(text, "deep.yaml")
    # THEN the one problem is the nesting, on the line of the first list or mapping past the cap
    [problem] = raised.value.problems
    assert f"nested more than {MAX_NESTING} levels deep" in problem.message
    # (block style: the file's mapping is level 1, the list on line 3 level 2, so level 33 is on line 34)
    expected_line = 2 if opener != "- " else 3 + MAX_NESTING - 1
    assert problem.line == expected_line


def test_nesting_at_the_cap_is_read_and_judged_by_the_tier_file_rules() -> None:
    # GIVEN a value nested exactly as deep as the cap allows (the root mapping is the first level)
    text = VALID + "  globex: " + "[" * (MAX_NESTING - 2) + "]" * (MAX_NESTING - 2) + "\n"
    # WHEN parsed
    with pytest.raises(CatalogError) as raised:
        parse_catalog(text, "t.yaml")
    # THEN it is read: the complaint is the tier file's, about that tenant
    assert [(problem.line, problem.path) for problem in raised.value.problems] == [(9, "tenants.globex")]


def test_a_file_over_the_size_cap_is_refused_before_it_is_read(tmp_path: Path) -> None:
    # GIVEN a (sparse) file of a terabyte: reading it would exhaust memory
    path = tmp_path / "terabyte.yaml"
    with path.open("wb") as file:
        file.truncate(2**40)
    # WHEN loaded
    problem = only_problem(path)
    # THEN its size alone refuses it, with the cap in the message
    assert problem.message.startswith("1,099,511,627,776 bytes, more than the 16 MB (16,777,216 bytes)")


def test_a_valid_file_exactly_at_the_size_cap_loads(tmp_path: Path) -> None:
    # GIVEN a valid tier file padded with a comment to exactly the cap
    head = VALID.encode() + b"# "
    path = tmp_path / "padded.yaml"
    path.write_bytes(head + b"x" * (MAX_FILE_BYTES - len(head) - 1) + b"\n")
    assert path.stat().st_size == MAX_FILE_BYTES
    # WHEN loaded THEN it is the catalog
    assert list(load_catalog(path).tenants) == ["acme"]
    # AND one more byte is refused
    with path.open("ab") as file:
        file.write(b"\n")
    assert "more than the 16 MB" in only_problem(path).message


def test_the_read_stops_past_the_cap_when_the_size_is_not_known_up_front() -> None:
    # GIVEN a file whose size the system reports as 0 although it has content (as /proc files do)
    # WHEN read with a cap below its length THEN the read stops there and says the file is too large
    with pytest.raises(CatalogError) as raised:
        read_tier_file("/proc/self/maps", max_bytes=64)
    assert raised.value.problems[0].message.startswith("larger than the ")


def test_a_socket_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "tiers.sock"
    with socket.socket(socket.AF_UNIX) as server:
        server.bind(str(path))
        assert "this is a socket, not a regular file" in only_problem(path).message


def test_the_largest_valid_file_is_within_every_cap(tmp_path: Path) -> None:
    # GIVEN a file at AWS's limits with every field written out, ids and names as long as allowed
    tiers = "".join(
        f"  tier-{index:03d}{'x' * 24}:\n    isolation: pooled\n    throttle: {{rate: 10.5, burst: 20}}\n"
        f"    quota: {{limit: 2147483647, period: MONTH, offset: 27}}\n"
        for index in range(MAX_TIERS)
    )
    tenants = "".join(
        f"  tenant-{index:05d}{'x' * 20}:\n    tier: tier-{index % MAX_TIERS:03d}{'x' * 24}\n"
        f"    name: {'N' * 128}\n    suspended: false\n"
        for index in range(MAX_TENANTS)
    )
    path = tmp_path / "largest.yaml"
    path.write_text(f"tiers:\n{tiers}tenants:\n{tenants}")
    # WHEN loaded THEN it is accepted, well under the size cap
    catalog = load_catalog(path)
    assert (len(catalog.tiers), len(catalog.tenants)) == (MAX_TIERS, MAX_TENANTS)
    assert path.stat().st_size < 3 * 2**20


def test_more_values_than_the_cap_is_one_problem() -> None:
    # GIVEN a tenants mapping with more entries than the value cap allows
    text = VALID + "".join(f"  t{index}: {{tier: basic}}\n" for index in range(MAX_VALUES // 4))
    # WHEN parsed THEN the one problem is the count, named on the line where the cap was passed
    with pytest.raises(CatalogError) as raised:
        parse_catalog(text, "t.yaml")
    [problem] = raised.value.problems
    assert problem.message.startswith(f"more than {MAX_VALUES:,} values")
    assert problem.line is not None
    assert 9 < problem.line < 9 + MAX_VALUES // 4


@pytest.mark.parametrize(
    ("value", "shown", "reason"),
    [
        (
            "1" + "0" * 4_999,
            "10000000000000000000… (5,000 characters)",
            "is too large: the maximum is 2,147,483,647",
        ),
        ("9" * 11, "99999999999", "is too large: the maximum is 2,147,483,647"),
        ("0x" + "f" * 5_000, "0xffffffffffffffffff… (5,002 characters)", "is too large"),
        ("0o" + "7" * 50, "0o777777777777777777… (52 characters)", "is too large"),
        (
            "-" + "9" * 5_000,
            "-9999999999999999999… (5,001 characters)",
            "is out of range: numbers in a tier file go",
        ),
    ],
    ids=["5000-digits", "11-digits", "hex", "octal", "negative"],
)
def test_a_huge_whole_number_is_shown_cut_short_with_the_reason(value: str, shown: str, reason: str) -> None:
    # GIVEN a quota limit with far more digits than any field takes (5,000 is past CPython's int-to-str cap)
    text = VALID.replace("limit: 1000", f"limit: {value}")
    # WHEN parsed
    with pytest.raises(CatalogError) as raised:
        parse_catalog(text, "t.yaml")
    # THEN one problem, on its line, shows the number cut short and says why it is refused
    [problem] = raised.value.problems
    assert (problem.line, problem.path) == (5, "tiers.basic.quota.limit")
    assert f"the whole number {shown} {reason}" in problem.message
    assert len(problem.message) < 300


def test_a_number_just_past_a_fields_maximum_keeps_the_fields_own_message() -> None:
    with pytest.raises(CatalogError) as raised:
        parse_catalog(VALID.replace("burst: 20", "burst: 2147483648"), "t.yaml")
    [problem] = raised.value.problems
    assert "at most 2,147,483,647; found the whole number 2147483648." in problem.message


def test_a_long_unknown_key_is_shown_cut_short() -> None:
    with pytest.raises(CatalogError) as raised:
        parse_catalog(VALID + f"? {'k' * 100_000}\n: 1\n", "t.yaml")
    [problem] = raised.value.problems
    assert f"unknown key '{'k' * 40}… (100,000 characters)'" in problem.message
    assert len(problem.message) < 300


# Hypothesis: the contract above, over generated inputs.


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.binary(max_size=4_096))
def test_any_bytes_load_or_fail_with_problems(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "random.yaml"
    path.write_bytes(data)
    check_outcome(path)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    position=st.integers(0, len(VALID)),
    garbage=st.one_of(st.binary(min_size=1, max_size=64), st.text(min_size=1, max_size=64).map(str.encode)),
)
def test_garbage_spliced_into_a_valid_file_loads_or_fails_with_problems(
    tmp_path: Path, position: int, garbage: bytes
) -> None:
    path = tmp_path / "spliced.yaml"
    path.write_bytes(VALID.encode()[:position] + garbage + VALID.encode()[position:])
    check_outcome(path)


# Each opener, the closer that ends it in flow style ("" for block style) and the levels it opens.
OPENERS = {"[": ("]", 1), "{a: ": ("}", 1), "{": ("}", 1), "[{b: ": ("}]", 2), "- ": ("", 1), "? ": ("", 1)}


@settings(max_examples=100, deadline=None)
@given(
    pieces=st.lists(st.tuples(st.sampled_from(list(OPENERS)), st.integers(1, 3_000)), min_size=1, max_size=8),
    place=st.sampled_from(["tiers: ", "tenants:\n  acme: ", "", "tiers:\n  basic:\n    throttle: "]),
    close=st.booleans(),
)
def test_random_nesting_is_read_or_refused_never_a_crash(
    pieces: list[tuple[str, int]], place: str, close: bool
) -> None:
    # GIVEN brackets, mappings, block sequences and explicit keys nested at random, closed or not
    opening = "".join(opener * count for opener, count in pieces)
    depth = sum(OPENERS[opener][1] * count for opener, count in pieces)
    closing = "".join(OPENERS[opener][0] * count for opener, count in reversed(pieces))
    text = place + opening + ("x" + closing if close else "") + "\n"
    # WHEN parsed THEN a catalog or problems, and past the cap whatever else is wrong is not reached
    problems = problems_of(lambda: parse_catalog(text, "nested.yaml"))
    flow_only = all(OPENERS[opener][0] for opener, _ in pieces)
    if depth > MAX_NESTING + 3 and flow_only and close:
        assert problems
        assert any("nested more than" in problem.message for problem in problems)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(size=st.integers(len(VALID) + 3, MAX_FILE_BYTES + 4_096))
def test_a_valid_file_of_any_size_loads_if_and_only_if_it_is_within_the_cap(
    tmp_path: Path, size: int
) -> None:
    # GIVEN a valid tier file padded with a comment to a random size around the cap
    head = VALID.encode() + b"#"
    path = tmp_path / "sized.yaml"
    path.write_bytes(head + b"p" * (size - len(head) - 1) + b"\n")
    # WHEN loaded THEN it loads exactly when it is within the cap, and is refused for its size otherwise
    if size <= MAX_FILE_BYTES:
        assert list(load_catalog(path).tenants) == ["acme"]
    else:
        assert "more than the 16 MB" in only_problem(path).message


def python_m_tiers_validate(path: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tiers", "validate", str(path)],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


@pytest.mark.parametrize("hostile", HOSTILE, ids=lambda hostile: hostile.name)
def test_python_m_tiers_validate_refuses_each_hostile_input_cleanly(tmp_path: Path, hostile: Hostile) -> None:
    # GIVEN a path that is no tier file
    path = hostile.make(tmp_path)
    # WHEN validated in a process of its own (a crash or a hang would fail here, not take the suite down)
    result = python_m_tiers_validate(path)
    # THEN exit 1 and `FILE: what is wrong`, then the count; no traceback
    assert result.returncode == 1, result.stderr[-2_000:]
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    first, last = result.stderr.splitlines()
    assert first.startswith(f"{path}")
    assert hostile.words in first
    assert last.startswith(f"1 problem in {path}")


def test_python_m_tiers_validate_shows_a_huge_number_cut_short(tmp_path: Path) -> None:
    path = tmp_path / "huge-number.yaml"
    path.write_text(VALID.replace("limit: 1000", "limit: " + "7" * 5_000))
    result = python_m_tiers_validate(path)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert (
        f"{path}:5: tiers.basic.quota.limit: the whole number 77777777777777777777… (5,000 characters) is "
        in (result.stderr)
    )
    assert len(result.stderr) < 600
