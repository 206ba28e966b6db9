"""Reads the bytes of a tier file, refusing anything that is not one before reading it whole.

Only a regular file of at most MAX_FILE_BYTES is read. It is opened without
blocking (a FIFO with no writer would otherwise hang the open forever), its kind
and size are taken from the open descriptor, and the read stops one byte past the
cap, so a file that grows meanwhile, or a device without end such as /dev/zero,
costs at most the cap in memory and time.
"""

from __future__ import annotations

import errno
import os
import stat
from typing import Final

from tiers.problems import CatalogError, Problem

MAX_FILE_BYTES: Final = 16 * 2**20
"""16 MB: a file at AWS's limits (10,000 tenants, 32-character ids, 128-character names) is about 2.4 MB."""

_OPEN_FLAGS: Final = os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC
_CHUNK: Final = 2**20
_REGULAR_FILE_HINT: Final = "give the path of a tier file, such as tiers/dev.yaml."


def read_tier_file(path: str | os.PathLike[str], max_bytes: int = MAX_FILE_BYTES) -> bytes:
    """The bytes of the tier file at ``path``; CatalogError (naming the file) when it cannot be one."""
    source = os.fspath(path)
    try:
        descriptor = os.open(path, _OPEN_FLAGS)
    except OSError as error:
        raise file_error(source, _open_failure(path, error)) from None
    try:
        status = os.fstat(descriptor)
        if not stat.S_ISREG(status.st_mode):
            raise file_error(
                source, f"this is {_kind(status.st_mode)}, not a regular file; {_REGULAR_FILE_HINT}"
            )
        if status.st_size > max_bytes:
            raise file_error(source, _too_large(status.st_size, max_bytes))
        return _read_at_most(source, descriptor, max_bytes)
    finally:
        os.close(descriptor)


def file_error(source: str, message: str) -> CatalogError:
    """The error for a problem with the file as a whole."""
    return CatalogError([Problem(source, None, "", message)])


def _read_at_most(source: str, descriptor: int, max_bytes: int) -> bytes:
    chunks: list[bytes] = []
    size = 0
    while size <= max_bytes:
        try:
            chunk = os.read(descriptor, min(_CHUNK, max_bytes + 1 - size))
        except OSError as error:
            raise file_error(
                source, f"cannot be read ({error.strerror}); check the path and the disk."
            ) from None
        if not chunk:
            return b"".join(chunks)
        chunks.append(chunk)
        size += len(chunk)
    raise file_error(source, _too_large(None, max_bytes))


def _open_failure(path: str | os.PathLike[str], error: OSError) -> str:
    if error.errno == errno.ENOENT:
        return "no such file. Check the path, or create the tier file there."
    if error.errno in (errno.EACCES, errno.EPERM):
        return "permission denied; make the file readable by this user."
    if error.errno == errno.EISDIR:
        return f"this is a directory, not a regular file; {_REGULAR_FILE_HINT}"
    if error.errno == errno.ENXIO:  # a socket, or a device with nothing behind it
        try:
            mode = os.stat(path).st_mode
        except OSError:
            mode = 0
        return f"this is {_kind(mode)}, not a regular file; {_REGULAR_FILE_HINT}"
    return f"cannot be read ({error.strerror}); check the path and the disk."


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a named pipe (FIFO)"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "a special file"


def _too_large(size: int | None, max_bytes: int) -> str:
    how_big = "larger than" if size is None else f"{size:,} bytes, more than"
    return (
        f"{how_big} the {_megabytes(max_bytes)} ({max_bytes:,} bytes) a tier file may have; one at AWS's "
        "limits is under 3 MB. Check that this is the tier file, or remove what is not tiers and tenants."
    )


def _megabytes(size: int) -> str:
    return f"{size / 2**20:g} MB"
