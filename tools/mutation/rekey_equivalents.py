"""Keep tools/mutation/equivalents.toml keyed to the current kernel, and find mutant keys.

Cosmic Ray names a mutant by (file, operator, occurrence): the occurrence counts the places
in the file that operator can mutate, so an edit anywhere above a listed equivalent shifts
its key and its line. This tool enumerates the current mutants (``cosmic-ray init`` on a
copy of ``kernel/``, nothing is run) and, for each listed equivalent whose key or line no
longer names its code, finds the mutant of the same file and operator that replaces the
same code nearest the old line, and rewrites the entry's occurrence and line.

    python tools/mutation/rekey_equivalents.py             # rewrite stale entries
    python tools/mutation/rekey_equivalents.py --check     # exit 1 if any entry is stale
    python tools/mutation/rekey_equivalents.py --show kernel/rules.py 101   # a line's mutants
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import tomllib
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run  # tools/mutation/run.py: the campaign's own session reader

MODULES = ("engine", "rules", "memory", "types", "machine", "driver")


def current_mutants(modules: Sequence[str] = MODULES) -> list[run.Mutant]:
    """Every mutant Cosmic Ray would make of ``kernel/`` now (not run)."""
    with tempfile.TemporaryDirectory(prefix="lashspec-rekey-") as scratch:
        work = Path(scratch)
        shutil.copytree(
            run.REPO_ROOT / "kernel", work / "kernel", ignore=shutil.ignore_patterns("__pycache__")
        )
        config = work / "cosmic-ray.toml"
        run.write_config(config, modules, work / "suite", 60, ["http://127.0.0.1:1"])
        session = work / "session.sqlite"
        subprocess.run(
            [run.cosmic_ray(), "init", str(config), str(session)],
            cwd=work,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        return run.read_session(session)


def _sources() -> dict[str, list[str]]:
    return {
        f"kernel/{m}.py": (run.REPO_ROOT / "kernel" / f"{m}.py").read_text().splitlines()
        for m in MODULES
    }


def _replaces(mutant: run.Mutant, code: str, source: Sequence[str]) -> bool:
    """Whether ``mutant`` changes code inside an occurrence of ``code`` on its line (an entry's
    code is the expression around the operator, as docs/mutation.md shows it)."""
    text = source[mutant.line - 1]
    start = text.find(code)
    while start >= 0:
        if start <= mutant.col < start + len(code):
            return True
        start = text.find(code, start + 1)
    return False


def rekey(text: str, mutants: Sequence[run.Mutant]) -> tuple[str, list[str], list[str]]:
    """``text`` (equivalents.toml) with stale entries rewritten; the changes; the failures."""
    sources = _sources()
    head, *blocks = text.split("[[equivalent]]")
    changes: list[str] = []
    failures: list[str] = []
    out = [head]
    for block in blocks:
        fields = tomllib.loads(block)
        file, operator = str(fields["file"]), str(fields["operator"])
        occurrence, line, code = int(fields["occurrence"]), int(fields["line"]), str(fields["code"])
        same = [m for m in mutants if m.key.file == file and m.key.operator == operator]
        exact = [m for m in same if m.key.occurrence == occurrence]
        if exact and exact[0].line == line and _replaces(exact[0], code, sources[file]):
            out.append(block)
            continue
        matches = sorted(
            (m for m in same if _replaces(m, code, sources[file])),
            key=lambda m: abs(m.line - line),
        )
        nearest = [m for m in matches if abs(m.line - line) == abs(matches[0].line - line)]
        if len({(m.line, m.col) for m in nearest}) == 1 and len(nearest) == 2:
            # NumberReplacer makes two mutants of each literal (+1, then -1), numbered in
            # pairs: keep the entry's member of the pair
            matches = [sorted(nearest, key=lambda m: m.key.occurrence)[occurrence % 2]]
        if not matches or (
            len(matches) > 1 and abs(matches[0].line - line) == abs(matches[1].line - line)
        ):
            failures.append(f"{file}:{line} {operator} {code!r}: {len(matches)} candidates")
            out.append(block)
            continue
        new = matches[0]
        block = block.replace(
            f"occurrence = {occurrence}\n", f"occurrence = {new.key.occurrence}\n"
        )
        block = block.replace(f"line = {line}\n", f"line = {new.line}\n")
        changes.append(
            f"{file} {operator} #{occurrence} line {line} -> #{new.key.occurrence} line {new.line}"
        )
        out.append(block)
    return "[[equivalent]]".join(out), changes, failures


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="report stale entries, change nothing")
    parser.add_argument(
        "--show", nargs=2, metavar=("FILE", "LINE"), help="list the mutants of one source line"
    )
    args = parser.parse_args(argv)
    mutants = current_mutants()
    if args.show:
        file, line = args.show[0], int(args.show[1])
        source = _sources()[file]
        for m in mutants:
            if m.key.file == file and m.line == line:
                print(
                    f"{m.key.operator} occurrence={m.key.occurrence} col={m.col} "
                    f"code={m.code(source)!r}"
                )
        return 0
    text = run.EQUIVALENTS.read_text(encoding="utf-8")
    new_text, changes, failures = rekey(text, mutants)
    for change in changes:
        print(change)
    for failure in failures:
        print(f"cannot re-key {failure}", file=sys.stderr)
    if args.check:
        return 1 if changes or failures else 0
    if changes:
        run.EQUIVALENTS.write_text(new_text, encoding="utf-8")
    return 1 if failures else 0


if __name__ == "__main__":
    raise SystemExit(main())
