"""Tier-file paths no tier file should look like, shared by the tests of every command that loads one.

Each entry makes the input under a directory and names the words its one problem must contain.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from tiers.loader import MAX_FILE_BYTES


@dataclass(frozen=True)
class Hostile:
    name: str
    make: Callable[[Path], Path]
    """Creates the input in the given directory and returns its path."""
    words: str
    """Part of the message of its one problem."""


def _write(directory: Path, name: str, data: bytes) -> Path:
    path = directory / name
    path.write_bytes(data)
    return path


def nested(depth: int) -> bytes:
    """A tier file whose `tiers:` holds lists inside lists, ``depth`` deep."""
    return b"tiers: " + b"[" * depth + b"]" * depth + b"\n"


def _oversized(directory: Path) -> Path:
    # Sparse: 17 MB on paper, no disk; a file of the same size full of text is refused the same way.
    path = directory / "huge.yaml"
    with path.open("wb") as file:
        file.truncate(17 * 2**20)
    assert path.stat().st_size > MAX_FILE_BYTES
    return path


def _fifo(directory: Path) -> Path:
    path = directory / "pipe.yaml"
    os.mkfifo(path)
    return path


def _directory(directory: Path) -> Path:
    path = directory / "tiers.yaml"
    path.mkdir()
    return path


def _binary(directory: Path) -> Path:
    # Fixed bytes that look like a compiled file: a magic number, NULs, high bytes.
    return _write(directory, "tiers.yaml", b"\x7fELF\x02\x01\x01\x00" + bytes(range(256)) * 16)


HOSTILE: tuple[Hostile, ...] = (
    Hostile(
        "nested-600", lambda directory: _write(directory, "deep.yaml", nested(600)), "nested more than 32"
    ),
    Hostile(
        "nested-30000",
        lambda directory: _write(directory, "deep.yaml", nested(30_000)),
        "nested more than 32",
    ),
    Hostile("17-mb", _oversized, "more than the 16 MB"),
    Hostile(
        "dev-zero", lambda _directory: Path("/dev/zero"), "this is a character device, not a regular file"
    ),
    Hostile("fifo", _fifo, "this is a named pipe (FIFO), not a regular file"),
    Hostile("directory", _directory, "this is a directory, not a regular file"),
    Hostile("binary", _binary, "the file has NUL bytes"),
)
