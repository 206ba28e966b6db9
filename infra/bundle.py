"""The Lambda bundle: handlers/ plus its dependencies, built for the Lambda runtime and architecture.

``cryptography`` is compiled, so the dependencies are installed as wheels for the
target platform (never this machine's). The build is cached under .pulumi-build/:
dependencies are keyed by the requirements, runtime, architecture and bytecode compiler,
the staged bundle additionally by the handler sources, so a `pulumi up` with nothing
changed rebuilds nothing and a fresh clone needs no manual build step.

Lambda's /var/task is read-only, so a module without a .pyc is compiled from source on
every cold start (the handlers take about twice as long to import). Bytecode is specific to a CPython
minor version, so it is compiled by an interpreter of the runtime's version when this
machine has one (this interpreter, else ``python3.X`` on PATH); otherwise the bundle
ships sources only and says so in ``Bundle.bytecode_warning``.
"""

from __future__ import annotations

import hashlib
import importlib.util
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
LAMBDA_TASK_ROOT = "/var/task"
"""Where Lambda unpacks the bundle: the source paths compiled into the bytecode."""
_PROBE_TIMEOUT_SECONDS = 30


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
    bytecode_warning: str | None = None
    """Set when the bundle ships no bytecode: why, what it costs at cold start, and the fix."""


@dataclass(frozen=True)
class BytecodeCompiler:
    """A CPython of the Lambda runtime's minor version, which writes bytecode Lambda can load."""

    executable: str
    cache_tag: str
    """``sys.implementation.cache_tag``, e.g. ``cpython-312``: names the .pyc files."""
    magic_number: str
    """``importlib.util.MAGIC_NUMBER`` in hex: the bytecode format, part of the cache key."""

    def command(self, directory: Path, source_root: str) -> list[str]:
        # -I: no PYTHON* variables (PYTHONOPTIMIZE would write .opt-1.pyc files Lambda never
        # reads). unchecked-hash: zip timestamps mean nothing and deployed files never change,
        # and hash-based .pyc files are byte-identical across builds, so the archive hash is
        # stable. -d: record the paths the sources have on Lambda, not this build's temp dir.
        return [
            self.executable,
            "-I",
            "-m",
            "compileall",
            "-q",
            "-j",
            "0",
            "--invalidation-mode",
            "unchecked-hash",
            "-d",
            source_root,
            str(directory),
        ]


class BundleError(Exception):
    """The bundle could not be built; ``str()`` says what failed and what to do."""


def build_bundle(spec: BundleSpec) -> Bundle:
    """The staged bundle for ``spec``, built only when its inputs changed since the last build."""
    if not spec.requirements.is_file():
        raise BundleError(f"Cannot build the Lambda bundle: {spec.requirements} does not exist.")
    spec.cache_dir.mkdir(parents=True, exist_ok=True)
    compiler = find_bytecode_compiler(spec.python_version)
    bytecode_warning = None if compiler else _no_bytecode_warning(spec.python_version)
    compiled_by = f"{compiler.cache_tag}:{compiler.magic_number}" if compiler else "no-bytecode"
    deps_key = _digest(
        spec.requirements.read_bytes(),
        spec.python_version.encode(),
        spec.architecture.value.encode(),
        compiled_by.encode(),
    )
    sources = _handler_sources(spec.handlers_dir)
    source_parts = ((path.as_posix().encode(), (spec.handlers_dir / path).read_bytes()) for path in sources)
    bundle_key = _digest(deps_key.encode(), *(part for pair in source_parts for part in pair))
    flavour = f"py{spec.python_version}-{spec.architecture.value}"
    bundle_dir = spec.cache_dir / f"bundle-{flavour}-{bundle_key}"
    if bundle_dir.is_dir():
        return Bundle(path=bundle_dir, from_cache=True, bytecode_warning=bytecode_warning)

    deps_dir = spec.cache_dir / f"deps-{flavour}-{deps_key}"
    if not deps_dir.is_dir():

        def install(staging: Path) -> None:
            _install_dependencies(spec, staging)
            if compiler:
                _compile(compiler, staging, LAMBDA_TASK_ROOT)

        _publish(deps_dir, install)
        _prune(spec.cache_dir, f"deps-{flavour}-", keep=deps_dir)

    def stage(staging: Path) -> None:
        # The dependencies' bytecode was compiled once, with them; only the handlers are new.
        shutil.copytree(deps_dir, staging, copy_function=_link_or_copy, dirs_exist_ok=True)
        package = spec.handlers_dir.name
        for relative in sources:
            target = staging / package / relative
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(spec.handlers_dir / relative, target)
        if compiler:
            _compile(compiler, staging / package, f"{LAMBDA_TASK_ROOT}/{package}")

    _publish(bundle_dir, stage)
    _prune(spec.cache_dir, f"bundle-{flavour}-", keep=bundle_dir)
    return Bundle(path=bundle_dir, from_cache=False, bytecode_warning=bytecode_warning)


def find_bytecode_compiler(python_version: str) -> BytecodeCompiler | None:
    """This interpreter if it is CPython ``python_version``, else a working ``python<version>`` on PATH."""
    this_version = f"{sys.version_info.major}.{sys.version_info.minor}"
    if sys.implementation.name == "cpython" and this_version == python_version:
        return BytecodeCompiler(
            sys.executable, sys.implementation.cache_tag, importlib.util.MAGIC_NUMBER.hex()
        )
    executable = shutil.which(f"python{python_version}")
    return _probe(executable, python_version) if executable else None


def _probe(executable: str, python_version: str) -> BytecodeCompiler | None:
    """The interpreter at ``executable`` if it runs as CPython ``python_version`` (a shim may not)."""
    report = (
        "import importlib.util, sys; print(sys.implementation.cache_tag, importlib.util.MAGIC_NUMBER.hex())"
    )
    expected_tag = f"cpython-{python_version.replace('.', '')}"
    try:
        completed = subprocess.run(
            [executable, "-I", "-c", report],
            capture_output=True,
            text=True,
            check=False,
            timeout=_PROBE_TIMEOUT_SECONDS,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    cache_tag, _, magic_number = completed.stdout.strip().partition(" ")
    if completed.returncode != 0 or cache_tag != expected_tag or not magic_number:
        return None
    return BytecodeCompiler(executable, cache_tag, magic_number)


def _no_bytecode_warning(python_version: str) -> str:
    name = f"python{python_version}"
    on_path = shutil.which(name)
    found = (
        f"`{on_path}` on PATH does not run as CPython {python_version}" if on_path else f"no `{name}` on PATH"
    )
    this = f"{sys.version_info.major}.{sys.version_info.minor}"
    return (
        f"The Lambda bundle ships no bytecode (.pyc files): compiling it needs CPython {python_version}, "
        f"and this is Python {this} with {found}. Lambda cannot write bytecode to its read-only /var/task, "
        "so every cold start compiles the bundled modules from source: the handlers' cold imports take "
        "about twice as long (handlers.authorizer: ~275 ms instead of ~135 ms, measured on CPython 3.11). "
        f"What to do: install {name} on this machine, on PATH, or set tenant-tiers:lambdaRuntime to "
        f"python{this} to match this Python; the next `pulumi up` then rebuilds the bundle with bytecode."
    )


def _compile(compiler: BytecodeCompiler, directory: Path, source_root: str) -> None:
    command = compiler.command(directory, source_root)
    try:
        completed = subprocess.run(command, capture_output=True, text=True, check=False)
    except OSError as error:
        raise BundleError(f"Cannot run {compiler.executable} to compile the Lambda bundle: {error}") from None
    if completed.returncode != 0:
        output = (completed.stdout + completed.stderr).strip().splitlines()[-_PIP_OUTPUT_TAIL:]
        raise BundleError(
            f"Compiling the Lambda bundle to bytecode failed ({compiler.cache_tag}).\n"
            f"Command: {' '.join(command)}\n"
            + "\n".join(f"  | {line}" for line in output)
            + f"\nWhat to do: fix the module named above, or check that {compiler.executable} is a working "
            f"CPython; then run `pulumi up` again."
        )


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
