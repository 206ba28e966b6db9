"""The Lambda bundle is built for the Lambda platform (real pip, real wheels), cached, and staged cleanly."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from infra.bundle import DEFAULT_HANDLERS_DIR, BundleError, BundleSpec, build_bundle
from infra.config import Architecture

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
    staged = {path.relative_to(built.path / "handlers") for path in (built.path / "handlers").rglob("*")}
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

    def no_pip(*args: object, **kwargs: object) -> None:
        raise AssertionError("dependencies were reinstalled for a handler edit")

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
