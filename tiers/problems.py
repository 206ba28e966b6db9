"""What a tier file got wrong: each problem names the file, the line, the place in the file and the fix."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Problem:
    file: str
    line: int | None
    """1-based line the problem is on; None when it concerns the file as a whole."""
    path: str
    """Dotted place in the file, such as ``tenants.acme.tier``; empty for the file as a whole."""
    message: str

    def __str__(self) -> str:
        where = self.file if self.line is None else f"{self.file}:{self.line}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


def listing(names: Sequence[str], shown: int = 12) -> str:
    """``names`` joined by commas, cut after ``shown`` with how many more there are."""
    more = len(names) - shown
    return ", ".join(names[:shown]) + (f" and {more} more" if more > 0 else "")


def shortened(text: str, shown: int = 40) -> str:
    """``text``, cut after ``shown`` characters with its length, so one long value cannot flood a report."""
    return text if len(text) <= shown else f"{text[:shown]}… ({len(text):,} characters)"


def summary_line(problems: Iterable[Problem]) -> str:
    """The closing line of a report: how many problems and how to check again after fixing them."""
    found = list(problems)
    files = sorted({problem.file for problem in found})
    count, them = (f"{len(found)} problem", "it") if len(found) == 1 else (f"{len(found)} problems", "them")
    return (
        f"{count} in {', '.join(files)}; nothing was accepted. "
        f"Fix {them} and check again with `python -m tiers validate {files[0] if files else 'FILE'}`."
    )


class CatalogError(Exception):
    """The tier file cannot be used. ``str(error)`` is the full report: one problem per line, then a count."""

    def __init__(self, problems: Iterable[Problem]) -> None:
        self.problems: list[Problem] = sorted(problems, key=_report_order)
        super().__init__(self.report())

    def report(self) -> str:
        return "\n".join([*(str(problem) for problem in self.problems), summary_line(self.problems)])

    def __str__(self) -> str:
        return self.report()


def _report_order(problem: Problem) -> tuple[str, int]:
    # Stable sort: problems on one line keep the order they were found in.
    return (problem.file, -1 if problem.line is None else problem.line)
