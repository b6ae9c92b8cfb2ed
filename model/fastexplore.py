"""The fast exploration engine: packed states, generated C, symmetry over interchangeable keys.

``fast_explore(model)`` explores any DSL model breadth first like ``explore.explore`` and
returns counts, deadlocks, invariant verdicts and shortest counterexamples, without keeping the
graph. Two engines share one state encoding and one code generator:

* ``"c"``: the model is translated to C (ints, bools and enums as small ints, maps as fixed
  slots, quantifiers unrolled: the specialisation ``compile_model`` already does), compiled
  once with cffi and the system C compiler, cached by the hash of the source under
  ``$XDG_CACHE_HOME/lashspec``; the BFS keeps packed states in one array and an
  open-addressing hash table of 32-bit slots (a state id and a few bits of its hash, so that
  most probes of other states' slots never read those states), on huge pages where the
  kernel offers them (about 30 bytes a state). With ``jobs`` > 1 it runs on that many
  threads inside C (the GIL is released for the call): level-synchronous BFS over one shared
  table that the threads fill by compare-and-swap, a barrier after each round of at most
  32,768 states of one level, so counts equal the serial engine's and counterexamples stay
  shortest.
* ``"python"``: the same generated code in Python over packed ints (the fallback and the
  reference when cffi or a compiler is missing).

A state is packed into one integer (``PackedLayout``): every scalar slot of ``Model.layout``
gets ``ceil(log2(size of its sort))`` bits, no field straddling a 64-bit word; C keeps the
words, Python one int. A successor is the pre-state plus the changed fields' differences.

``Symmetry`` names a set of interchangeable keys (the owners of the store model): maps keyed
by them and scalars holding one of them are permuted together; with it, every state is
replaced by the least packed image under all permutations (its orbit's representative), and
the result reports orbit counts next to the full counts (sum of orbit sizes). Counterexamples
are replayed on concrete states, so they are real paths of the unreduced model.
"""

from __future__ import annotations

import atexit
import functools
import hashlib
import importlib.util
import itertools
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Collection, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

from . import compile_cache
from .check import CheckResult, InvariantStatus
from .dsl import (
    FALSE,
    TRUE,
    Action,
    Add,
    And,
    BoolSort,
    CompiledModel,
    Const,
    EnumSort,
    Eq,
    Expr,
    FlatState,
    IntSort,
    Ite,
    Le,
    Lt,
    MapSort,
    Model,
    ModelError,
    Mul,
    NoCaseMatchedError,
    Not,
    Or,
    Sort,
    SortError,
    Sub,
    _Bind,
    _Compiler,
    _conjuncts,
    _flatten_sort,
    _implied_facts,
    _Local,
    _Scope,
    _Slot,
    _Undefined,
    compile_model,
)
from .explore import (
    ExplorationError,
    ProgressCallback,
    ResourceWatch,
    Step,
    Violation,
    resident_memory_bytes,
)
from .kernel_model import DEFAULT_BOUNDS
from .profiles import Profile

Engine = Literal["auto", "c", "python"]
Lang = Literal["c", "py", "pml"]


class UnsupportedModelError(ModelError):
    """The model uses something the packed code generator does not translate."""


# --------------------------------------------------------------------------------------------
# Packed layout


@dataclass(frozen=True, slots=True)
class PackedField:
    """Where one scalar slot lives: 64-bit word, shift in it, width and the value offset."""

    word: int
    shift: int
    width: int
    lo: int
    size: int
    enum: EnumSort | None

    @property
    def offset(self) -> int:
        return self.word * 64 + self.shift

    @property
    def hi(self) -> int:
        return self.lo + self.size - 1


def _domain(sort: Sort) -> tuple[int, int, EnumSort | None]:
    if isinstance(sort, BoolSort):
        return 0, 2, None
    if isinstance(sort, IntSort):
        return sort.lo, sort.hi - sort.lo + 1, None
    if isinstance(sort, EnumSort):
        return 0, len(sort.values()), sort
    raise UnsupportedModelError(f"slot sort {sort} cannot be packed")


class PackedLayout:
    """Bit fields of a model's flat state; ``pack``/``unpack`` convert flat tuples and ints."""

    def __init__(self, model: Model) -> None:
        self.model = model
        self.fields: list[PackedField] = []
        word, shift = 0, 0
        for slot in model.layout():
            lo, size, enum = _domain(slot.sort)
            width = (size - 1).bit_length()
            if shift + width > 64:
                word, shift = word + 1, 0
            self.fields.append(PackedField(word, shift, width, lo, size, enum))
            shift += width
        self.words = word + 1
        self.bits = max(f.offset + f.width for f in self.fields) if self.fields else 0

    def pack(self, flat: Sequence[Any]) -> int:
        packed = 0
        for f, value in zip(self.fields, flat, strict=True):
            code = f.enum.index_of(value) if f.enum is not None else int(value) - f.lo
            if not 0 <= code < f.size:
                raise SortError(f"value {value!r} outside its slot's sort")
            packed |= code << f.offset
        return packed

    def unpack(self, packed: int) -> FlatState:
        values: list[Any] = []
        for f, slot in zip(self.fields, self.model.layout(), strict=True):
            code = (packed >> f.offset) & ((1 << f.width) - 1)
            if f.enum is not None:
                values.append(f.enum.values()[code])
            elif isinstance(slot.sort, BoolSort):
                values.append(bool(code))
            else:
                values.append(code + f.lo)
        return tuple(values)

    def to_words(self, packed: int) -> list[int]:
        return [(packed >> (64 * k)) & ((1 << 64) - 1) for k in range(self.words)]

    def from_words(self, words: Sequence[int]) -> int:
        return sum(int(w) << (64 * k) for k, w in enumerate(words))


# --------------------------------------------------------------------------------------------
# Symmetry


@dataclass(frozen=True)
class Symmetry:
    """Interchangeable keys ``0..size-1``: ``keyed`` maps have them as their outermost key,
    ``valued`` scalar variables hold one of them (other values, e.g. -1 = none, stay)."""

    size: int
    keyed: tuple[str, ...]
    valued: tuple[str, ...] = ()

    def permutations(self) -> list[tuple[int, ...]]:
        """Every non-identity permutation of the keys."""
        return [p for p in itertools.permutations(range(self.size)) if p != tuple(range(self.size))]


def owner_symmetry(model: Model) -> Symmetry:
    """The store model's owners: the ``owner_*`` maps and the lease rows' holders."""
    sorts = model.sorts()
    owner_sort = sorts["owner_alive"]
    assert isinstance(owner_sort, MapSort)
    keyed = tuple(
        name
        for name, sort in sorts.items()
        if name.startswith("owner_") and isinstance(sort, MapSort) and sort.key == owner_sort.key
    )
    holders = tuple(name for name in ("lease_holder", "s1_lease_holder") if name in sorts)
    return Symmetry(len(owner_sort.key.values()), keyed, holders)


def _permutation_sources(
    model: Model, symmetry: Symmetry, perm: tuple[int, ...]
) -> list[tuple[int, int, bool]]:
    """For the image under ``perm``: (target slot, source slot, map the value) per moved slot."""
    layout = model.layout()
    index = {(s.variable, s.keys): i for i, s in enumerate(layout)}
    moved: list[tuple[int, int, bool]] = []
    for i, slot in enumerate(layout):
        if slot.variable in symmetry.keyed:
            owner = slot.keys[0]
            assert isinstance(owner, int)
            target = index[(slot.variable, (perm[owner], *slot.keys[1:]))]
            moved.append((target, i, False))
        elif slot.variable in symmetry.valued:
            moved.append((i, i, True))
    return moved


# --------------------------------------------------------------------------------------------
# Code generation (C and Python over packed states)


class _Writer:
    def __init__(self, lang: Lang) -> None:
        self.lang = lang
        self.lines: list[str] = []
        self.depth = 1

    def line(self, text: str) -> None:
        end = ";" if self.lang == "c" and not text.endswith(("{", "}")) else ""
        self.lines.append("    " * self.depth + text + end)

    def open_if(self, cond: str) -> None:
        self.lines.append(
            "    " * self.depth + (f"if ({cond}) {{" if self.lang == "c" else f"if {cond}:")
        )
        self.depth += 1

    def close(self) -> None:
        self.depth -= 1
        if self.lang == "c":
            self.lines.append("    " * self.depth + "}")

    def else_(self) -> None:
        self.depth -= 1
        self.lines.append("    " * self.depth + ("} else {" if self.lang == "c" else "else:"))
        self.depth += 1


class _Emitter:
    """Specialised expressions -> C or Python with enums as indices and bools as 0/1."""

    def __init__(self, comp: _Compiler, lang: Lang, fields: list[PackedField]) -> None:
        self.comp = comp
        self.lang = lang
        self.fields = fields
        self.layout = comp.layout
        self.local_enum: dict[str, EnumSort | None] = {}
        self.local_range: dict[str, tuple[int, int]] = {}
        self.locals: set[str] = set()
        self.words = max((f.word for f in fields), default=0) + 1
        self.strings: dict[str, int] = {}
        self.string_locals: set[str] = set()

    # static facts about expressions, used to resolve enum constants and skip range checks

    def enum_of(self, e: Expr) -> EnumSort | None:
        if isinstance(e, _Slot):
            return self.fields[e.index].enum
        if isinstance(e, _Local):
            return self.local_enum.get(e.name)
        if isinstance(e, Ite):
            return self.enum_of(e.then) or self.enum_of(e.else_)
        if isinstance(e, _Bind):
            self.local_enum.setdefault(e.name, self.enum_of(e.value))
            return self.enum_of(e.body)
        return None

    def range_of(self, e: Expr) -> tuple[int, int] | None:
        """Inclusive bounds of the (encoded) value, None when unknown."""
        if isinstance(e, Const):
            return (int(e.value), int(e.value)) if not isinstance(e.value, str) else None
        if isinstance(e, _Slot):
            f = self.fields[e.index]
            return (0, f.size - 1) if f.enum is not None else (f.lo, f.hi)
        if isinstance(e, _Local):
            return self.local_range.get(e.name)
        if isinstance(e, Not | And | Or | Eq | Lt | Le):
            return (0, 1)
        if isinstance(e, Ite):
            a, b = self.range_of(e.then), self.range_of(e.else_)
            return None if a is None or b is None else (min(a[0], b[0]), max(a[1], b[1]))
        if isinstance(e, _Bind):
            value = self.range_of(e.value)
            if value is not None:
                self.local_range.setdefault(e.name, value)
            return self.range_of(e.body)
        if isinstance(e, Add | Sub | Mul):
            a, b = self.range_of(e.lhs), self.range_of(e.rhs)
            if a is None or b is None:
                return None
            if isinstance(e, Add):
                return a[0] + b[0], a[1] + b[1]
            if isinstance(e, Sub):
                return a[0] - b[1], a[1] - b[0]
            corners = [x * y for x in a for y in b]
            return min(corners), max(corners)
        return None

    def emit(
        self,
        expr: Expr,
        prelude: list[str],
        scope: _Scope,
        want: EnumSort | None = None,
        post_names: dict[int, str] | None = None,
    ) -> str:
        c = self.lang != "py"  # C and Promela share operators
        pml = self.lang == "pml"

        def go(e: Expr, want: EnumSort | None) -> str:
            if isinstance(e, Const):
                value = e.value
                if isinstance(value, str):
                    if want is None:
                        # compared only with other constants: any injective code will do
                        return str(
                            _GLOBAL_STRING_BASE + self.strings.setdefault(value, len(self.strings))
                        )
                    return str(want.values().index(value)) if value in want.values() else "-1"
                return str(int(value))
            if isinstance(e, _Slot):
                if e.post:
                    if post_names is None:
                        raise UnsupportedModelError("Next() outside a monitor update")
                    return post_names[e.index]
                return f"v{e.index}"
            if isinstance(e, _Local):
                return scope.resolve(e.name)
            if isinstance(e, _Undefined):
                if pml:  # only in branches a well-formed model never takes (as in C)
                    return "0"
                return "undefined_value()" if c else f"_undefined({e.message!r})"
            if isinstance(e, _Bind):
                self.enum_of(e)
                self.range_of(e)
                value_code = go(e.value, self.local_enum.get(e.name))
                if self.local_enum.get(e.name) is None and _has_string(e.value):
                    self.string_locals.add(e.name)
                if pml:  # Promela expressions cannot assign: lets are inlined
                    scope.alias[e.name] = f"({value_code})"
                    return go(e.body, want)
                existing = scope.lookup_value(value_code)
                if existing is not None:
                    scope.alias[e.name] = existing
                else:
                    prelude.append(f"{e.name} = {value_code}")
                    self.locals.add(e.name)
                    scope.known[value_code] = e.name
                return go(e.body, want)
            if isinstance(e, Not):
                return f"(!{go(e.arg, None)})" if c else f"(not {go(e.arg, None)})"
            if isinstance(e, And | Or):
                op = ("&&" if c else "and") if isinstance(e, And) else ("||" if c else "or")
                return "(" + f" {op} ".join(go(a, None) for a in e.args) + ")"
            if isinstance(e, Eq):
                sort = self.enum_of(e.lhs) or self.enum_of(e.rhs)
                if sort is not None and any(
                    isinstance(side, _Local) and scope.resolve(side.name) in self.string_locals
                    for side in (e.lhs, e.rhs)
                ):
                    raise UnsupportedModelError("an enum compared with a local of unknown sort")
                return f"({go(e.lhs, sort)} == {go(e.rhs, sort)})"
            if isinstance(e, Lt | Le | Add | Sub | Mul):
                op = {Lt: "<", Le: "<=", Add: "+", Sub: "-", Mul: "*"}[type(e)]
                return f"({go(e.lhs, None)} {op} {go(e.rhs, None)})"
            if isinstance(e, Ite):
                cond, then, else_ = go(e.cond, None), go(e.then, want), go(e.else_, want)
                if pml:
                    return f"({cond} -> {then} : {else_})"
                return f"({cond} ? {then} : {else_})" if c else f"({then} if {cond} else {else_})"
            raise UnsupportedModelError(f"cannot emit {type(e).__name__} over packed states")

        return go(expr, want)


_GLOBAL_STRING_BASE = 1 << 20  # above every enum index, so never equal to one by accident


def _has_string(e: Expr) -> bool:
    if isinstance(e, Const):
        return isinstance(e.value, str)
    if isinstance(e, Ite):
        return _has_string(e.then) or _has_string(e.else_)
    if isinstance(e, _Bind):
        return _has_string(e.body)
    return False


@dataclass
class _Generated:
    successors: str
    violations: str
    canon: str
    bindings: int


def _generate(
    model: Model, layout: PackedLayout, lang: Lang, symmetry: Symmetry | None
) -> _Generated:
    comp = _Compiler(model)
    em = _Emitter(comp, lang, layout.fields)
    c = lang == "c"
    monitored = {m.variable for m in model.monitors}
    w = _Writer(lang)
    binding_count = 0
    for action in model.actions:
        for params in action.bindings():
            env: dict[str, Expr] = {k: Const(v) for k, v in params.items()}
            _emit_packed_binding(comp, em, w, model, action, binding_count, env, monitored)
            binding_count += 1
    body = w.lines

    unpack: list[str] = []
    for i, f in enumerate(layout.fields):
        mask = (1 << f.width) - 1
        lo = f" + {f.lo}" if f.lo and f.enum is None else ""
        if c:
            unpack.append(f"    int v{i} = (int)((s[{f.word}] >> {f.shift}) & {mask}ULL){lo};")
        else:
            unpack.append(f"    v{i} = ((s >> {f.offset}) & {mask}){lo}")
    if c:
        declared = sorted(em.locals, key=lambda n: int(n[1:]) if n[1:].isdigit() else 0)
        decl = [f"    int {', '.join(declared)};"] if declared else []
        succ = [
            "static int successors(const uint64_t *s, uint64_t *out) {",
            *unpack,
            *decl,
            "    int count = 0;",
            "    uint64_t *t;",
            *body,
            "    return count;",
            "}",
        ]
    else:
        succ = ["def successors(s):", *unpack, "    out = []", "    append = out.append", *body]
        succ.append("    return out")

    # invariants
    em_inv = _Emitter(comp, lang, layout.fields)
    prelude: list[str] = []
    scope = _Scope()
    codes = [
        em_inv.emit(comp.specialise(inv.expr, {}, None), prelude, scope) for inv in model.invariants
    ]
    if c:
        if len(codes) > 64:
            raise UnsupportedModelError("more than 64 invariants")
        inv_decl = sorted(em_inv.locals)
        viol = [
            "static uint64_t violations(const uint64_t *s) {",
            *unpack,
            *([f"    int {', '.join(inv_decl)};"] if inv_decl else []),
            *(f"    {p};" for p in prelude),
            "    uint64_t bad = 0;",
            *(f"    if (!{code}) bad |= {1 << k}ULL;" for k, code in enumerate(codes)),
            "    return bad;",
            "}",
        ]
    else:
        viol = ["def violations(s):", *unpack, *(f"    {p}" for p in prelude)]
        if codes:
            viol.append("    if " + " and ".join(codes) + ":")
            viol.append("        return ()")
            viol.append("    bad = []")
            for k, code in enumerate(codes):
                viol.append(f"    if not {code}:")
                viol.append(f"        bad.append({k})")
            viol.append("    return tuple(bad)")
        else:
            viol.append("    return ()")
    return _Generated(
        "\n".join(succ),
        "\n".join(viol),
        _generate_canon(model, layout, lang, symmetry),
        binding_count,
    )


def _emit_packed_binding(
    comp: _Compiler,
    em: _Emitter,
    w: _Writer,
    model: Model,
    action: Action,
    binding: int,
    env: dict[str, Expr],
    monitored: set[str],
) -> None:
    """Mirror of ``dsl._emit_binding``: guard conjuncts, then the first matching case."""
    c = em.lang == "c"
    guard = comp.specialise(action.guard, env, None)
    if guard == FALSE:
        return
    bw = _Writer(em.lang)
    bw.depth = w.depth
    if c:
        bw.lines.append("    " * bw.depth + "{")
        bw.depth += 1
    opened = 0
    scope = _Scope()
    facts: dict[Expr, Const] = {}
    for raw in _conjuncts(guard):
        conjunct = comp.refine(raw, facts)
        if conjunct == TRUE:
            continue
        if conjunct == FALSE:
            return  # never enabled: nothing of this binding is emitted
        prelude: list[str] = []
        scope = _Scope(scope)
        code = em.emit(conjunct, prelude, scope)
        for p in prelude:
            bw.line(p)
        bw.open_if(code)
        opened += 1
        for atom, value in _implied_facts(conjunct, True):
            facts.setdefault(atom, value)
    matched_all = False
    for case in action.cases:
        cond = comp.refine(comp.specialise(case.condition, env, None), facts)
        if cond == FALSE:
            continue
        prelude = []
        scope = _Scope(scope)
        cond_code = em.emit(cond, prelude, scope)
        for p in prelude:
            bw.line(p)
        bw.open_if(cond_code)
        case_facts = dict(facts)
        for atom, value in _implied_facts(cond, True):
            case_facts.setdefault(atom, value)
        _emit_packed_case(
            comp,
            em,
            bw,
            model,
            action,
            binding,
            case.updates,
            env,
            monitored,
            _Scope(scope),
            case_facts,
        )
        if cond == TRUE:
            bw.close()
            matched_all = True
            break
        bw.else_()
        opened += 1
        for atom, value in _implied_facts(cond, False):
            facts.setdefault(atom, value)
    if not matched_all:
        if c:
            bw.line(f"g_err = 1; g_err_binding = {binding}; return -1")
        else:
            message = f"no case of {action.name} (binding {binding}) matches the state"
            bw.line(f"raise NoCaseMatchedError({message!r})")
    for _ in range(opened):
        bw.close()
    if c:
        bw.close()
    if not bw.lines and not c:
        return
    w.lines.extend(bw.lines)


@dataclass
class _Assign:
    slot: int
    name: str
    code: str
    check: tuple[int, int] | None


def _emit_packed_case(
    comp: _Compiler,
    em: _Emitter,
    w: _Writer,
    model: Model,
    action: Action,
    binding: int,
    updates: tuple[tuple[str, Expr], ...],
    env: dict[str, Expr],
    monitored: set[str],
    scope: _Scope,
    facts: dict[Expr, Const],
) -> None:
    """The post-state as the pre-state plus each changed field's difference (outcome unused)."""
    c = em.lang == "c"
    prelude: list[str] = []
    new_names: dict[int, str] = {}
    assigns: list[_Assign] = []
    for target, expr in updates:
        if target in monitored:
            raise UnsupportedModelError(f"{action.name} updates monitored variable {target}")
        value = comp.specialise(expr, env, None)
        for keys, _ in _flatten_sort(comp.sorts[target], ()):
            index = comp.slot_index[(target, keys)]
            leaf = value
            for key in keys:
                leaf = comp._select_const(leaf, key, None)
            leaf = comp.refine(leaf, facts)
            if leaf == _Slot(index, False):
                continue
            code = em.emit(leaf, prelude, scope, em.fields[index].enum)
            new_names[index] = f"n{index}"
            assigns.append(_Assign(index, f"n{index}", code, _needed_check(em, leaf, index)))
    post_names = {i: new_names.get(i, f"v{i}") for i in range(len(comp.layout))}
    monitor_prelude: list[str] = []
    monitor_assigns: list[_Assign] = []
    comp.changed = set(new_names)
    try:
        for monitor in model.monitors:
            value = comp.specialise(monitor.update, env, action.name)
            for keys, _ in _flatten_sort(comp.sorts[monitor.variable], ()):
                index = comp.slot_index[(monitor.variable, keys)]
                leaf = value
                for key in keys:
                    leaf = comp._select_const(leaf, key, action.name)
                leaf = comp.refine(leaf, facts)
                if leaf == _Slot(index, False):
                    continue
                code = em.emit(leaf, monitor_prelude, scope, em.fields[index].enum, post_names)
                monitor_assigns.append(
                    _Assign(index, f"m{index}", code, _needed_check(em, leaf, index))
                )
                new_names[index] = f"m{index}"
    finally:
        comp.changed = None
    declare = "int " if c else ""
    for p in prelude:
        w.line(p)
    for a in assigns:
        w.line(f"{declare}{a.name} = {a.code}")
    for p in monitor_prelude:
        w.line(p)
    for a in monitor_assigns:
        w.line(f"{declare}{a.name} = {a.code}")
    for a in (*assigns, *monitor_assigns):
        if a.check is None:
            continue
        lo, hi = a.check
        if c:
            w.line(
                f"if ({a.name} < {lo} || {a.name} > {hi}) "
                f"{{ g_err = 2; g_err_binding = {binding}; return -1; }}"
            )
        else:
            w.line(f"if not {lo} <= {a.name} <= {hi}: _sort_error({binding})")
    changed = [(i, new_names[i]) for i in sorted(new_names)]
    if c:
        w.line("t = out + (size_t)count * W")
        for k in range(em.words):
            w.line(f"t[{k}] = s[{k}]")
        for i, name in changed:
            f = em.fields[i]
            w.line(f"t[{f.word}] += (uint64_t)(int64_t)({name} - v{i}) << {f.shift}")
        w.line("count++")
    else:
        delta = " + ".join(f"(({name} - v{i}) << {em.fields[i].offset})" for i, name in changed)
        w.line(f"append(s + {delta})" if changed else "append(s)")


def _needed_check(em: _Emitter, leaf: Expr, index: int) -> tuple[int, int] | None:
    """The sort bounds to test when the new value is not statically inside its slot's sort."""
    f = em.fields[index]
    lo, hi = (0, f.size - 1) if f.enum is not None else (f.lo, f.hi)
    known = em.range_of(leaf)
    if known is not None and lo <= known[0] and known[1] <= hi:
        return None
    return lo, hi


def _generate_canon(
    model: Model, layout: PackedLayout, lang: Lang, symmetry: Symmetry | None
) -> str:
    """``canon(state)``: the least image under the symmetry's permutations and the orbit size."""
    if lang == "c":
        if symmetry is None:
            return "static int canon(uint64_t *t) { (void)t; return 1; }"
        lines = ["static int canon(uint64_t *t) {"]
        perms = symmetry.permutations()
        lines.append(f"    uint64_t img[{len(perms) + 1}][W];")
        lines.append("    words_copy(img[0], t);")
        moved_any = _permutation_sources(model, symmetry, perms[0]) if perms else []
        masks = [0] * layout.words
        for target, _, _ in moved_any:
            f = layout.fields[target]
            masks[f.word] |= ((1 << f.width) - 1) << f.shift
        for p_index, perm in enumerate(perms, start=1):
            for k in range(layout.words):
                lines.append(
                    f"    img[{p_index}][{k}] = t[{k}] & {~masks[k] & ((1 << 64) - 1)}ULL;"
                )
            for target, source, map_value in _permutation_sources(model, symmetry, perm):
                tf, sf = layout.fields[target], layout.fields[source]
                value = f"((t[{sf.word}] >> {sf.shift}) & {(1 << sf.width) - 1}ULL)"
                if map_value:
                    # encoded value e = v - lo; keys 0..size-1 are encoded as (key - lo)
                    table = [
                        perm[e + sf.lo] - sf.lo if 0 <= e + sf.lo < symmetry.size else e
                        for e in range(1 << sf.width)
                    ]
                    lines.append(
                        f"    {{ static const uint64_t map[] = {{{', '.join(map(str, table))}}};"
                        f" img[{p_index}][{tf.word}] |= map[{value}] << {tf.shift}; }}"
                    )
                else:
                    lines.append(f"    img[{p_index}][{tf.word}] |= {value} << {tf.shift};")
        lines += [
            "    int best = 0, distinct = 0;",
            f"    for (int a = 0; a < {len(perms) + 1}; a++) {{",
            "        int seen = 0;",
            "        for (int b = 0; b < a && !seen; b++)",
            "            seen = words_eq(img[a], img[b]);",
            "        if (!seen) distinct++;",
            "        if (words_less(img[a], img[best])) best = a;",
            "    }",
            "    words_copy(t, img[best]);",
            "    return distinct;",
            "}",
        ]
        return "\n".join(lines)
    if symmetry is None:
        return "def canon(s):\n    return s, 1"
    perms = symmetry.permutations()
    mask = 0
    for target, _, _ in _permutation_sources(model, symmetry, perms[0]) if perms else []:
        f = layout.fields[target]
        mask |= ((1 << f.width) - 1) << f.offset
    lines = [
        "def canon(s):",
        f"    base = s & {~mask & ((1 << layout.bits) - 1)}",
        "    images = {s}",
    ]
    for perm in perms:
        parts = []
        for target, source, map_value in _permutation_sources(model, symmetry, perm):
            tf, sf = layout.fields[target], layout.fields[source]
            value = f"((s >> {sf.offset}) & {(1 << sf.width) - 1})"
            if map_value:
                images = tuple(
                    perm[e + sf.lo] - sf.lo if 0 <= e + sf.lo < symmetry.size else e
                    for e in range(1 << sf.width)
                )
                value = f"{images}[{value}]"
            parts.append(f"({value} << {tf.offset})")
        lines.append(f"    images.add(base | {' | '.join(parts)})")
    lines.append("    return min(images), len(images)")
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# The C engine


_C_PRELUDE = """
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>
#define W {words}
#define NB {bindings}
#define NINV {invariants}
/* per thread: the parallel engine runs successors() on several threads at once */
static _Thread_local int g_err = 0;
static _Thread_local int g_err_binding = -1;
static int undefined_value(void) {{ if (!g_err) g_err = 3; return 0; }}
static inline int words_less(const uint64_t *a, const uint64_t *b) {{
    for (int k = W - 1; k >= 0; k--) if (a[k] != b[k]) return a[k] < b[k];
    return 0;
}}
static inline int words_eq(const uint64_t *a, const uint64_t *b) {{
    for (int k = 0; k < W; k++) if (a[k] != b[k]) return 0;
    return 1;
}}
static inline void words_copy(uint64_t *to, const uint64_t *from) {{
    for (int k = 0; k < W; k++) to[k] = from[k];
}}
"""

_C_DRIVER = """
static inline uint64_t hash_words(const uint64_t *a) {
    uint64_t h = 0x9E3779B97F4A7C15ULL;
    for (int k = 0; k < W; k++) { h ^= a[k]; h *= 0xff51afd7ed558ccdULL; h ^= h >> 32; }
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 29;
    return h;
}

/* The visited table: open addressing over 2^b slots of 32 bits. A slot holds id + 1 in its
   low b bits (ids stay below 0.7 * 2^b) and, above them, bits 32+b.. of the state's hash as a
   tag: a probe that meets another state's slot skips it without reading that state (a cache
   miss) unless the tags agree. The slot index is the hash's low b bits. */
#define BUSY UINT32_MAX /* a slot being filled by another thread (never a valid entry) */

static inline uint32_t slot_tag(uint64_t h, uint32_t idmask) {
    return (uint32_t)(h >> 32) & ~idmask;
}

typedef struct explorer {
    uint64_t *states;
    uint32_t *parents;
    uint8_t *orbits;
    uint32_t *table;
    int64_t n, cap, tmask, cursor, level_end, depth, edges, deadlocks;
    int64_t full_states, full_edges, max_states;
    int64_t first_bad[NINV > 0 ? NINV : 1];
    uint64_t stop_mask;
    int complete, err, err_binding;
    int64_t err_state;
    uint64_t buf[(NB > 0 ? NB : 1) * W];
    uint64_t hash_of[NB > 0 ? NB : 1];
    uint8_t orbit_of[NB > 0 ? NB : 1];
} explorer;

/* Ask for transparent huge pages on a large array: its random accesses (the table, the
   states a probe reads) then miss the TLB far less often. */
static void huge_pages(void *start, size_t bytes) {
#ifdef MADV_HUGEPAGE
    uintptr_t from = ((uintptr_t)start + 0x1FFFFF) & ~(uintptr_t)0x1FFFFF;
    uintptr_t to = ((uintptr_t)start + bytes) & ~(uintptr_t)0x1FFFFF;
    if (to > from) madvise((void *)from, to - from, MADV_HUGEPAGE);
#else
    (void)start; (void)bytes;
#endif
}

static int grow_table(explorer *e) {
    int64_t size = (e->tmask + 1) * 2;
    if (size > ((int64_t)1 << 32)) return -1; /* 32-bit slots: ids end below 2^32 */
    uint32_t *t = calloc((size_t)size, sizeof(uint32_t));
    if (!t) return -1;
    huge_pages(t, (size_t)size * sizeof(uint32_t));
    free(e->table);
    e->table = t;
    e->tmask = size - 1;
    uint32_t idmask = (uint32_t)e->tmask;
    for (int64_t i = 0; i < e->n; i++) {
        uint64_t full = hash_words(e->states + i * W);
        uint64_t h = full & (uint64_t)e->tmask;
        while (t[h]) h = (h + 1) & (uint64_t)e->tmask;
        t[h] = slot_tag(full, idmask) | (uint32_t)(i + 1);
    }
    return 0;
}

static int grow_states(explorer *e, int64_t need) {
    int64_t cap = e->cap;
    while (cap < need) cap *= 2;
    uint64_t *s = realloc(e->states, (size_t)cap * W * sizeof(uint64_t));
    if (!s) return -1;
    e->states = s;
    uint32_t *p = realloc(e->parents, (size_t)cap * sizeof(uint32_t));
    if (!p) return -1;
    e->parents = p;
    uint8_t *o = realloc(e->orbits, (size_t)cap);
    if (!o) return -1;
    e->orbits = o;
    e->cap = cap;
    huge_pages(e->states, (size_t)cap * W * sizeof(uint64_t));
    huge_pages(e->parents, (size_t)cap * sizeof(uint32_t));
    return 0;
}

explorer *ex_new(const uint64_t *init, int orbit, int64_t max_states, uint64_t stop_mask) {
    explorer *e = calloc(1, sizeof(explorer));
    if (!e) return NULL;
    e->cap = 1024;
    e->tmask = 2047;
    e->states = malloc((size_t)e->cap * W * sizeof(uint64_t));
    e->parents = malloc((size_t)e->cap * sizeof(uint32_t));
    e->orbits = malloc((size_t)e->cap);
    e->table = calloc((size_t)e->tmask + 1, sizeof(uint32_t));
    if (!e->states || !e->parents || !e->orbits || !e->table) return NULL;
    memcpy(e->states, init, W * sizeof(uint64_t));
    e->parents[0] = UINT32_MAX;
    e->orbits[0] = (uint8_t)orbit;
    uint64_t full = hash_words(init);
    e->table[full & (uint64_t)e->tmask] = slot_tag(full, (uint32_t)e->tmask) | 1u;
    e->n = 1;
    e->level_end = 1;
    e->full_states = orbit;
    e->max_states = max_states > 0 ? max_states : INT64_MAX;
    e->stop_mask = stop_mask;
    e->complete = 1;
    e->err_state = -1;
    for (int k = 0; k < (NINV > 0 ? NINV : 1); k++) e->first_bad[k] = -1;
    return e;
}

/* Canonicalise one state's successors, hash them and prefetch their slots, then the states
   those slots name when the tags agree: the lookups of one state's successors then wait on
   memory together, not in turn. */
static inline void prepare(const explorer *e, uint64_t *buf, int count, uint64_t *hash_of,
                           uint8_t *orbit_of) {
    uint64_t mask = (uint64_t)e->tmask;
    uint32_t idmask = (uint32_t)e->tmask;
    for (int j = 0; j < count; j++) {
        uint64_t *t = buf + (size_t)j * W;
        orbit_of[j] = (uint8_t)canon(t);
        hash_of[j] = hash_words(t);
        __builtin_prefetch(&e->table[hash_of[j] & mask]);
    }
    for (int j = 0; j < count; j++) {
        uint32_t v = __atomic_load_n(&e->table[hash_of[j] & mask], __ATOMIC_RELAXED);
        if (v && v != BUSY && (v & ~idmask) == slot_tag(hash_of[j], idmask))
            __builtin_prefetch(e->states + (int64_t)((v & idmask) - 1) * W);
    }
}

int ex_run(explorer *e, int64_t budget) {
    uint64_t cur[W];
    g_err = 0; /* an earlier exploration's error on this thread is not this one's */
    g_err_binding = -1;
    while (budget-- > 0) {
        if (e->cursor >= e->n) return 1;
        if (e->cursor == e->level_end) { e->depth++; e->level_end = e->n; }
        words_copy(cur, e->states + e->cursor * W);
        uint64_t bad = violations(cur);
        if (g_err) { e->err = g_err; e->err_binding = -1; e->err_state = e->cursor; return -1; }
        if (bad) {
            for (int k = 0; k < NINV; k++)
                if (((bad >> k) & 1) && e->first_bad[k] < 0) e->first_bad[k] = e->cursor;
            if (bad & e->stop_mask) { e->complete = 0; return 2; }
        }
        int count = successors(cur, e->buf);
        if (count < 0 || g_err) {
            e->err = g_err; e->err_binding = g_err_binding; e->err_state = e->cursor;
            return -1;
        }
        if (count == 0) e->deadlocks++;
        e->edges += count;
        e->full_edges += (int64_t)count * e->orbits[e->cursor];
        if (e->n + count > e->cap && grow_states(e, e->n + count)) return -2;
        if ((e->n + count) * 10 > (e->tmask + 1) * 7 && grow_table(e)) return -2;
        prepare(e, e->buf, count, e->hash_of, e->orbit_of);
        uint64_t mask = (uint64_t)e->tmask;
        uint32_t idmask = (uint32_t)e->tmask;
        for (int j = 0; j < count; j++) {
            uint64_t *t = e->buf + (size_t)j * W;
            int orbit = e->orbit_of[j];
            if (words_eq(t, cur)) continue;
            uint64_t h = e->hash_of[j] & mask;
            uint32_t tag = slot_tag(e->hash_of[j], idmask);
            int found = 0;
            for (uint32_t v; (v = e->table[h]) != 0; h = (h + 1) & mask) {
                if ((v & ~idmask) == tag
                    && words_eq(e->states + (int64_t)((v & idmask) - 1) * W, t)) {
                    found = 1;
                    break;
                }
            }
            if (found) continue;
            if (e->n >= e->max_states) { e->complete = 0; continue; }
            e->table[h] = tag | (uint32_t)(e->n + 1);
            words_copy(e->states + e->n * W, t);
            e->parents[e->n] = (uint32_t)e->cursor;
            e->orbits[e->n] = (uint8_t)orbit;
            e->full_states += orbit;
            e->n++;
        }
        e->cursor++;
    }
    return 0;
}

/* ---- the parallel engine: level-synchronous BFS on threads sharing one table ----

   The frontier is processed in rounds of at most ROUND states of one BFS level. Before a
   round, one thread makes room for every successor the round could add (NB per state), so
   the arrays and the table never move during a round; the threads then take blocks of
   BLOCK states and insert successors into the shared table: an empty slot is claimed by a
   compare-and-swap to BUSY, the state gets the next id (an atomic add), and the slot is
   published with its id. A round ends at a barrier, so levels never mix: every state of
   level d is processed before any of level d + 1, and the first violating states found are
   at the least depth (shortest counterexamples). Counts are sums over states and do not
   depend on which thread inserted a state first; ids (and which shortest path is reported)
   may. */
#define ROUND 32768
#define BLOCK 32
#define MAX_JOBS 64

struct par;

typedef struct worker {
    struct par *p;
    int tid;
    int64_t edges, deadlocks, full_states, full_edges;
    int64_t first_bad[NINV > 0 ? NINV : 1];
    uint64_t bad_any;
    int err, err_binding;
    int64_t err_state;
    uint64_t buf[(NB > 0 ? NB : 1) * W];
    uint64_t hash_of[NB > 0 ? NB : 1];
    uint8_t orbit_of[NB > 0 ? NB : 1];
} worker;

typedef struct par {
    explorer *e;
    pthread_barrier_t barrier;
    pthread_mutex_t gate;
    pthread_cond_t opened;
    int jobs, go, quit, status;
    int64_t next, round_end, budget, done;
    worker *workers;
} par;

static void par_insert(explorer *e, worker *w, const uint64_t *t, uint64_t hash, int orbit,
                       int64_t parent) {
    uint64_t mask = (uint64_t)e->tmask;
    uint32_t idmask = (uint32_t)e->tmask;
    uint32_t tag = slot_tag(hash, idmask);
    uint64_t h = hash & mask;
    for (;;) {
        uint32_t v = __atomic_load_n(&e->table[h], __ATOMIC_ACQUIRE);
        if (v == 0) {
            uint32_t expected = 0;
            if (!__atomic_compare_exchange_n(&e->table[h], &expected, BUSY, 0,
                                             __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE))
                continue; /* another thread took the slot: look at it again */
            int64_t id = __atomic_fetch_add(&e->n, 1, __ATOMIC_RELAXED);
            words_copy(e->states + id * W, t);
            e->parents[id] = (uint32_t)parent;
            e->orbits[id] = (uint8_t)orbit;
            w->full_states += orbit;
            __atomic_store_n(&e->table[h], tag | (uint32_t)(id + 1), __ATOMIC_RELEASE);
            return;
        }
        if (v == BUSY) {
            /* being filled: a handful of stores away, unless its thread was preempted */
            for (int spin = 0; __atomic_load_n(&e->table[h], __ATOMIC_ACQUIRE) == BUSY; spin++)
                if (spin > 256) sched_yield(); else __builtin_ia32_pause();
            continue;
        }
        if ((v & ~idmask) == tag && words_eq(e->states + (int64_t)((v & idmask) - 1) * W, t))
            return;
        h = (h + 1) & mask;
    }
}

static void par_work(par *p, worker *w) {
    explorer *e = p->e;
    uint64_t cur[W];
    for (;;) {
        int64_t start = __atomic_fetch_add(&p->next, BLOCK, __ATOMIC_RELAXED);
        if (start >= p->round_end) return;
        int64_t stop = start + BLOCK < p->round_end ? start + BLOCK : p->round_end;
        for (int64_t i = start; i < stop; i++) {
            words_copy(cur, e->states + i * W);
            uint64_t bad = violations(cur);
            if (g_err) { w->err = g_err; w->err_binding = -1; w->err_state = i; return; }
            if (bad) {
                w->bad_any |= bad;
                for (int k = 0; k < NINV; k++)
                    if (((bad >> k) & 1) && (w->first_bad[k] < 0 || i < w->first_bad[k]))
                        w->first_bad[k] = i;
            }
            int count = successors(cur, w->buf);
            if (count < 0 || g_err) {
                w->err = g_err; w->err_binding = g_err_binding; w->err_state = i;
                return;
            }
            if (count == 0) w->deadlocks++;
            w->edges += count;
            w->full_edges += (int64_t)count * e->orbits[i];
            prepare(e, w->buf, count, w->hash_of, w->orbit_of);
            for (int j = 0; j < count; j++) {
                uint64_t *t = w->buf + (size_t)j * W;
                if (words_eq(t, cur)) continue;
                par_insert(e, w, t, w->hash_of[j], w->orbit_of[j], i);
            }
        }
    }
}

/* One thread, between rounds: fold the workers' counts in, then set up the next round. */
static void par_merge(par *p) {
    explorer *e = p->e;
    uint64_t bad_any = 0;
    for (int j = 0; j < p->jobs; j++) {
        worker *w = &p->workers[j];
        e->edges += w->edges; e->deadlocks += w->deadlocks;
        e->full_states += w->full_states; e->full_edges += w->full_edges;
        w->edges = w->deadlocks = w->full_states = w->full_edges = 0;
        bad_any |= w->bad_any;
        w->bad_any = 0;
        if (w->err && !e->err) {
            e->err = w->err; e->err_binding = w->err_binding; e->err_state = w->err_state;
        }
    }
    for (int k = 0; k < NINV; k++) {
        int64_t least = -1;
        for (int j = 0; j < p->jobs; j++) {
            int64_t at = p->workers[j].first_bad[k];
            if (at >= 0 && (least < 0 || at < least)) least = at;
            p->workers[j].first_bad[k] = -1;
        }
        if (e->first_bad[k] < 0) e->first_bad[k] = least;
    }
    if (e->err) { p->quit = 1; p->status = -1; return; }
    p->done += p->round_end - e->cursor;
    e->cursor = p->round_end;
    if (bad_any & e->stop_mask) { e->complete = 0; p->quit = 1; p->status = 2; }
}

static void par_setup(par *p) {
    explorer *e = p->e;
    if (p->quit) return;
    if (e->cursor >= e->n) { p->quit = 1; p->status = 1; return; }
    if (p->done >= p->budget) { p->quit = 1; p->status = 0; return; }
    if (e->cursor == e->level_end) { e->depth++; e->level_end = e->n; }
    int64_t end = e->cursor + ROUND < e->level_end ? e->cursor + ROUND : e->level_end;
    int64_t room = e->n + (end - e->cursor) * (NB > 0 ? NB : 1);
    if (room > e->cap && grow_states(e, room)) { p->quit = 1; p->status = -2; return; }
    while (room * 10 > (e->tmask + 1) * 7)
        if (grow_table(e)) { p->quit = 1; p->status = -2; return; }
    p->next = e->cursor;
    p->round_end = end;
}

static void *par_thread(void *arg) {
    worker *w = arg;
    par *p = w->p;
    pthread_mutex_lock(&p->gate);
    while (!p->go) pthread_cond_wait(&p->opened, &p->gate);
    pthread_mutex_unlock(&p->gate);
    if (w->tid >= p->jobs) return NULL;
    g_err = 0;
    g_err_binding = -1;
    for (;;) {
        if (w->tid == 0) par_setup(p);
        pthread_barrier_wait(&p->barrier);
        if (p->quit) break;
        par_work(p, w);
        pthread_barrier_wait(&p->barrier);
        if (w->tid == 0) par_merge(p);
    }
    return NULL;
}

/* Process about ``budget`` states on ``jobs`` threads (this one included; fewer when threads
   cannot be created); the result is ex_run's: 0 budget spent, 1 done, 2 stopped at a
   violation, -1 model error, -2 out of memory. */
int ex_run_parallel(explorer *e, int jobs, int64_t budget) {
    if (jobs < 1) jobs = 1;
    if (jobs > MAX_JOBS) jobs = MAX_JOBS;
    par p;
    memset(&p, 0, sizeof p);
    p.e = e;
    p.budget = budget;
    p.workers = calloc((size_t)jobs, sizeof(worker));
    if (!p.workers) return -2;
    for (int j = 0; j < jobs; j++) {
        p.workers[j].p = &p;
        p.workers[j].tid = j;
        for (int k = 0; k < (NINV > 0 ? NINV : 1); k++) p.workers[j].first_bad[k] = -1;
    }
    pthread_mutex_init(&p.gate, NULL);
    pthread_cond_init(&p.opened, NULL);
    pthread_t threads[MAX_JOBS];
    int started = 1;
    for (; started < jobs; started++)
        if (pthread_create(&threads[started], NULL, par_thread, &p.workers[started])) break;
    /* the threads wait at the gate until the barrier counts exactly those that started */
    pthread_mutex_lock(&p.gate);
    p.jobs = started;
    pthread_barrier_init(&p.barrier, NULL, (unsigned)started);
    p.go = 1;
    pthread_cond_broadcast(&p.opened);
    pthread_mutex_unlock(&p.gate);
    par_thread(&p.workers[0]);
    for (int j = 1; j < started; j++) pthread_join(threads[j], NULL);
    pthread_barrier_destroy(&p.barrier);
    pthread_cond_destroy(&p.opened);
    pthread_mutex_destroy(&p.gate);
    free(p.workers);
    return p.status;
}

void ex_stats(explorer *e, int64_t *out) {
    out[0] = e->n; out[1] = e->cursor; out[2] = e->edges; out[3] = e->depth;
    out[4] = e->deadlocks; out[5] = e->full_states; out[6] = e->full_edges;
    out[7] = e->complete; out[8] = e->err; out[9] = e->err_binding;
    out[10] = e->cap * (int64_t)(W * sizeof(uint64_t) + sizeof(uint32_t) + 1)
        + (e->tmask + 1) * (int64_t)sizeof(uint32_t);
    out[11] = e->err_state;
    for (int k = 0; k < NINV; k++) out[12 + k] = e->first_bad[k];
}

int64_t ex_state(explorer *e, int64_t id, uint64_t *out) {
    memcpy(out, e->states + id * W, W * sizeof(uint64_t));
    return e->parents[id] == UINT32_MAX ? -1 : (int64_t)e->parents[id];
}

void ex_free(explorer *e) {
    if (!e) return;
    free(e->states); free(e->parents); free(e->orbits); free(e->table); free(e);
}
"""

_C_CDEF = """
typedef struct explorer explorer;
explorer *ex_new(const uint64_t *init, int orbit, int64_t max_states, uint64_t stop_mask);
int ex_run(explorer *e, int64_t budget);
int ex_run_parallel(explorer *e, int jobs, int64_t budget);
void ex_stats(explorer *e, int64_t *out);
int64_t ex_state(explorer *e, int64_t id, uint64_t *out);
void ex_free(explorer *e);
"""

_STATS = 12  # fixed entries of ex_stats before the per-invariant first violations
_PARALLEL_BUDGET = 1 << 17  # states per ex_run_parallel call (between progress checks)
_MAX_JOBS = 64  # MAX_JOBS of the C driver


def default_jobs() -> int:
    """The CPUs this process may run on (its affinity mask where the platform has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def cache_dir() -> Path:
    """Where compiled explorers are kept: ``$XDG_CACHE_HOME/lashspec`` (``~/.cache/lashspec``),
    or, when that cannot be written to (no home folder, a read-only one), a private folder
    removed when the process exits."""
    root = compile_cache.user_cache_root()
    if root is not None:
        try:
            root.mkdir(parents=True, exist_ok=True)
        except OSError:
            pass
        else:
            if os.access(root, os.W_OK | os.X_OK):
                return root
    return _private_build_dir()


@functools.cache
def _private_build_dir() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="lashspec-explorers-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    return folder


def render_c(model: Model, symmetry: Symmetry | None = None) -> str:
    """The complete C source of the explorer for ``model`` (generated, not yet compiled)."""
    layout = PackedLayout(model)
    gen = _generate(model, layout, "c", symmetry)
    prelude = _C_PRELUDE.format(
        words=layout.words, bindings=gen.bindings, invariants=len(model.invariants)
    )
    return "\n".join([prelude, gen.canon, gen.violations, gen.successors, _C_DRIVER])


_loaded: dict[str, Any] = {}
# -O1: most of -O2's speed on this straight-line code at a third of the compile time
DEFAULT_OPTIMISATION = "-O1"


# -O2 for the full profile: about 1.3x the states per CPU second of -O1 there, for some 12 s
# more of compiling (once: the module is cached)
FULL_OPTIMISATION = "-O2"


def _optimisation(wanted: str | None = None) -> str:
    """``$LASHSPEC_C_OPT`` (tests use -O0: they compare results, and compile 3x faster), else
    ``wanted``, else ``DEFAULT_OPTIMISATION``."""
    return os.environ.get("LASHSPEC_C_OPT") or wanted or DEFAULT_OPTIMISATION


def build_c(source: str, optimisation: str | None = None) -> Any:
    """Compile ``source`` with cffi (API mode) once per hash; returns the module's ``lib``.

    ``optimisation`` is the compiler's -O flag (``$LASHSPEC_C_OPT`` overrides it). Raises
    ``CompilerUnavailableError`` when cffi or a working C compiler is missing.
    """
    optimisation = _optimisation(optimisation)
    digest = hashlib.sha256(
        "\0".join([source, _C_CDEF, sys.version, sys.platform, optimisation]).encode()
    ).hexdigest()[:20]
    name = f"_lashspec_explore_{digest}"
    if name in _loaded:
        return _loaded[name]
    try:
        cffi = importlib.import_module("cffi")
    except ImportError as missing:
        raise CompilerUnavailableError(f"cffi is not installed ({missing})") from None
    from importlib.machinery import EXTENSION_SUFFIXES

    directory = cache_dir()
    target = directory / f"{name}{EXTENSION_SUFFIXES[0]}"
    if not target.exists():
        directory.mkdir(parents=True, exist_ok=True)
        ffi = cffi.FFI()
        ffi.cdef(_C_CDEF)
        ffi.set_source(
            name,
            source,
            extra_compile_args=[optimisation, "-w", "-pthread"],
            extra_link_args=["-pthread"],
        )
        with tempfile.TemporaryDirectory(dir=directory) as tmp:
            try:
                built = ffi.compile(tmpdir=tmp, verbose=False)
            except Exception as failure:  # any build failure means: no C path
                raise CompilerUnavailableError(
                    f"compiling the explorer failed: {failure}"
                ) from None
            os.replace(built, target)  # atomic: a concurrent build of the same hash is harmless
    spec = importlib.util.spec_from_file_location(name, target)
    if spec is None or spec.loader is None:
        raise CompilerUnavailableError(f"cannot load {target}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    _loaded[name] = module
    return module


class CompilerUnavailableError(ExplorationError):
    """The C engine cannot be built here (no cffi, no compiler, no Python headers)."""


def c_engine_available() -> str | None:
    """None when the C engine builds on this machine, else the reason it does not."""
    if importlib.util.find_spec("cffi") is None:
        return "cffi is not installed"
    if shutil.which(os.environ.get("CC", "gcc")) is None and shutil.which("cc") is None:
        return "no C compiler on PATH"
    return None


# --------------------------------------------------------------------------------------------
# Exploration


@dataclass
class FastExplorationResult:
    """Counts and verdicts of one exploration (no graph is kept).

    Under a symmetry, ``state_count``/``edge_count`` count orbit representatives and the
    ``full_*`` counts the states and edges of the unreduced graph they stand for.
    """

    model: Model
    engine: str
    symmetry: Symmetry | None
    state_count: int
    edge_count: int
    full_state_count: int
    full_edge_count: int
    max_depth: int
    deadlocks: int
    violations: dict[str, Violation]
    complete: bool
    elapsed: float
    cpu_seconds: float
    compile_seconds: float
    store_bytes: int
    fallback_reason: str | None = None
    first_bad: dict[str, int] = field(default_factory=dict)
    jobs: int = 1
    """Threads the exploration ran on (``cpu_seconds`` is the CPU time of all of them)."""

    @property
    def states_per_second(self) -> float:
        return self.state_count / self.elapsed if self.elapsed > 0 else float("inf")

    def invariant_status(self) -> dict[str, bool]:
        return {inv.name: inv.name not in self.violations for inv in self.model.invariants}


def fast_explore(
    model: Model,
    *,
    engine: Engine = "auto",
    symmetry: Symmetry | None = None,
    max_states: int | None = None,
    stop_on_violation: bool = False,
    stop_at: Collection[str] | None = None,
    progress: ProgressCallback | None = None,
    progress_interval: float = 2.0,
    max_memory_bytes: int | None = None,
    jobs: int = 1,
    optimisation: str | None = None,
) -> FastExplorationResult:
    """Explore ``model`` breadth first with the C engine (or packed Python, the fallback).

    Same semantics as ``explore.explore`` (same state and edge counts, same BFS order without
    symmetry, so the same shortest counterexamples); ``engine`` forces one engine ("c"
    raises ``CompilerUnavailableError`` when it cannot be built).

    ``jobs`` > 1 runs the C engine on that many threads sharing one visited table, level by
    level: the same counts, depth, deadlocks and verdicts, counterexamples still shortest,
    but state ids and which shortest counterexample is reported may differ from run to run.
    An exploration that can stop early (``max_states``, ``stop_on_violation``, ``stop_at``)
    stays on one thread, since where it stops depends on the order; so does the Python
    fallback. ``optimisation`` is the C compiler's -O flag (``build_c``).
    """
    if jobs < 1:
        raise ExplorationError("jobs must be at least 1")
    if max_states is not None and max_states < 1:
        raise ExplorationError("max_states must be at least 1")
    known = {inv.name for inv in model.invariants}
    stop_names = set(stop_at or ())
    if stop_names - known:
        raise ExplorationError(f"unknown invariants in stop_at: {sorted(stop_names - known)}")
    stop_mask = 0
    for k, inv in enumerate(model.invariants):
        if stop_on_violation or inv.name in stop_names:
            stop_mask |= 1 << k
    reason: str | None = None
    if engine in ("auto", "c"):
        try:
            return _explore_c(
                model,
                symmetry,
                max_states,
                stop_mask,
                progress,
                progress_interval,
                max_memory_bytes,
                jobs if max_states is None and stop_mask == 0 else 1,
                optimisation,
            )
        except (CompilerUnavailableError, UnsupportedModelError) as failure:
            if engine == "c":
                raise
            reason = str(failure)
    result = _explore_python(
        model, symmetry, max_states, stop_mask, progress, progress_interval, max_memory_bytes
    )
    result.fallback_reason = reason
    return result


def _cpu() -> float:
    return time.process_time()


def _explore_c(
    model: Model,
    symmetry: Symmetry | None,
    max_states: int | None,
    stop_mask: int,
    progress: ProgressCallback | None,
    progress_interval: float,
    max_memory_bytes: int | None,
    jobs: int = 1,
    optimisation: str | None = None,
) -> FastExplorationResult:
    jobs = min(jobs, _MAX_JOBS)
    compile_started = time.perf_counter()
    layout = PackedLayout(model)
    lib_module = build_c(render_c(model, symmetry), optimisation)
    ffi, lib = lib_module.ffi, lib_module.lib
    canon_py = _python_canon(model, layout, symmetry)
    compile_seconds = time.perf_counter() - compile_started
    started, cpu_started = time.perf_counter(), _cpu()
    init, orbit = canon_py(layout.pack(model.initial_state()))
    words = ffi.new("uint64_t[]", layout.to_words(init))
    handle = lib.ex_new(words, orbit, max_states or 0, stop_mask)
    if handle == ffi.NULL:
        raise MemoryError("cannot allocate the explorer")
    ninv = len(model.invariants)
    stats = ffi.new("int64_t[]", _STATS + max(ninv, 1))
    watch = ResourceWatch(
        progress,
        every=None,
        interval=progress_interval,
        max_memory_bytes=max_memory_bytes,
        start=started,
        stride=1,
    )
    try:
        while True:
            if jobs > 1:  # cffi releases the GIL for the call; the threads live in C
                status = lib.ex_run_parallel(handle, jobs, _PARALLEL_BUDGET)
            else:
                status = lib.ex_run(handle, 1 << 15)
            lib.ex_stats(handle, stats)
            if status == 0:
                watch.check(stats[1], stats[0], stats[2], stats[3])
                continue
            if status == -2:
                raise MemoryError("the C explorer could not grow its tables")
            if status == -1:
                _raise_model_error(model, layout, _fetch_state(ffi, lib, handle, layout, stats[11]))
            break
        n, processed, edges, depth, deadlocks, full_states, full_edges, complete = (
            int(stats[k]) for k in range(8)
        )
        store_bytes = int(stats[10])
        first_bad = {
            model.invariants[k].name: int(stats[_STATS + k])
            for k in range(ninv)
            if stats[_STATS + k] >= 0
        }
        chains = {
            name: _fetch_chain(ffi, lib, handle, layout, state) for name, state in first_bad.items()
        }
    finally:
        lib.ex_free(handle)
    elapsed, cpu = time.perf_counter() - started, _cpu() - cpu_started
    watch.final(processed, n, edges, depth, elapsed)
    return FastExplorationResult(
        model=model,
        engine="c",
        symmetry=symmetry,
        state_count=n,
        edge_count=edges,
        full_state_count=full_states,
        full_edge_count=full_edges,
        max_depth=depth,
        deadlocks=deadlocks,
        violations=_violations(model, layout, symmetry, chains),
        complete=bool(complete),
        elapsed=elapsed,
        cpu_seconds=cpu,
        compile_seconds=compile_seconds,
        store_bytes=store_bytes,
        first_bad=first_bad,
        jobs=jobs,
    )


def _fetch_state(ffi: Any, lib: Any, handle: Any, layout: PackedLayout, state: int) -> int:
    out = ffi.new("uint64_t[]", layout.words)
    lib.ex_state(handle, state, out)
    return layout.from_words(list(out))


def _fetch_chain(
    ffi: Any, lib: Any, handle: Any, layout: PackedLayout, state: int
) -> list[tuple[int, int]]:
    """(state id, packed state) from the initial state to ``state`` along BFS parents."""
    out = ffi.new("uint64_t[]", layout.words)
    chain: list[tuple[int, int]] = []
    current = state
    while current >= 0:
        parent = lib.ex_state(handle, current, out)
        chain.append((current, layout.from_words(list(out))))
        current = int(parent)
    chain.reverse()
    return chain


def _raise_model_error(model: Model, layout: PackedLayout, packed: int) -> None:
    """Re-run the failing state through the checked Python compilation for the exact error."""
    flat = layout.unpack(packed)
    checked = compile_model(model, checked=True)
    checked.violations(flat)
    for _, _, target in checked.successors(flat):
        layout.pack(target)
    raise ModelError(f"the model failed in state {model.decode(flat)} (no detail available)")


def _python_canon(model: Model, layout: PackedLayout, symmetry: Symmetry | None) -> Any:
    """Only ``canon`` in Python (the C engine needs it for its initial state and replays)."""
    namespace: dict[str, Any] = {}
    source = _generate_canon(model, layout, "py", symmetry) + "\n"
    exec(compile(source, f"<canon {model.name}>", "exec"), namespace)
    return namespace["canon"]


def _python_namespace(
    model: Model, layout: PackedLayout, symmetry: Symmetry | None
) -> dict[str, Any]:
    gen = _generate(model, layout, "py", symmetry)
    source = "\n\n".join([gen.successors, gen.violations, gen.canon]) + "\n"
    bindings = [(a.name, p) for a in model.actions for p in a.bindings()]

    def sort_error(binding: int) -> None:
        name, params = bindings[binding]
        raise SortError(f"{name}{params} sets a variable outside its sort")

    def undefined(message: str) -> Any:
        raise SortError(message)

    namespace: dict[str, Any] = {
        "NoCaseMatchedError": NoCaseMatchedError,
        "_sort_error": sort_error,
        "_undefined": undefined,
    }
    exec(compile(source, f"<packed model {model.name}>", "exec"), namespace)
    return namespace


def _explore_python(
    model: Model,
    symmetry: Symmetry | None,
    max_states: int | None,
    stop_mask: int,
    progress: ProgressCallback | None,
    progress_interval: float,
    max_memory_bytes: int | None,
) -> FastExplorationResult:
    from array import array

    compile_started = time.perf_counter()
    layout = PackedLayout(model)
    namespace = _python_namespace(model, layout, symmetry)
    successors, violations, canon = (
        namespace["successors"],
        namespace["violations"],
        namespace["canon"],
    )
    compile_seconds = time.perf_counter() - compile_started
    started, cpu_started = time.perf_counter(), _cpu()
    watch = ResourceWatch(
        progress,
        every=None,
        interval=progress_interval,
        max_memory_bytes=max_memory_bytes,
        start=started,
    )
    rss_before = resident_memory_bytes()
    init, orbit = canon(layout.pack(model.initial_state()))
    states: list[int] = [init]
    parents = array("q", [-1])
    orbits = array("B", [orbit])
    seen = {init}
    stop = {k for k in range(len(model.invariants)) if stop_mask >> k & 1}
    first_bad: dict[int, int] = {}
    limit = max_states if max_states is not None else -1
    edges = deadlocks = depth = cursor = 0
    full_states, full_edges = orbit, 0
    level_end = 1
    complete = True
    reduce = symmetry is not None
    while cursor < len(states):
        if cursor == level_end:
            depth += 1
            level_end = len(states)
        state = states[cursor]
        bad = violations(state)
        if bad:
            for k in bad:
                first_bad.setdefault(k, cursor)
            if not stop.isdisjoint(bad):
                complete = False
                break
        out = successors(state)
        if not out:
            deadlocks += 1
        edges += len(out)
        if reduce:
            full_edges += len(out) * orbits[cursor]
            for target in out:
                target, size = canon(target)
                if target == state or target in seen:
                    continue
                if len(states) == limit:
                    complete = False
                    continue
                seen.add(target)
                states.append(target)
                parents.append(cursor)
                orbits.append(size)
                full_states += size
        else:
            for target in out:
                if target == state or target in seen:
                    continue
                if len(states) == limit:
                    complete = False
                    continue
                seen.add(target)
                states.append(target)
                parents.append(cursor)
        cursor += 1
        if watch.due(cursor):
            watch.check(cursor, len(states), edges, depth)
    if not reduce:
        full_states, full_edges = len(states), edges
    elapsed, cpu = time.perf_counter() - started, _cpu() - cpu_started
    store_bytes = max(resident_memory_bytes() - rss_before, 0)
    watch.final(cursor, len(states), edges, depth, elapsed)

    def chain(state: int) -> list[tuple[int, int]]:
        path: list[tuple[int, int]] = []
        while state >= 0:
            path.append((state, states[state]))
            state = parents[state]
        path.reverse()
        return path

    names = {model.invariants[k].name: s for k, s in first_bad.items()}
    return FastExplorationResult(
        model=model,
        engine="python",
        symmetry=symmetry,
        state_count=len(states),
        edge_count=edges,
        full_state_count=full_states,
        full_edge_count=full_edges,
        max_depth=depth,
        deadlocks=deadlocks,
        violations=_violations(model, layout, symmetry, {n: chain(s) for n, s in names.items()}),
        complete=complete,
        elapsed=elapsed,
        cpu_seconds=cpu,
        compile_seconds=compile_seconds,
        store_bytes=store_bytes,
        first_bad=names,
    )


def _violations(
    model: Model,
    layout: PackedLayout,
    symmetry: Symmetry | None,
    chains: dict[str, list[tuple[int, int]]],
) -> dict[str, Violation]:
    """Concrete shortest paths: each chain replayed on real states through the compiled model."""
    if not chains:
        return {}
    compiled = compile_model(model)
    canon = _python_canon(model, layout, symmetry) if symmetry else None
    result: dict[str, Violation] = {}
    for name, chain in sorted(chains.items(), key=lambda item: item[1][-1][0]):
        inv = model.invariant(name)
        steps = _replay(compiled, layout, canon, chain)
        result[name] = Violation(inv.name, inv.statement, inv.reference, chain[-1][0], steps)
    return result


def _replay(
    compiled: CompiledModel,
    layout: PackedLayout,
    canon: Any,
    chain: list[tuple[int, int]],
) -> tuple[Step, ...]:
    current = compiled.model.initial_state()
    steps: list[Step] = []
    for state_id, packed in chain[1:]:
        for binding, outcome, target in compiled.successors(current):
            image = layout.pack(target)
            if canon is not None:
                image = canon(image)[0]
            if image == packed:
                b = compiled.bindings[binding]
                steps.append(Step(b.action, b.params, outcome, state_id))
                current = target
                break
        else:
            raise ExplorationError(f"state {state_id} is not a successor of its BFS parent")
    return tuple(steps)


def iter_states(layout: PackedLayout, packed: Sequence[int]) -> Iterator[FlatState]:
    """Flat tuples of packed states (for tests and tools)."""
    for state in packed:
        yield layout.unpack(state)


# --------------------------------------------------------------------------------------------
# The ``full`` profile: DEFAULT_BOUNDS, exhaustively


def full_profile() -> Profile:
    """The ``full`` profile: the model's default bounds (too large for the Python explorer)."""
    return Profile(
        "full",
        DEFAULT_BOUNDS,
        "every bound at its default: explored by the C engine under owner symmetry",
    )


CORE_BOUNDS = replace(
    DEFAULT_BOUNDS, ttl_steps=1, exact_claims=0, head_cas=0, turns=0, multi_cancel=0
)
"""The seven bounds of the core store (owners, incarnations, batch and input slots,
generations, claims per row, commits) at their defaults, and the five that trace format 2
added (time, exact claims, head CAS, turn stamps, multi-target cancel) at their smallest:
about 250 million states, which two threads explore in minutes where ``full`` needs tens of
gigabytes."""


def core_profile() -> Profile:
    """The ``core`` profile: ``CORE_BOUNDS``, explored like ``full``."""
    return Profile(
        "core",
        CORE_BOUNDS,
        "the core store's bounds at their defaults, trace-format-2 extensions at their "
        "smallest: explored by the C engine under owner symmetry",
    )


EXHAUSTIVE_PROFILES = ("core", "full")
"""The profiles only the C engine can finish; ``exhaustive_profile`` builds them."""


def exhaustive_profile(name: str) -> Profile:
    """The exhaustive profile called ``name`` (one of ``EXHAUSTIVE_PROFILES``)."""
    if name == "full":
        return full_profile()
    if name == "core":
        return core_profile()
    raise ValueError(f"no exhaustive profile {name!r} (profiles: {', '.join(EXHAUSTIVE_PROFILES)})")


def fast_check(
    model: Model,
    *,
    symmetry: Symmetry | None = None,
    engine: Engine = "auto",
    max_memory_bytes: int | None = None,
    progress: ProgressCallback | None = None,
    jobs: int | None = None,
    optimisation: str | None = None,
) -> CheckResult:
    """``fast_explore`` summarised as a ``check.CheckResult`` (orbit counts in ``extra``).

    ``states``/``edges`` are those of the unreduced graph; under a symmetry ``deadlocks``
    counts deadlocked orbits. ``jobs`` threads explore (default: ``default_jobs()``).
    """
    result = fast_explore(
        model,
        engine=engine,
        symmetry=symmetry,
        max_memory_bytes=max_memory_bytes,
        progress=progress,
        jobs=default_jobs() if jobs is None else jobs,
        optimisation=optimisation,
    )
    statuses = [
        InvariantStatus(
            inv.name,
            inv.statement,
            inv.reference,
            inv.name not in result.violations,
            result.violations.get(inv.name),
        )
        for inv in model.invariants
    ]
    extra: dict[str, Any] = {
        "engine": result.engine,
        "symmetry": None if symmetry is None else list(symmetry.keyed + symmetry.valued),
        "orbit_states": result.state_count,
        "orbit_edges": result.edge_count,
        "cpu_seconds": round(result.cpu_seconds, 3),
        "store_bytes": result.store_bytes,
        "jobs": result.jobs if result.engine == "c" else 1,
    }
    if result.fallback_reason:
        extra["fallback_reason"] = result.fallback_reason
    return CheckResult(
        model=model.name,
        bounds=dict(model.bounds),
        states=result.full_state_count,
        edges=result.full_edge_count,
        max_depth=result.max_depth,
        deadlocks=result.deadlocks,
        complete=result.complete,
        compile_seconds=result.compile_seconds,
        explore_seconds=result.elapsed,
        invariants=statuses,
        extra=extra,
    )
