"""The Lambda bundle is built for the Lambda platform (real pip, real wheels), cached, and staged cleanly."""

from __future__ import annotations

import glob
import importlib.util
import json
import logging
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from infra.bundle import DEFAULT_HANDLERS_DIR, Bundle, BundleError, BundleSpec, build_bundle
from infra.config import PROJECT_ROOT, Architecture
from tests.infra.harness import run_program

DEV_TIERS = PROJECT_ROOT / "tiers" / "dev.yaml"

ELF_MACHINE = {Architecture.ARM64: 183, Architecture.X86_64: 62}  # EM_AARCH64, EM_X86_64


def elf_machine(shared_object: Path) -> int:
    header = shared_object.read_bytes()[:20]
    assert header[:4] == b"\x7fELF", f"{shared_object} is not an ELF file"
    return int.from_bytes(header[18:20], "little")


@pytest.fixture(scope="module")
def handlers_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private copy of handlers/ (sources, requirements), plus files that must stay out of the bundle."""
    copy = tmp_path_factory.mktemp("src") / "handlers"
    shutil.copytree(DEFAULT_HANDLERS_DIR, copy, ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "__pycache__").mkdir()
    (copy / "__pycache__" / "contract.cpython-311.pyc").write_bytes(b"stale")
    (copy / "tests").mkdir()
    (copy / "tests" / "test_secret.py").write_text("assert False\n")
    (copy / "NOTES.md").write_text("not code\n")
    return copy


@pytest.fixture(scope="module")
def cache_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("cache")


@pytest.mark.parametrize("architecture", list(Architecture))
def test_bundle_holds_compiled_dependencies_for_the_target_architecture(
    architecture: Architecture, handlers_copy: Path, cache_dir: Path
) -> None:
    # GIVEN this x86_64 build machine WHEN building for each Lambda architecture
    built = build_bundle(BundleSpec("3.12", architecture, handlers_dir=handlers_copy, cache_dir=cache_dir))
    # THEN cryptography's and cffi's compiled modules are ELF files for that architecture
    rust_bindings = built.path / "cryptography" / "hazmat" / "bindings" / "_rust.abi3.so"
    assert elf_machine(rust_bindings) == ELF_MACHINE[architecture]
    [cffi_backend] = built.path.glob("_cffi_backend.cpython-312-*.so")
    assert elf_machine(cffi_backend) == ELF_MACHINE[architecture]
    assert (built.path / "jwt" / "__init__.py").is_file()
    assert (built.path / "aws_lambda_powertools" / "__init__.py").is_file()


def test_bundle_stages_the_handler_sources_only(handlers_copy: Path, cache_dir: Path) -> None:
    built = build_bundle(
        BundleSpec("3.12", Architecture.ARM64, handlers_dir=handlers_copy, cache_dir=cache_dir)
    )
    staged = {
        path.relative_to(built.path / "handlers")
        for path in (built.path / "handlers").rglob("*")
        if "__pycache__" not in path.parts
    }
    expected = {path.relative_to(handlers_copy) for path in handlers_copy.glob("*.py")}
    assert Path("contract.py") in expected
    assert staged == expected
    assert (built.path / "handlers" / "contract.py").read_bytes() == (
        handlers_copy / "contract.py"
    ).read_bytes()


def test_an_unchanged_build_is_a_cache_hit(handlers_copy: Path, cache_dir: Path) -> None:
    spec = BundleSpec("3.12", Architecture.ARM64, handlers_dir=handlers_copy, cache_dir=cache_dir)
    first = build_bundle(spec)
    second = build_bundle(spec)
    assert second.from_cache
    assert second.path == first.path


def test_a_handler_edit_restages_without_reinstalling_dependencies(
    tmp_path: Path, handlers_copy: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a cached build
    handlers = tmp_path / "handlers"
    shutil.copytree(handlers_copy, handlers)
    spec = BundleSpec("3.12", Architecture.X86_64, handlers_dir=handlers, cache_dir=tmp_path / "cache")
    first = build_bundle(spec)
    # WHEN a handler changes (and pip would fail if it ran)
    (handlers / "contract.py").write_text((handlers / "contract.py").read_text() + "\nEDITED = True\n")

    run = subprocess.run

    def no_pip(command: list[str], *args: Any, **kwargs: Any) -> subprocess.CompletedProcess[str]:
        assert "pip" not in command, "dependencies were reinstalled for a handler edit"
        return run(command, *args, **kwargs)

    monkeypatch.setattr("infra.bundle.subprocess.run", no_pip)
    second = build_bundle(spec)
    # THEN a new bundle carries the edit, with the same dependencies, and the stale one is gone
    assert not second.from_cache
    assert second.path != first.path
    assert "EDITED = True" in (second.path / "handlers" / "contract.py").read_text()
    assert (second.path / "cryptography").is_dir()
    assert not first.path.exists()


def test_a_pip_failure_names_the_command_and_what_to_do(tmp_path: Path) -> None:
    handlers = tmp_path / "handlers"
    handlers.mkdir()
    (handlers / "__init__.py").write_text("")
    (handlers / "requirements.txt").write_text("./no-such-local-package\n")
    spec = BundleSpec("3.12", Architecture.ARM64, handlers_dir=handlers, cache_dir=tmp_path / "cache")
    with pytest.raises(BundleError) as raised:
        build_bundle(spec)
    message = str(raised.value)
    assert "pip install" in message
    assert "--platform manylinux2014_aarch64" in message
    assert "no-such-local-package" in message
    assert "What to do" in message
    assert not any((tmp_path / "cache").glob("bundle-*"))


THIS_PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"
OTHER_PYTHON = "3.12" if THIS_PYTHON != "3.12" else "3.13"
PYC_HEADER = 16  # magic (4), flags (4), source hash (8)
UNCHECKED_HASH_FLAGS = 0b01  # hash-based, check_source off (PEP 552)

# Imports handlers.authorizer from the given directories (first wins) in a fresh interpreter and
# reports which of their modules were loaded and which were compiled from source on the way.
IMPORT_PROBE = """
import importlib._bootstrap_external as external, json, sys
roots = tuple(sys.argv[1:])
compiled = []
source_to_code = external.SourceLoader.source_to_code
def spy(self, data, path, *args, **kwargs):
    compiled.append(path)
    return source_to_code(self, data, path, *args, **kwargs)
external.SourceLoader.source_to_code = spy
sys.path[:0] = roots
import handlers.authorizer
files = [getattr(module, "__file__", None) or "" for module in list(sys.modules.values())]
loaded = [path for path in files if path.startswith(roots)]
print(json.dumps({"loaded": loaded, "compiled": [path for path in compiled if path.startswith(roots)]}))
"""


def pyc_for(source: Path, cache_tag: str = sys.implementation.cache_tag) -> Path:
    return source.parent / "__pycache__" / f"{source.stem}.{cache_tag}.pyc"


def bundle_sources(bundle: Path) -> list[Path]:
    return sorted(path for path in bundle.rglob("*.py") if "__pycache__" not in path.parts)


def bundle_bytecode(bundle: Path) -> dict[Path, bytes]:
    return {path.relative_to(bundle): path.read_bytes() for path in sorted(bundle.rglob("*.pyc"))}


def import_authorizer(*sys_path: Path) -> dict[str, list[str]]:
    """Fresh interpreter, no bytecode writes (as on Lambda's read-only /var/task)."""
    completed = subprocess.run(
        [sys.executable, "-c", IMPORT_PROBE, *map(str, sys_path)],
        env={**os.environ, "PYTHONDONTWRITEBYTECODE": "1"},
        cwd=sys_path[-1].parent,
        capture_output=True,
        text=True,
        check=True,
    )
    report: dict[str, list[str]] = json.loads(completed.stdout)
    return report


def directory_with(tmp_path: Path, name: str, content: Path | str | None = None) -> Path:
    """A directory to use as PATH holding ``name``: a link to ``content`` (Path) or a script (str)."""
    directory = tmp_path / "bin"
    directory.mkdir(exist_ok=True)
    if isinstance(content, Path):
        (directory / name).symlink_to(content)
    elif content is not None:
        (directory / name).write_text(content)
        (directory / name).chmod(0o755)
    return directory


def real_interpreter(python_version: str) -> Path | None:
    """A CPython ``python_version`` on this machine, if any (pyenv shims on PATH may not run)."""
    candidates = [shutil.which(f"python{python_version}")]
    candidates += glob.glob(
        os.path.expanduser(f"~/.pyenv/versions/{python_version}.*/bin/python{python_version}")
    )
    for candidate in filter(None, candidates):
        completed = subprocess.run(
            [candidate, "-c", "import sys; print(sys.implementation.cache_tag)"],
            capture_output=True,
            text=True,
        )
        if completed.stdout.strip() == f"cpython-{python_version.replace('.', '')}":
            return Path(candidate)
    return None


@pytest.fixture(scope="module")
def compiled_bundle(handlers_copy: Path, tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    """Built for this interpreter's version, so this interpreter compiles its bytecode."""
    cache = tmp_path_factory.mktemp("compiled-cache")
    return build_bundle(
        BundleSpec(THIS_PYTHON, Architecture.X86_64, handlers_dir=handlers_copy, cache_dir=cache)
    )


def test_a_bundle_for_this_pythons_version_ships_unchecked_hash_bytecode_for_every_module(
    compiled_bundle: Bundle,
) -> None:
    # GIVEN a runtime of this interpreter's version WHEN the bundle is built
    sources = bundle_sources(compiled_bundle.path)
    # THEN it says nothing about missing bytecode, and every module, handlers and dependencies alike,
    assert compiled_bundle.bytecode_warning is None
    assert compiled_bundle.path / "handlers" / "authorizer.py" in sources
    assert compiled_bundle.path / "jwt" / "api_jwt.py" in sources
    for source in sources:
        # has a .pyc for this version whose hash matches its source and is never checked against it
        header = pyc_for(source).read_bytes()[:PYC_HEADER]
        assert header[:4] == importlib.util.MAGIC_NUMBER, source
        assert int.from_bytes(header[4:8], "little") == UNCHECKED_HASH_FLAGS, source
        assert header[8:16] == importlib.util.source_hash(source.read_bytes()), source
    # AND the stale .pyc lying in the source tree was not shipped: there is exactly one per module
    assert len(list(compiled_bundle.path.rglob("*.pyc"))) == len(sources)


def test_importing_the_authorizer_from_the_bundle_compiles_nothing(
    compiled_bundle: Bundle, tmp_path: Path
) -> None:
    # GIVEN the compiled bundle, and as a control the same handlers package without its bytecode
    handlers_only = tmp_path / "sources-only"
    shutil.copytree(
        compiled_bundle.path / "handlers",
        handlers_only / "handlers",
        ignore=shutil.ignore_patterns("__pycache__"),
    )
    # WHEN a fresh interpreter imports handlers.authorizer from it without writing bytecode
    bundled = import_authorizer(compiled_bundle.path)
    control = import_authorizer(handlers_only, compiled_bundle.path)
    # THEN handlers, PyJWT, cryptography and powertools come from the bundle and none is compiled from source
    loaded = {Path(path).relative_to(compiled_bundle.path).parts[0] for path in bundled["loaded"]}
    assert {"handlers", "jwt", "cryptography", "aws_lambda_powertools"} <= loaded
    assert bundled["compiled"] == []
    # (whereas the handlers without bytecode are compiled, and the dependencies still are not)
    assert str(handlers_only / "handlers" / "authorizer.py") in control["compiled"]
    assert all(path.startswith(str(handlers_only)) for path in control["compiled"])


def test_two_builds_of_the_same_inputs_have_byte_identical_bytecode(
    compiled_bundle: Bundle, handlers_copy: Path, tmp_path: Path
) -> None:
    # GIVEN a bundle built once WHEN the same inputs are built again from scratch elsewhere
    again = build_bundle(
        BundleSpec(THIS_PYTHON, Architecture.X86_64, handlers_dir=handlers_copy, cache_dir=tmp_path / "cache")
    )
    # THEN the cache key and every .pyc byte are the same (so an unchanged bundle never redeploys)
    assert not again.from_cache
    assert again.path.name == compiled_bundle.path.name
    first, second = bundle_bytecode(compiled_bundle.path), bundle_bytecode(again.path)
    assert len(first) > 100
    assert first == second


@pytest.mark.parametrize(
    "on_path",
    [
        pytest.param(None, id="absent"),
        pytest.param(
            "#!/bin/sh\necho 'pyenv: python3.X: command not found' >&2\nexit 127\n", id="broken-shim"
        ),
        pytest.param(Path(sys.executable), id="wrong-version"),
    ],
)
def test_without_an_interpreter_of_the_runtimes_version_the_bundle_has_no_bytecode_and_says_why(
    on_path: Path | str | None,
    handlers_copy: Path,
    cache_dir: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN a runtime of another version than this Python, and no working python3.X of it on PATH
    monkeypatch.setenv("PATH", str(directory_with(tmp_path, f"python{OTHER_PYTHON}", on_path)))
    # WHEN the bundle is built
    built = build_bundle(
        BundleSpec(OTHER_PYTHON, Architecture.ARM64, handlers_dir=handlers_copy, cache_dir=cache_dir)
    )
    # THEN it ships sources only (no bytecode of the wrong version either)
    assert list(built.path.rglob("*.pyc")) == []
    assert (built.path / "handlers" / "authorizer.py").is_file()
    # AND it says what is missing, what that costs and what to do
    warning = built.bytecode_warning
    assert warning is not None
    assert f"CPython {OTHER_PYTHON}" in warning
    assert f"this is Python {THIS_PYTHON}" in warning
    assert ("does not run as" in warning) == (on_path is not None)
    assert "cold start" in warning
    assert "twice as long" in warning
    assert f"install python{OTHER_PYTHON}" in warning
    assert f"tenant-tiers:lambdaRuntime to python{THIS_PYTHON}" in warning


def test_bytecode_becoming_possible_rebuilds_the_bundle_with_it(
    handlers_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a bundle built while no interpreter could compile its bytecode
    spec = BundleSpec(
        THIS_PYTHON, Architecture.X86_64, handlers_dir=handlers_copy, cache_dir=tmp_path / "cache"
    )
    with monkeypatch.context() as unavailable:
        unavailable.setattr("infra.bundle.find_bytecode_compiler", lambda _python_version: None)
        without = build_bundle(spec)
    assert without.bytecode_warning is not None
    assert list(without.path.rglob("*.pyc")) == []
    # WHEN one becomes available and the bundle is built again
    rebuilt = build_bundle(spec)
    # THEN it is not the cached bytecode-less bundle but a new one with bytecode, which is then cached
    assert not rebuilt.from_cache
    assert rebuilt.path != without.path
    assert pyc_for(rebuilt.path / "handlers" / "authorizer.py").is_file()
    assert build_bundle(spec).path == rebuilt.path


def test_a_python_of_the_runtimes_version_on_path_compiles_the_bundle(
    handlers_copy: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    interpreter = real_interpreter(OTHER_PYTHON)
    if interpreter is None:
        pytest.skip(f"no CPython {OTHER_PYTHON} on this machine")
    # GIVEN a runtime of another version than this Python, and a CPython of that version on PATH
    monkeypatch.setenv("PATH", str(directory_with(tmp_path, f"python{OTHER_PYTHON}", interpreter)))
    # WHEN the bundle is built
    spec = BundleSpec(
        OTHER_PYTHON, Architecture.X86_64, handlers_dir=handlers_copy, cache_dir=tmp_path / "cache"
    )
    built = build_bundle(spec)
    # THEN its modules carry that version's bytecode, not this interpreter's
    cache_tag = f"cpython-{OTHER_PYTHON.replace('.', '')}"
    assert built.bytecode_warning is None
    for source in (built.path / "handlers" / "authorizer.py", built.path / "jwt" / "api_jwt.py"):
        assert pyc_for(source, cache_tag).is_file()
    assert not any(
        path.name.endswith(f".{sys.implementation.cache_tag}.pyc") for path in built.path.rglob("*.pyc")
    )


@pytest.mark.parametrize("runtime_matches", [False, True], ids=["other-runtime", "this-pythons-runtime"])
def test_the_program_warns_exactly_when_the_bundle_has_no_bytecode(
    runtime_matches: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    # GIVEN no python3.X on PATH WHEN the program runs for a runtime of another version, or of this one
    monkeypatch.setenv("PATH", str(directory_with(tmp_path, "none")))
    runtime = f"python{THIS_PYTHON if runtime_matches else OTHER_PYTHON}"
    with caplog.at_level(logging.WARNING):
        run_program(DEV_TIERS, config={"lambdaRuntime": runtime})
    # THEN it warns, once, exactly when there is no bytecode (Pulumi mocks log warnings to Python logging)
    warnings = [record for record in caplog.records if "ships no bytecode" in record.getMessage()]
    if runtime_matches:
        assert warnings == []
    else:
        assert [record.levelno for record in warnings] == [logging.WARNING]
        assert f"install python{OTHER_PYTHON}" in warnings[0].getMessage()
