"""The on-disk cache of compiled model source (model/compile_cache.py)."""

from __future__ import annotations

import dataclasses
import os
import zlib
from pathlib import Path

import pytest
from lashspec.model import compile_cache, dsl, fastexplore
from lashspec.model.dsl import compile_model
from lashspec.model.kernel_model import SMALLEST_BOUNDS, build_model


@pytest.fixture
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    folder = tmp_path / "compiled"
    monkeypatch.setenv(compile_cache.CACHE_DIR_VARIABLE, str(folder))
    return folder


def entries(folder: Path) -> list[Path]:
    return sorted(folder.glob(f"*{compile_cache.SUFFIX}"))


def forbid_generation(monkeypatch: pytest.MonkeyPatch) -> None:
    def generate(model: dsl.Model, bindings: object, checked: bool) -> str:
        raise AssertionError(f"{model.name} was specialised again")

    monkeypatch.setattr(dsl, "_generate_source", generate)


def test_a_second_compile_reads_the_source_and_behaves_the_same(
    cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = build_model(SMALLEST_BOUNDS)
    first = compile_model(model)
    assert len(entries(cache)) == 1
    forbid_generation(monkeypatch)
    again = compile_model(build_model(SMALLEST_BOUNDS))  # an equal model, built anew
    assert again.source == first.source
    assert again.bindings == first.bindings
    initial = model.initial_state()
    assert again.successors(initial) == first.successors(initial)
    assert again.violations(initial) == first.violations(initial) == ()


def test_a_different_model_or_mode_is_a_miss(cache: Path) -> None:
    compile_model(build_model(SMALLEST_BOUNDS))
    wider = dataclasses.replace(SMALLEST_BOUNDS, max_generation=SMALLEST_BOUNDS.max_generation + 1)
    compile_model(build_model(wider))
    compile_model(build_model(SMALLEST_BOUNDS), checked=True)
    assert len(entries(cache)) == 3


def test_the_key_covers_the_model_the_mode_and_the_compiler() -> None:
    base = compile_cache.entry_key("model", False, b"compiler")
    assert compile_cache.entry_key("model", True, b"compiler") != base
    assert compile_cache.entry_key("model2", False, b"compiler") != base
    assert compile_cache.entry_key("model", False, b"compiler2") != base
    assert compile_cache.entry_key("model", False, b"compiler") == base


def test_an_unreadable_entry_is_compiled_again_and_rewritten(cache: Path) -> None:
    model = build_model(SMALLEST_BOUNDS)
    expected = compile_model(model).source
    (entry,) = entries(cache)
    entry.write_bytes(b"not zlib data")
    assert compile_model(model).source == expected
    assert zlib.decompress(entry.read_bytes()).decode() == expected


def test_an_empty_variable_turns_the_cache_off(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(compile_cache.CACHE_DIR_VARIABLE, "")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert compile_cache.cache_dir() is None
    compile_model(build_model(SMALLEST_BOUNDS))
    assert not any(tmp_path.rglob("*")), "nothing is written anywhere"


def test_a_folder_that_cannot_be_written_only_costs_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv(compile_cache.CACHE_DIR_VARIABLE, str(blocker / "compiled"))
    compiled = compile_model(build_model(SMALLEST_BOUNDS))
    assert compiled.violations(compiled.model.initial_state()) == ()


def test_the_default_folder_follows_xdg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(compile_cache.CACHE_DIR_VARIABLE, raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert compile_cache.cache_dir() == tmp_path / "lashspec" / "compiled"


def test_only_the_newest_entries_are_kept(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(compile_cache, "MAX_ENTRIES", 3)
    for number in range(5):
        compile_cache.store(f"key{number}", f"source {number}")
        entry = cache / f"key{number}{compile_cache.SUFFIX}"
        # distinct ages, oldest first, whatever the file system's timestamp resolution
        stamp = 1_000_000 + number
        os.utime(entry, (stamp, stamp))
    kept = [path.name.removesuffix(compile_cache.SUFFIX) for path in entries(cache)]
    assert kept == ["key2", "key3", "key4"]
    assert compile_cache.load("key4") == "source 4"
    assert compile_cache.load("key0") is None


def test_without_a_home_folder_the_cache_is_off_and_models_compile(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def no_home() -> Path:
        raise RuntimeError("Could not determine home directory.")

    monkeypatch.delenv(compile_cache.CACHE_DIR_VARIABLE, raising=False)
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setattr(Path, "home", staticmethod(no_home))
    assert compile_cache.cache_dir() is None
    compiled = compile_model(build_model(SMALLEST_BOUNDS))
    assert compiled.violations(compiled.model.initial_state()) == ()


def test_c_explorers_build_in_a_private_folder_when_the_cache_is_unwritable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocker))  # lashspec/ cannot be made under a file
    folder = fastexplore.cache_dir()
    assert blocker not in folder.parents
    assert folder.is_dir() and os.access(folder, os.W_OK)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert fastexplore.cache_dir() == tmp_path / "cache" / "lashspec"
