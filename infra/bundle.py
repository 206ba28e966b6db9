"""The Lambda bundle: handlers/ plus its dependencies, built for the Lambda runtime and architecture.

``cryptography`` is compiled, so the dependencies are installed as wheels for the
target platform (never this machine's). The build is cached under .pulumi-build/:
dependencies are keyed by the requirements, runtime and architecture, the staged
bundle additionally by the handler sources, so a `pulumi up` with nothing changed
rebuilds nothing and a fresh clone needs no manual build step.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from infra.config import PROJECT_ROOT, Architecture

DEFAULT_CACHE_DIR = PROJECT_ROOT / ".pulumi-build"
DEFAULT_HANDLERS_DIR = PROJECT_ROOT / "handlers"

_PLATFORMS = {
    Architecture.ARM64: "manylinux2014_aarch64",
    Architecture.X86_64: "manylinux2014_x86_64",
}
_PIP_OUTPUT_TAIL = 40


@dataclass(frozen=True)
class BundleSpec:
    python_version: str
    """Of the Lambda runtime, e.g. ``3.12``."""
    architecture: Architecture
    handlers_dir: Path = DEFAULT_HANDLERS_DIR
    cache_dir: Path = DEFAULT_CACHE_DIR

    @property
    def requirements(self) -> Path:
        return self.handlers_dir / "requirements.txt"

    @property
    def platform(self) -> str:
        return _PLATFORMS[self.architecture]


@dataclass(frozen=True)
class Bundle:
    path: Path
    """Directory to zip as the functions' code: the ``handlers`` package next to its dependencies."""
    from_cache: bool


class BundleError(Exception):
    """The bundle could not be built; ``str()`` says what failed and what to do."""


def build_bundle(spec: BundleSpec) -> Bundle:
    """The staged bundle for ``spec``, built only when its inputs changed since the last build."""
    if not spec.requirements.is_file():
        raise BundleError(f"Cannot build the Lambda bundle: {spec.requirements} does not exist.")
    spec.cache_dir.mkdir(parents=True, exist_ok=True)
    deps_key = _digest(
        spec.requirements.read_bytes(), spec.python_version.encode(), spec.architecture.value.encode()
    )
    sources = _handler_sources(spec.handlers_dir)
    source_parts = ((path.as_posix().encode(), (spec.handlers_dir / path).read_bytes()) for path in sources)
    bundle_key = _digest(deps_key.encode(), *(part for pair in source_parts for part in pair))
    flavour = f"py{spec.python_version}-{spec.architecture.value}"
    bundle_dir = spec.cache_dir / f"bundle-{flavour}-{bundle_key}"
    if bundle_dir.is_dir():
        return Bundle(path=bundle_dir, from_cache=True)

    deps_dir = spec.cache_dir / f"deps-{flavour}-{deps_key}"
    if not deps_dir.is_dir():
        _publish(deps_dir, lambda staging: _install_dependencies(spec, staging))
        _prune(spec.cache_dir, f"deps-{flavour}-", keep=deps_dir)

    def stage(staging: Path) -> None:
        shutil.copytree(deps_dir, staging, copy_function=_link_or_copy, dirs_exist_ok=True)
        for relative in sources:
            target = staging / spec.handlers_dir.name / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(spec.handlers_dir / relative, target)

    _publish(bundle_dir, stage)
    _prune(spec.cache_dir, f"bundle-{flavour}-", keep=bundle_dir)
    return Bundle(path=bundle_dir, from_cache=False)


def pip_command(spec: BundleSpec, target: Path) -> list[str]:
    return [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--disable-pip-version-check",
        "--no-compile",
        "--target",
        str(target),
        "--platform",
        spec.platform,
        "--implementation",
        "cp",
        "--python-version",
        spec.python_version,
        "--only-binary=:all:",
        "-r",
        str(spec.requirements),
    ]


def _install_dependencies(spec: BundleSpec, target: Path) -> None:
    command = pip_command(spec, target)
    try:
        completed = subprocess.run(command, capture_output=True, text=True, check=False)
    except OSError as error:
        raise BundleError(f"Cannot run pip to build the Lambda bundle: {error}") from None
    if completed.returncode != 0:
        output = (completed.stderr or completed.stdout).strip().splitlines()[-_PIP_OUTPUT_TAIL:]
        raise BundleError(
            "Building the Lambda bundle failed: pip could not install "
            f"{spec.requirements} for {spec.platform}, CPython {spec.python_version}.\n"
            f"Command: {' '.join(command)}\n"
            + "\n".join(f"  | {line}" for line in output)
            + "\nWhat to do: check that this machine can reach the package index and that every package in "
            f"{spec.requirements.name} (and its dependencies) publishes a binary wheel for {spec.platform} "
            f"and CPython {spec.python_version}; then run `pulumi up` again "
            f"(delete {spec.cache_dir} to force a clean build)."
        )


def _handler_sources(handlers_dir: Path) -> list[Path]:
    """Python sources of the handlers package, relative to it; no caches and no tests."""
    relative_paths = (path.relative_to(handlers_dir) for path in handlers_dir.rglob("*.py"))
    return sorted(
        path
        for path in relative_paths
        if not any(part == "__pycache__" or part.startswith(("test", ".")) for part in path.parts)
    )


def _publish(final: Path, build: Callable[[Path], None]) -> None:
    """Build into a private directory, then rename it into place so readers never see half a build."""
    staging = Path(tempfile.mkdtemp(prefix=".tmp-", dir=final.parent))
    try:
        build(staging)
        try:
            staging.rename(final)
        except OSError:
            if not final.is_dir():
                raise
            # Another process published the same build first; its result is identical.
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def _prune(cache_dir: Path, prefix: str, keep: Path) -> None:
    for stale in cache_dir.glob(f"{prefix}*"):
        if stale != keep and stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)


def _link_or_copy(source: str, destination: str) -> object:
    try:
        os.link(source, destination)
    except OSError:
        return shutil.copy2(source, destination)
    return destination


def _digest(*parts: bytes) -> str:
    hasher = hashlib.sha256()
    for part in parts:
        hasher.update(len(part).to_bytes(8, "big"))
        hasher.update(part)
    return hasher.hexdigest()[:16]
