"""A content-addressed on-disk cache of compiled model source.

Compiling a model (``dsl.compile_model``) specialises every action instance, which takes a
second or more per model; turning the generated source into code takes a few hundredths.
``lashspec check``, ``export`` and the test suite compile the same models (profiles, seeded
bugs, promoted traces' bounds) in many processes, so the generated source is kept on disk.

An entry's key is a SHA-256 of everything the source is a function of: the model's full
``repr`` (every variable, sort, action, case, invariant and bound: the model is data), the
``checked`` flag and the compiler's own source file. A different model or compiler can only
miss, never read another's source. Entries are zlib-compressed text written atomically
(a temporary file renamed into place), so processes sharing the folder never read a partial
entry; an unreadable entry counts as a miss and is rewritten. The folder is
``$LASHSPEC_CACHE_DIR`` when set (an empty value turns the cache off), else
``$XDG_CACHE_HOME/lashspec/compiled``, else ``~/.cache/lashspec/compiled``; it keeps the
:data:`MAX_ENTRIES` most recently written entries. A folder that cannot be created or
written to, or a process without a home folder, only costs the cache: models still compile.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import tempfile
import zlib
from pathlib import Path

CACHE_DIR_VARIABLE = "LASHSPEC_CACHE_DIR"
MAX_ENTRIES = 512
SUFFIX = ".py.z"


def user_cache_root() -> Path | None:
    """lashspec's folder in the user's cache: ``$XDG_CACHE_HOME/lashspec`` or
    ``~/.cache/lashspec`` (compiled model source here, C explorers in ``fastexplore``); None
    when there is no home folder to find it in."""
    base = os.environ.get("XDG_CACHE_HOME")
    if not base:
        try:
            base = str(Path.home() / ".cache")
        except RuntimeError:  # no $HOME and no password entry
            return None
    return Path(base) / "lashspec"


def cache_dir() -> Path | None:
    """The cache folder, or None when ``$LASHSPEC_CACHE_DIR`` is set to the empty string or
    there is no user cache folder (never a shared temporary folder: entries are code)."""
    given = os.environ.get(CACHE_DIR_VARIABLE)
    if given is not None:
        return Path(given) if given else None
    root = user_cache_root()
    return root / "compiled" if root is not None else None


def entry_key(model_repr: str, checked: bool, compiler_source: bytes) -> str:
    digest = hashlib.sha256()
    digest.update(hashlib.sha256(compiler_source).digest())
    digest.update(b"checked" if checked else b"unchecked")
    digest.update(model_repr.encode())
    return digest.hexdigest()


def load(key: str) -> str | None:
    """The cached source for ``key``, or None (no cache, no entry, or an unreadable one)."""
    folder = cache_dir()
    if folder is None:
        return None
    try:
        return zlib.decompress((folder / f"{key}{SUFFIX}").read_bytes()).decode()
    except (OSError, zlib.error, UnicodeDecodeError):
        return None


def store(key: str, source: str) -> None:
    """Write an entry; a folder that cannot be written to only costs the next compile."""
    folder = cache_dir()
    if folder is None:
        return
    try:
        folder.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=folder, prefix=".tmp-", suffix=SUFFIX)
        try:
            with os.fdopen(handle, "wb") as out:
                out.write(zlib.compress(source.encode(), 6))
            os.replace(temporary, folder / f"{key}{SUFFIX}")
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise
        _prune(folder)
    except OSError:
        return


def _prune(folder: Path) -> None:
    entries = [path for path in folder.glob(f"*{SUFFIX}") if not path.name.startswith(".")]
    if len(entries) <= MAX_ENTRIES:
        return
    by_age = sorted(entries, key=lambda path: path.stat().st_mtime)
    for stale in by_age[: len(entries) - MAX_ENTRIES]:
        with contextlib.suppress(OSError):
            stale.unlink()
