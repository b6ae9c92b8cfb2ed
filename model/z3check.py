"""SMT encoding of the model DSL (z3): inductiveness proofs and bounded model checking.

Theory of operation
-------------------
**Symbolic states.** A state is one z3 constant per flat slot of ``Model.layout()``: ``Int`` for
``IntSort`` slots and for ``EnumSort`` slots (holding the member's index), ``Bool`` for
``BoolSort`` slots. ``domain(s)`` says every slot lies in its sort. Map variables are never z3
arrays: a map value is a tuple of per-key values (the same flattening the compiler does), a read
at a constant key is a direct slot, a read at a symbolic key is an if-then-else chain over the
finite key sort, and a write at a symbolic key guards every entry.

**Expressions.** ``Var``/``Next`` read the pre-/post-state, ``Param`` an action parameter (a
z3 constant constrained to its sort, so one query covers every binding of an action) or a
binder's value, quantifiers over finite sorts are unrolled, strings are tracked as guarded
choices and become an enum index only when stored. Constant operands are folded as the
interpreter would see them, and ``And``/``Or``/``Implies``/``Ite``/``ForAll``/``Exists`` are
lazy exactly where the interpreter is lazy: an operand the interpreter never evaluates is never
translated (so ``Implies(ActionIs("a"), Param("p"))`` is fine in any action), and every read
outside a map's key sort is recorded together with the path condition under which the
interpreter would evaluate it. Outcome fields (``SetOf``/``ListOf``) are not translated: a
readable step recomputes its outcome with the interpreter from the decoded states.

**Transitions.** For an action ``A`` with symbolic parameters ``p``: ``enabled_A(s, p)`` is the
guard and some case condition; the post-state of every slot is ``If(c0, v0, If(c1, v1, ...))``
over the case conditions in order (the first matching case wins, as in ``interpret_step``);
each case's post-state includes the monitors' ghost updates, computed from that case's updates
like the interpreter does. Two well-formedness faults are tracked per action: a map read/write
outside its key sort on a path the interpreter takes, or an enabled instance with no matching
case, and a post-state outside the sorts (the bound-disabling guards must prevent it).

**Induction.** For every action ``A`` and every invariant ``I`` (the model's invariants plus
optional auxiliary lemmas): ``domain(s) ∧ ⋀J(s) ∧ p ∈ sorts ∧ T_A(s, p, s') ∧ ¬I(s')`` must be
unsatisfiable. A model is a counterexample to induction (CTI): a pre-state satisfying every
invariant, an action instance and a post-state violating ``I``. The same query with ``¬I(s')``
replaced by the faults above proves the model well-formed on every state satisfying the
invariants. ``lift_bounds`` turns chosen bound parameters into symbolic integers ``N >= base``
(every constant and sort limit that moves with the parameter becomes affine in ``N``), so the
same proof covers every larger bound at once and hence the unbounded system.

**Bounded model checking.** ``Unrolling`` starts from the concrete initial state and adds one
step at a time; a step picks an action by index and that action's parameters. Depth ``d`` is
checked only after ``0..d-1`` were, so the first satisfiable depth for an invariant is the
length of its shortest counterexample, the same number breadth-first exploration reports.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeAlias

import z3

from .dsl import (
    Action,
    ActionIs,
    Add,
    And,
    BoolSort,
    Case,
    Const,
    Count,
    EnumSort,
    Eq,
    Exists,
    Expr,
    FlatState,
    ForAll,
    IllFormedModelError,
    Implies,
    IntSort,
    Invariant,
    Ite,
    Le,
    Let,
    ListOf,
    Lt,
    MapLit,
    MapOf,
    MapSort,
    Model,
    ModelError,
    Monitor,
    Mul,
    Next,
    Not,
    Or,
    OutcomeValue,
    Param,
    Scalar,
    Select,
    SetOf,
    Sort,
    Store,
    Sub,
    UnboundNameError,
    Var,
    children,
    evaluate_outcome,
    interpret_step,
    outcome_as_dict,
    rebuild,
)
from .kernel_model import DEFAULT_BOUNDS, LEMMA_REASONS, Bounds, build_lemmas, build_model
from .mutants import MUTANTS, build_mutant

Term: TypeAlias = Any
"""A z3 expression (the z3 package carries no type information)."""

Sym: TypeAlias = Any
"""A symbolic value: ``bool``/``int`` when known, a z3 ``Bool``/``Int`` term, or an
``_EnumValue``, ``_StrValue`` or ``_MapValue``."""


class TranslationError(ModelError):
    """An expression cannot be encoded (an outcome-only node, or a sort mismatch)."""


# --------------------------------------------------------------------------------------------
# Symbolic values


@dataclass(frozen=True, slots=True)
class _EnumValue:
    """A string held in a slot (or parameter) of enum ``sort``: ``index`` is the member index."""

    sort: EnumSort
    index: Sym


@dataclass(frozen=True, slots=True)
class _StrValue:
    """A string known as mutually exclusive guarded choices ``(member, condition)``."""

    choices: tuple[tuple[str, Sym], ...]


@dataclass(frozen=True, slots=True)
class _MapValue:
    """A map as one value per key of ``key_sort``, in key order."""

    key_sort: Sort
    entries: tuple[Sym, ...]


def _literal(value: Scalar) -> Sym:
    if isinstance(value, str):
        return _StrValue(((value, True),))
    return value


def _is_term(value: Sym) -> bool:
    return isinstance(value, z3.ExprRef)


# isinstance tests on the z3 wrapper classes are much cheaper than z3.is_bool/z3.is_int, and
# the translator only ever builds Boolean and integer terms.
def _is_boolish(value: Sym) -> bool:
    return isinstance(value, bool | z3.BoolRef)


def _is_intish(value: Sym) -> bool:
    if isinstance(value, bool):
        return False
    return isinstance(value, int | z3.ArithRef)


def _as_bool(value: Sym, where: str) -> Sym:
    if not isinstance(value, bool | z3.BoolRef):
        raise TranslationError(f"{where} needs a Boolean, got {value!r}")
    return value


def _as_int(value: Sym, where: str) -> Sym:
    if isinstance(value, bool) or not isinstance(value, int | z3.ArithRef):
        raise TranslationError(f"{where} needs an integer, got {value!r}")
    if isinstance(value, z3.IntNumRef):
        return value.as_long()
    return value


def _bool_term(value: Sym) -> Term:
    return z3.BoolVal(value) if isinstance(value, bool) else value


def _int_term(value: Sym) -> Term:
    return z3.IntVal(value) if isinstance(value, int) else value


def _same(a: Sym, b: Sym) -> bool:
    """Syntactically the same value (so equal in every model)."""
    if _is_term(a) and _is_term(b):
        return bool(a.eq(b))
    if _is_term(a) or _is_term(b):
        return False
    if isinstance(a, _EnumValue) and isinstance(b, _EnumValue):
        return a.sort == b.sort and _same(a.index, b.index)
    if isinstance(a, _MapValue) and isinstance(b, _MapValue):
        return a.key_sort == b.key_sort and all(
            _same(x, y) for x, y in zip(a.entries, b.entries, strict=True)
        )
    if isinstance(a, _StrValue) and isinstance(b, _StrValue):
        return len(a.choices) == len(b.choices) and all(
            x[0] == y[0] and _same(x[1], y[1]) for x, y in zip(a.choices, b.choices, strict=True)
        )
    return type(a) is type(b) and bool(a == b)


def conj(parts: Iterable[Sym]) -> Sym:
    """Folded conjunction of Boolean symbolic values."""
    kept: list[Term] = []
    for part in parts:
        part = _as_bool(part, "And")
        if part is True:
            continue
        if part is False:
            return False
        kept.append(part)
    if not kept:
        return True
    return kept[0] if len(kept) == 1 else z3.And(*kept)


def disj(parts: Iterable[Sym]) -> Sym:
    """Folded disjunction of Boolean symbolic values."""
    kept: list[Term] = []
    for part in parts:
        part = _as_bool(part, "Or")
        if part is False:
            continue
        if part is True:
            return True
        kept.append(part)
    if not kept:
        return False
    return kept[0] if len(kept) == 1 else z3.Or(*kept)


def negate(value: Sym) -> Sym:
    value = _as_bool(value, "Not")
    if isinstance(value, bool):
        return not value
    return z3.Not(value)


def _str_choices(value: Sym) -> tuple[tuple[str, Sym], ...]:
    if isinstance(value, _StrValue):
        return value.choices
    if isinstance(value, _EnumValue):
        return tuple(
            (member, _int_eq(value.index, position))
            for position, member in enumerate(value.sort.members)
        )
    raise TranslationError(f"expected a string value, got {value!r}")


def _int_eq(a: Sym, b: Sym) -> Sym:
    a = _as_int(a, "Eq")
    b = _as_int(b, "Eq")
    if isinstance(a, int) and isinstance(b, int):
        return a == b
    if _same(a, b):
        return True
    return _int_term(a) == _int_term(b)


def _enum_index(value: Sym, sort: EnumSort) -> Sym:
    """The index of a string value in ``sort``; -1 where the value is not a member."""
    if isinstance(value, _EnumValue) and value.sort == sort:
        return value.index
    result: Sym = -1
    for member, cond in reversed(_str_choices(value)):
        position = sort.members.index(member) if member in sort.members else -1
        result = ite(cond, position, result)
    return result


def equal(a: Sym, b: Sym) -> Sym:
    """Symbolic ``Eq`` on scalars (Booleans, integers or strings)."""
    if isinstance(a, _MapValue) or isinstance(b, _MapValue):
        raise TranslationError("Eq compares scalars only")
    if _is_boolish(a) and _is_boolish(b):
        a, b = _as_bool(a, "Eq"), _as_bool(b, "Eq")
        if isinstance(a, bool) and isinstance(b, bool):
            return a == b
        if _same(a, b):
            return True
        if isinstance(a, bool):
            return b if a else negate(b)
        if isinstance(b, bool):
            return a if b else negate(a)
        return a == b
    if _is_intish(a) and _is_intish(b):
        return _int_eq(a, b)
    string_a = isinstance(a, _EnumValue | _StrValue)
    string_b = isinstance(b, _EnumValue | _StrValue)
    if not (string_a and string_b):
        raise TranslationError(f"Eq between different sorts: {a!r} and {b!r}")
    if isinstance(a, _EnumValue) and isinstance(b, _EnumValue) and a.sort == b.sort:
        return _int_eq(a.index, b.index)
    for enum_side, other in ((a, b), (b, a)):
        if (
            isinstance(enum_side, _EnumValue)
            and isinstance(other, _StrValue)
            and len(other.choices) == 1
            and other.choices[0][1] is True
        ):
            member = other.choices[0][0]
            if member not in enum_side.sort.members:
                return False
            return _int_eq(enum_side.index, enum_side.sort.members.index(member))
    right = dict(_str_choices(b))
    return disj(conj((cond, right[s])) for s, cond in _str_choices(a) if s in right)


def ite(cond: Sym, then: Sym, else_: Sym) -> Sym:
    """Symbolic if-then-else on any value (maps entrywise)."""
    cond = _as_bool(cond, "Ite")
    if cond is True:
        return then
    if cond is False:
        return else_
    if _same(then, else_):
        return then
    if _is_boolish(then) and _is_boolish(else_):
        then, else_ = _as_bool(then, "Ite"), _as_bool(else_, "Ite")
        if then is True and else_ is False:
            return cond
        if then is False and else_ is True:
            return negate(cond)
        if then is True:
            return disj((cond, else_))
        if else_ is False:
            return conj((cond, then))
        return z3.If(cond, _bool_term(then), _bool_term(else_))
    if _is_intish(then) and _is_intish(else_):
        return z3.If(cond, _int_term(then), _int_term(else_))
    if isinstance(then, _MapValue) and isinstance(else_, _MapValue):
        if then.key_sort != else_.key_sort:
            raise TranslationError("Ite between maps over different key sorts")
        return _MapValue(
            then.key_sort,
            tuple(ite(cond, x, y) for x, y in zip(then.entries, else_.entries, strict=True)),
        )
    if isinstance(then, _EnumValue | _StrValue) and isinstance(else_, _EnumValue | _StrValue):
        for sort_side in (then, else_):
            if isinstance(sort_side, _EnumValue):
                sort = sort_side.sort
                members = {s for s, _ in _str_choices(then)} | {s for s, _ in _str_choices(else_)}
                if members <= set(sort.members):
                    return _EnumValue(
                        sort, ite(cond, _enum_index(then, sort), _enum_index(else_, sort))
                    )
        left = dict(_str_choices(then))
        right = dict(_str_choices(else_))
        merged = []
        for member in list(left) + [m for m in right if m not in left]:
            merged.append(
                (
                    member,
                    disj(
                        (
                            conj((cond, left.get(member, False))),
                            conj((negate(cond), right.get(member, False))),
                        )
                    ),
                )
            )
        return _StrValue(tuple(merged))
    raise TranslationError(f"Ite between different sorts: {then!r} and {else_!r}")


def _key_conditions(key: Sym, key_sort: Sort) -> list[Sym]:
    """For every key of ``key_sort`` (in order), the condition that ``key`` is that key."""
    conditions = []
    for candidate in key_sort.values():
        if isinstance(key_sort, EnumSort):
            if not isinstance(key, _EnumValue | _StrValue):
                raise TranslationError(f"map over {key_sort} read at a non-string key")
            conditions.append(equal(key, _literal(candidate)))
        elif isinstance(key_sort, BoolSort):
            if not _is_boolish(key):
                raise TranslationError(f"map over {key_sort} read at a non-Boolean key")
            conditions.append(equal(key, candidate))
        else:
            if not _is_intish(key):
                raise TranslationError(f"map over {key_sort} read at a non-integer key")
            conditions.append(_int_eq(key, candidate))
    return conditions


# --------------------------------------------------------------------------------------------
# Symbolic bounds


@dataclass(frozen=True, slots=True)
class Affine:
    """``base + sum(delta * E_p)``: a number that grows by ``delta`` per unit of bound
    parameter ``p`` above the value the model was built with (``E_p >= 0`` is symbolic)."""

    base: int
    deltas: tuple[tuple[str, int], ...] = ()


@dataclass(frozen=True, slots=True)
class _BoundConst(Expr):
    """A constant that moves with bound parameters (made by ``lift_bounds``)."""

    value: Affine


@dataclass(frozen=True)
class SymbolicBounds:
    """Which bound parameters are symbolic, and the sort limits that move with them.

    ``base`` maps each symbolic parameter to the value the model was built with; proofs take
    the parameter to be that value plus a symbolic excess ``E_p >= 0``. ``slot_ranges`` gives,
    per flat slot, the integer range as affine limits (None for Boolean and enum slots);
    ``param_ranges`` does the same per ``(action, parameter)``.
    """

    base: Mapping[str, int]
    slot_ranges: tuple[tuple[Affine, Affine] | None, ...]
    param_ranges: Mapping[tuple[str, str], tuple[Affine, Affine]]


class LiftError(ModelError):
    """A bound parameter cannot be made symbolic (it changes the model's shape)."""


# --------------------------------------------------------------------------------------------
# Translation


@dataclass
class _Faults:
    """Conditions under which the interpreter would fail (undefined read, no case, ...)."""

    items: list[tuple[str, Sym]] = field(default_factory=list)

    def add(self, kind: str, condition: Sym) -> None:
        if condition is not False:
            self.items.append((kind, condition))

    def any(self) -> Sym:
        return disj(c for _, c in self.items)


@dataclass(frozen=True)
class _Ctx:
    pre: Mapping[str, Sym]
    post: Mapping[str, Sym] | None
    action: str | None
    env: Mapping[str, Sym]
    path: tuple[Sym, ...]
    faults: _Faults

    def bind(self, name: str, value: Sym) -> _Ctx:
        return _Ctx(
            self.pre, self.post, self.action, {**self.env, name: value}, self.path, self.faults
        )

    def under(self, condition: Sym) -> _Ctx:
        if condition is True:
            return self
        return _Ctx(
            self.pre, self.post, self.action, self.env, (*self.path, condition), self.faults
        )

    def fault(self, kind: str, failing: Sym) -> None:
        if failing is False:
            return
        self.faults.add(kind, conj((*self.path, failing)))


class Translator:
    """Translates DSL expressions into z3 terms over symbolic states of one model."""

    def __init__(self, model: Model, bound_symbols: Mapping[str, Term] | None = None):
        self.model = model
        self.layout = model.layout()
        self.sorts = model.sorts()
        self.bound_symbols = dict(bound_symbols or {})

    # -- states -------------------------------------------------------------------------------

    def fresh_state(self, prefix: str) -> list[Term]:
        """One z3 constant per flat slot, named ``<prefix>.<variable>[keys]``."""
        terms = []
        for slot in self.layout:
            name = prefix + "." + slot.variable + "".join(f"[{k}]" for k in slot.keys)
            terms.append(z3.Bool(name) if isinstance(slot.sort, BoolSort) else z3.Int(name))
        return terms

    def concrete_slots(self, flat: FlatState) -> list[Sym]:
        """A flat state as slot values (enum members as indices)."""
        return [
            slot.sort.members.index(value) if isinstance(slot.sort, EnumSort) else value
            for slot, value in zip(self.layout, flat, strict=True)
        ]

    def variables(self, slots: Sequence[Sym]) -> dict[str, Sym]:
        """Slot values assembled into one symbolic value per variable."""
        result: dict[str, Sym] = {}
        position = 0
        for var in self.model.variables:
            result[var.name], position = self._assemble(var.sort, slots, position)
        return result

    def _assemble(self, sort: Sort, slots: Sequence[Sym], position: int) -> tuple[Sym, int]:
        if isinstance(sort, MapSort):
            entries = []
            for _ in sort.key.values():
                entry, position = self._assemble(sort.value, slots, position)
                entries.append(entry)
            return _MapValue(sort.key, tuple(entries)), position
        value = slots[position]
        if isinstance(sort, EnumSort):
            value = _EnumValue(sort, value)
        return value, position + 1

    def flatten(self, variables: Mapping[str, Sym]) -> list[Sym]:
        """One symbolic value per slot (enum strings as indices, -1 outside the enum)."""
        slots: list[Sym] = []
        for var in self.model.variables:
            self._flatten(var.sort, variables[var.name], slots, var.name)
        return slots

    def _flatten(self, sort: Sort, value: Sym, out: list[Sym], name: str) -> None:
        if isinstance(sort, MapSort):
            if not isinstance(value, _MapValue) or value.key_sort != sort.key:
                raise TranslationError(f"{name} needs a map over {sort.key}")
            for entry in value.entries:
                self._flatten(sort.value, entry, out, name)
        elif isinstance(sort, EnumSort):
            if not isinstance(value, _EnumValue | _StrValue):
                raise TranslationError(f"{name} needs a string value")
            out.append(_enum_index(value, sort))
        elif isinstance(sort, BoolSort):
            out.append(_as_bool(value, name))
        else:
            out.append(_as_int(value, name))

    # -- sorts --------------------------------------------------------------------------------

    def affine(self, value: Affine) -> Sym:
        result: Sym = value.base
        for name, delta in value.deltas:
            result = _add(result, _mul(delta, self.bound_symbols[name]))
        return result

    def in_sort(self, sort: Sort, value: Sym, limits: tuple[Affine, Affine] | None = None) -> Sym:
        """``value`` (a slot or parameter value) lies in ``sort`` (optionally moved limits)."""
        if isinstance(sort, BoolSort):
            return True
        if isinstance(sort, EnumSort):
            lo: Sym = 0
            hi: Sym = len(sort.members) - 1
        elif isinstance(sort, IntSort):
            if limits is None:
                lo, hi = sort.lo, sort.hi
            else:
                lo, hi = self.affine(limits[0]), self.affine(limits[1])
        else:
            raise TranslationError(f"no slot has sort {sort}")
        return conj((_le(lo, value), _le(value, hi)))

    # -- expressions --------------------------------------------------------------------------

    def translate(
        self,
        expr: Expr,
        pre: Mapping[str, Sym],
        *,
        params: Mapping[str, Sym] | None = None,
        post: Mapping[str, Sym] | None = None,
        action: str | None = None,
        path: tuple[Sym, ...] = (),
        faults: _Faults | None = None,
    ) -> Sym:
        ctx = _Ctx(pre, post, action, dict(params or {}), path, faults or _Faults())
        return self._tr(expr, ctx)

    def _tr(self, expr: Expr, ctx: _Ctx) -> Sym:
        tr = self._tr
        if isinstance(expr, Const):
            return _literal(expr.value)
        if isinstance(expr, _BoundConst):
            return self.affine(expr.value)
        if isinstance(expr, Var):
            if expr.name not in ctx.pre:
                raise UnboundNameError(f"unknown variable {expr.name}")
            return ctx.pre[expr.name]
        if isinstance(expr, Next):
            if ctx.post is None:
                raise UnboundNameError(f"Next({expr.name}) outside a monitor update")
            if expr.name not in ctx.post:
                raise UnboundNameError(f"unknown variable {expr.name}")
            return ctx.post[expr.name]
        if isinstance(expr, Param):
            if expr.name not in ctx.env:
                raise UnboundNameError(f"unbound parameter {expr.name}")
            return ctx.env[expr.name]
        if isinstance(expr, ActionIs):
            if ctx.action is None:
                raise UnboundNameError("ActionIs outside a monitor update")
            return ctx.action == expr.name
        if isinstance(expr, Select):
            mapping = tr(expr.map, ctx)
            key = tr(expr.key, ctx)
            return self._select(mapping, key, ctx)
        if isinstance(expr, Store):
            mapping = tr(expr.map, ctx)
            key = tr(expr.key, ctx)
            value = tr(expr.value, ctx)
            if not isinstance(mapping, _MapValue):
                raise TranslationError("Store on a non-map value")
            conditions = _key_conditions(key, mapping.key_sort)
            ctx.fault("write outside the key sort", negate(disj(conditions)))
            return _MapValue(
                mapping.key_sort,
                tuple(
                    ite(c, value, old) for c, old in zip(conditions, mapping.entries, strict=True)
                ),
            )
        if isinstance(expr, MapOf):
            return _MapValue(
                expr.domain,
                tuple(
                    tr(expr.body, ctx.bind(expr.name, _literal(k))) for k in expr.domain.values()
                ),
            )
        if isinstance(expr, MapLit):
            return _MapValue(expr.key_sort, tuple(tr(v, ctx) for v in expr.values))
        if isinstance(expr, Not):
            return negate(tr(expr.arg, ctx))
        if isinstance(expr, And | Or):
            return self._junction(isinstance(expr, And), [(a, ctx) for a in expr.args], ctx)
        if isinstance(expr, Implies):
            lhs = _as_bool(tr(expr.lhs, ctx), "Implies")
            if lhs is False:
                return True
            rhs = _as_bool(tr(expr.rhs, ctx.under(lhs)), "Implies")
            return disj((negate(lhs), rhs))
        if isinstance(expr, Eq):
            return equal(tr(expr.lhs, ctx), tr(expr.rhs, ctx))
        if isinstance(expr, Lt):
            return _lt(tr(expr.lhs, ctx), tr(expr.rhs, ctx))
        if isinstance(expr, Le):
            return _le(tr(expr.lhs, ctx), tr(expr.rhs, ctx))
        if isinstance(expr, Add):
            return _add(tr(expr.lhs, ctx), tr(expr.rhs, ctx))
        if isinstance(expr, Sub):
            return _sub(tr(expr.lhs, ctx), tr(expr.rhs, ctx))
        if isinstance(expr, Mul):
            return _mul(tr(expr.lhs, ctx), tr(expr.rhs, ctx))
        if isinstance(expr, Ite):
            cond = _as_bool(tr(expr.cond, ctx), "Ite")
            if cond is True:
                return tr(expr.then, ctx)
            if cond is False:
                return tr(expr.else_, ctx)
            then = tr(expr.then, ctx.under(cond))
            else_ = tr(expr.else_, ctx.under(negate(cond)))
            return ite(cond, then, else_)
        if isinstance(expr, Let):
            return tr(expr.body, ctx.bind(expr.name, tr(expr.value, ctx)))
        if isinstance(expr, ForAll | Exists):
            bound = [(expr.body, ctx.bind(expr.name, _literal(k))) for k in expr.domain.values()]
            return self._junction(isinstance(expr, ForAll), bound, ctx)
        if isinstance(expr, Count):
            total: Sym = 0
            for k in expr.domain.values():
                holds = _as_bool(tr(expr.body, ctx.bind(expr.name, _literal(k))), "Count")
                total = _add(total, ite(holds, 1, 0))
            return total
        if isinstance(expr, SetOf | ListOf):
            raise TranslationError(f"{type(expr).__name__} is an outcome-only value")
        raise TranslationError(f"cannot translate node {type(expr).__name__}")

    def _junction(self, is_and: bool, operands: list[tuple[Expr, _Ctx]], ctx: _Ctx) -> Sym:
        """Left-to-right, short-circuiting And/Or: later operands are evaluated only on the
        path where the earlier ones did not decide the result."""
        kept: list[Sym] = []
        for operand, operand_ctx in operands:
            inner = operand_ctx
            for earlier in kept:
                inner = inner.under(earlier if is_and else negate(earlier))
            value = _as_bool(self._tr(operand, inner), "And" if is_and else "Or")
            if value is (not is_and):
                return not is_and
            if value is is_and:
                continue
            kept.append(value)
        return conj(kept) if is_and else disj(kept)

    def _select(self, mapping: Sym, key: Sym, ctx: _Ctx) -> Sym:
        if not isinstance(mapping, _MapValue):
            raise TranslationError("Select on a non-map value")
        conditions = _key_conditions(key, mapping.key_sort)
        ctx.fault("read outside the key sort", negate(disj(conditions)))
        for condition, entry in zip(conditions, mapping.entries, strict=True):
            if condition is True:
                return entry
        # An undefined read (recorded above) takes the last entry's value.
        result = mapping.entries[-1]
        for condition, entry in reversed(
            list(zip(conditions[:-1], mapping.entries[:-1], strict=True))
        ):
            result = ite(condition, entry, result)
        return result


def _arith(name: str, a: Sym, b: Sym) -> tuple[Sym, Sym]:
    return _as_int(a, name), _as_int(b, name)


def _lt(a: Sym, b: Sym) -> Sym:
    a, b = _arith("Lt", a, b)
    if isinstance(a, int) and isinstance(b, int):
        return a < b
    if _same(a, b):
        return False
    return _int_term(a) < _int_term(b)


def _le(a: Sym, b: Sym) -> Sym:
    a, b = _arith("Le", a, b)
    if isinstance(a, int) and isinstance(b, int):
        return a <= b
    if _same(a, b):
        return True
    return _int_term(a) <= _int_term(b)


def _add(a: Sym, b: Sym) -> Sym:
    a, b = _arith("Add", a, b)
    if isinstance(a, int) and isinstance(b, int):
        return a + b
    if isinstance(b, int) and b == 0:
        return a
    if isinstance(a, int) and a == 0:
        return b
    return _int_term(a) + _int_term(b)


def _sub(a: Sym, b: Sym) -> Sym:
    a, b = _arith("Sub", a, b)
    if isinstance(a, int) and isinstance(b, int):
        return a - b
    if isinstance(b, int) and b == 0:
        return a
    return _int_term(a) - _int_term(b)


def _mul(a: Sym, b: Sym) -> Sym:
    a, b = _arith("Mul", a, b)
    if isinstance(a, int) and isinstance(b, int):
        return a * b
    for one, other in ((a, b), (b, a)):
        if isinstance(one, int):
            if one == 0:
                return 0
            if one == 1:
                return other
    return _int_term(a) * _int_term(b)


# --------------------------------------------------------------------------------------------
# Actions


@dataclass
class ActionEncoding:
    """One action over a symbolic pre-state with symbolic parameters.

    ``enabled`` holds iff the guard and some case condition hold; ``post`` gives every slot's
    value after the transition (meaningful when enabled); ``case_conditions`` are the case
    conditions in order (the first that holds is taken); ``faults`` holds iff the interpreter
    would fail on this instance (an undefined map access on its evaluation path, or an
    enabled guard with no matching case); ``params_in_sort`` constrains the parameters.
    """

    action: Action
    params: dict[str, Sym]
    param_terms: dict[str, Term]
    params_in_sort: Sym
    guard: Sym
    case_conditions: list[Sym]
    enabled: Sym
    post: list[Sym]
    faults: Sym
    fault_kinds: tuple[tuple[str, Sym], ...] = ()

    def taken_case(self, model_eval: Callable[[Sym], Any]) -> int | None:
        """The index of the case taken under a z3 model (None when disabled)."""
        if not model_eval(self.guard):
            return None
        for position, condition in enumerate(self.case_conditions):
            if model_eval(condition):
                return position
        return None


def _param_value(sort: Sort, term: Term) -> Sym:
    if isinstance(sort, EnumSort):
        return _EnumValue(sort, term)
    return term


def encode_action(
    translator: Translator,
    action: Action,
    pre_slots: Sequence[Sym],
    tag: str,
    symbolic: SymbolicBounds | None = None,
) -> ActionEncoding:
    """Encode ``action`` from the pre-state ``pre_slots``; parameters are fresh z3 constants
    named ``<tag>.<param>``."""
    model = translator.model
    pre = translator.variables(pre_slots)
    param_terms: dict[str, Term] = {}
    params: dict[str, Sym] = {}
    in_sort: list[Sym] = []
    for name, sort in action.params:
        term = z3.Bool(f"{tag}.{name}") if isinstance(sort, BoolSort) else z3.Int(f"{tag}.{name}")
        param_terms[name] = term
        params[name] = _param_value(sort, term)
        limits = None if symbolic is None else symbolic.param_ranges.get((action.name, name))
        in_sort.append(translator.in_sort(sort, term, limits))
    faults = _Faults()
    guard = _as_bool(translator.translate(action.guard, pre, params=params, faults=faults), "guard")
    conditions: list[Sym] = []
    per_case: list[list[Sym]] = []
    path: tuple[Sym, ...] = (guard,)
    for case in action.cases:
        if guard is False:
            break
        condition = _as_bool(
            translator.translate(case.condition, pre, params=params, path=path, faults=faults),
            f"{action.name} case condition",
        )
        conditions.append(condition)
        if condition is False:
            per_case.append([])
            continue
        per_case.append(
            _case_post(translator, model, action, case, pre, params, (*path, condition), faults)
        )
        if condition is True:
            break
        path = (*path, negate(condition))
    faults.add("no case matches", conj((guard, *[negate(c) for c in conditions])))
    post: list[Sym] = list(pre_slots)
    live = [(c, values) for c, values in zip(conditions, per_case, strict=True) if c is not False]
    if live:
        post = list(live[-1][1])
        for condition, values in reversed(live[:-1]):
            post = [ite(condition, v, old) for v, old in zip(values, post, strict=True)]
    enabled = conj((guard, disj(conditions)))
    return ActionEncoding(
        action=action,
        params=params,
        param_terms=param_terms,
        params_in_sort=conj(in_sort),
        guard=guard,
        case_conditions=conditions,
        enabled=enabled,
        post=post,
        faults=faults.any(),
        fault_kinds=tuple(faults.items),
    )


def _case_post(
    translator: Translator,
    model: Model,
    action: Action,
    case: Case,
    pre: Mapping[str, Sym],
    params: Mapping[str, Sym],
    path: tuple[Sym, ...],
    faults: _Faults,
) -> list[Sym]:
    post = dict(pre)
    for target, expr in case.updates:
        post[target] = translator.translate(expr, pre, params=params, path=path, faults=faults)
    for monitor in model.monitors:
        # the interpreter updates monitors in order, each seeing the earlier ones' results
        post[monitor.variable] = translator.translate(
            monitor.update,
            pre,
            params=params,
            post=post,
            action=action.name,
            path=path,
            faults=faults,
        )
    return translator.flatten(post)


# --------------------------------------------------------------------------------------------
# Reading z3 models back


def _evaluate(z3_model: Any, value: Sym) -> Any:
    if isinstance(value, bool | int):
        return value
    result = z3_model.eval(value, model_completion=True)
    if z3.is_true(result):
        return True
    if z3.is_false(result):
        return False
    return result.as_long()


def _read_state(translator: Translator, z3_model: Any, slots: Sequence[Sym]) -> FlatState:
    values = []
    for slot, value in zip(translator.layout, slots, strict=True):
        concrete = _evaluate(z3_model, value)
        if isinstance(slot.sort, EnumSort):
            concrete = (
                slot.sort.members[concrete]
                if 0 <= concrete < len(slot.sort.members)
                else f"<{concrete}>"
            )
        values.append(concrete)
    return tuple(values)


def _read_params(encoding: ActionEncoding, z3_model: Any) -> dict[str, Scalar]:
    params: dict[str, Scalar] = {}
    for name, sort in encoding.action.params:
        value = _evaluate(z3_model, encoding.param_terms[name])
        if isinstance(sort, EnumSort):
            value = sort.members[value]
        params[name] = value
    return params


def _replay_outcome(
    model: Model, pre: FlatState, action: str, params: Mapping[str, Scalar]
) -> tuple[OutcomeValue | None, FlatState | None, str]:
    """The interpreter's outcome and post-state for one step ('' or the error it raised)."""
    try:
        step = interpret_step(model, model.decode(pre), model.action(action), params)
    except ModelError as error:
        return None, None, f"{type(error).__name__}: {error}"
    if step is None:
        return None, None, "not enabled"
    return step.outcome, model.encode(step.state), ""


def _jsonable(value: Any) -> Any:
    if isinstance(value, frozenset | set):
        return sorted(value)
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    return value


def _describe_params(params: Mapping[str, Scalar]) -> str:
    return ", ".join(f"{k}={v!r}" for k, v in params.items())


def _describe_outcome(outcome: OutcomeValue | None) -> str:
    if outcome is None:
        return "?"
    fields = outcome_as_dict(outcome)
    tag = fields.pop("tag")
    if not fields:
        return str(tag)
    return f"{tag}{{{', '.join(f'{k}={v!r}' for k, v in fields.items())}}}"


def state_difference(
    model: Model, before: FlatState, after: FlatState
) -> dict[str, tuple[Any, Any]]:
    """Slots that differ between two flat states, keyed ``variable[key]...``."""
    changes: dict[str, tuple[Any, Any]] = {}
    for slot, old, new in zip(model.layout(), before, after, strict=True):
        if old != new:
            changes[slot.variable + "".join(f"[{k}]" for k in slot.keys)] = (old, new)
    return changes


@dataclass(frozen=True)
class EncodedStep:
    """What the z3 encoding says one action instance does from one concrete state."""

    enabled: bool
    faults: bool
    case: int | None
    tag: str | None
    post: FlatState | None


class StepOracle:
    """Single steps answered by solving the encoding with the pre-state and parameters fixed
    (cross-checks the encoding against ``interpret_step``)."""

    def __init__(self, model: Model):
        self.model = model
        self.translator = Translator(model)
        self.pre = self.translator.fresh_state("pre")
        self.encodings = {
            action.name: encode_action(self.translator, action, self.pre, f"param.{action.name}")
            for action in model.actions
        }
        self.solver = z3.Solver()

    def step(self, state: FlatState, action: str, params: Mapping[str, Scalar]) -> EncodedStep:
        encoding = self.encodings[action]
        fixed = [
            _slot_equal(term, value)
            for term, value in zip(self.pre, self.translator.concrete_slots(state), strict=True)
        ]
        for name, sort in encoding.action.params:
            value = params[name]
            if isinstance(sort, EnumSort):
                value = sort.members.index(str(value))
            fixed.append(_slot_equal(encoding.param_terms[name], value))
        solver = self.solver
        solver.push()
        solver.add(_bool_term(conj(fixed)))
        faults = _check_with(solver, encoding.faults)
        enabled = _check_with(solver, encoding.enabled)
        case = tag = post = None
        if enabled:
            z3_model = solver.model()
            post = _read_state(self.translator, z3_model, encoding.post)
            case = encoding.taken_case(lambda value: _evaluate(z3_model, value))
            tag = None if case is None else encoding.action.cases[case].outcome.tag
        solver.pop()
        return EncodedStep(enabled, faults, case, tag, post)


def _check_with(solver: Any, condition: Sym) -> bool:
    condition = _as_bool(condition, "query")
    if condition is False:
        return False
    verdict = solver.check() if condition is True else solver.check(condition)
    if verdict == z3.unknown:
        raise ModelError(f"z3 returned unknown: {solver.reason_unknown()}")
    return bool(verdict == z3.sat)


# --------------------------------------------------------------------------------------------
# Inductiveness


@dataclass(frozen=True)
class InductionCounterexample:
    """A counterexample to induction: a pre-state satisfying every hypothesis, an action
    instance and the post-state it leads to (``problem`` names what fails there)."""

    problem: str
    action: str
    params: Mapping[str, Scalar]
    pre_state: FlatState
    post_state: FlatState | None
    outcome: OutcomeValue | None
    violated_after: tuple[str, ...]

    def describe(self, model: Model) -> str:
        lines = [f"counterexample to induction: {self.problem}"]
        lines.append("  pre-state (satisfies every invariant and lemma):")
        for name, value in model.decode(self.pre_state).items():
            lines.append(f"    {name} = {value!r}")
        lines.append(
            f"  step: {self.action}({_describe_params(self.params)}) -> "
            f"{_describe_outcome(self.outcome)}"
        )
        if self.post_state is not None:
            lines.append("  post-state changes:")
            for slot, (old, new) in state_difference(
                model, self.pre_state, self.post_state
            ).items():
                lines.append(f"    {slot}: {old!r} -> {new!r}")
        if self.violated_after:
            lines.append(f"  violated after the step: {', '.join(self.violated_after)}")
        return "\n".join(lines)

    def to_dict(self, model: Model) -> dict[str, Any]:
        return {
            "problem": self.problem,
            "action": self.action,
            "params": dict(self.params),
            "outcome": None if self.outcome is None else _jsonable(outcome_as_dict(self.outcome)),
            "pre_state": _jsonable(model.decode(self.pre_state)),
            "post_state": None
            if self.post_state is None
            else _jsonable(model.decode(self.post_state)),
            "violated_after": list(self.violated_after),
        }


@dataclass(frozen=True)
class InvariantProof:
    """The verdict for one invariant (or lemma): initial state and inductive step."""

    name: str
    statement: str
    reference: str
    lemma: bool
    holds_initially: bool
    inductive: bool
    counterexamples: tuple[InductionCounterexample, ...]
    seconds: float

    @property
    def proved(self) -> bool:
        return self.holds_initially and self.inductive


@dataclass(frozen=True)
class ActionWellFormedness:
    """Whether an action is well-formed on every state satisfying the invariants: no undefined
    map access on an evaluated path, a matching case whenever enabled, post-state in sorts."""

    action: str
    ok: bool
    counterexample: InductionCounterexample | None


@dataclass
class InductionReport:
    model: Model
    symbolic_bounds: tuple[str, ...]
    proofs: list[InvariantProof]
    well_formed: list[ActionWellFormedness]
    seconds: float

    @property
    def inductive(self) -> bool:
        """Every invariant and lemma holds initially and is preserved by every action, and
        every action is well-formed on the invariant states."""
        return all(p.proved for p in self.proofs) and all(w.ok for w in self.well_formed)

    def proof(self, name: str) -> InvariantProof:
        for proof in self.proofs:
            if proof.name == name:
                return proof
        raise KeyError(name)

    def failed(self) -> list[str]:
        return [p.name for p in self.proofs if not p.proved]

    def to_dict(self) -> dict[str, Any]:
        model = self.model
        return {
            "model": model.name,
            "bounds": dict(model.bounds),
            "symbolic_bounds": list(self.symbolic_bounds),
            "inductive": self.inductive,
            "seconds": round(self.seconds, 3),
            "invariants": [
                {
                    "name": p.name,
                    "statement": p.statement,
                    "reference": p.reference,
                    "lemma": p.lemma,
                    "holds_initially": p.holds_initially,
                    "inductive": p.inductive,
                    "seconds": round(p.seconds, 3),
                    "counterexamples": [c.to_dict(model) for c in p.counterexamples],
                }
                for p in self.proofs
            ],
            "well_formed": [
                {
                    "action": w.action,
                    "ok": w.ok,
                    "counterexample": None
                    if w.counterexample is None
                    else w.counterexample.to_dict(model),
                }
                for w in self.well_formed
            ],
        }


@dataclass(frozen=True)
class InductionProgress:
    """Reported after each action's queries."""

    action: str
    done: int
    total: int
    elapsed: float


def _bound_symbols(symbolic: SymbolicBounds | None) -> dict[str, Term]:
    if symbolic is None:
        return {}
    return {name: z3.Int(f"excess.{name}") for name in symbolic.base}


def state_in_sorts(
    translator: Translator, slots: Sequence[Sym], symbolic: SymbolicBounds | None = None
) -> Sym:
    """Every slot of ``slots`` lies in its sort (with moved limits under ``symbolic``)."""
    parts = []
    for position, (slot, value) in enumerate(zip(translator.layout, slots, strict=True)):
        limits = None if symbolic is None else symbolic.slot_ranges[position]
        parts.append(translator.in_sort(slot.sort, value, limits))
    return conj(parts)


def _bound_floor(translator: Translator, symbolic: SymbolicBounds | None) -> Sym:
    if symbolic is None:
        return True
    return conj(_le(value, translator.bound_symbols[name]) for name, value in symbolic.base.items())


def prove_inductive(
    model: Model,
    lemmas: Sequence[Invariant] = (),
    *,
    symbolic: SymbolicBounds | None = None,
    invariants: Collection[str] | None = None,
    actions: Collection[str] | None = None,
    pre_state: FlatState | None = None,
    max_counterexamples: int = 1,
    progress: Callable[[InductionProgress], None] | None = None,
) -> InductionReport:
    """Check that the model's invariants together with ``lemmas`` are inductive.

    For every action and every invariant ``I`` (restricted to ``invariants`` when given),
    ``domain(s) ∧ ⋀hypotheses(s) ∧ T(s, s') ⇒ I(s')`` is checked with z3, where the hypotheses
    are all invariants and lemmas; ``I`` must also hold in the initial state. Each action is
    also checked to be well-formed on the hypothesis states. Up to ``max_counterexamples``
    counterexamples to induction (different actions) are kept per invariant. With
    ``symbolic`` (from ``lift_bounds``) the chosen bound parameters are symbolic and the proof
    covers every larger bound. ``actions`` restricts the check to the named actions;
    ``pre_state`` fixes the pre-state (to ask whether one given state, e.g. a reachable one,
    is a counterexample to induction).
    """
    started = time.perf_counter()
    translator = Translator(model, _bound_symbols(symbolic))
    goals = [(inv, False) for inv in model.invariants] + [(lemma, True) for lemma in lemmas]
    names = [inv.name for inv, _ in goals]
    if len(set(names)) != len(names):
        raise IllFormedModelError("invariant and lemma names must be distinct")
    if invariants is not None:
        unknown = set(invariants) - set(names)
        if unknown:
            raise IllFormedModelError(f"unknown invariants {sorted(unknown)}")
    chosen = [a for a in model.actions if actions is None or a.name in actions]
    if actions is not None and len(chosen) != len(set(actions)):
        raise IllFormedModelError(f"unknown actions in {sorted(actions)}")
    pre_slots = translator.fresh_state("pre")
    post_slots = translator.fresh_state("post")
    pre = translator.variables(pre_slots)
    post = translator.variables(post_slots)
    hypotheses = [_as_bool(translator.translate(inv.expr, pre), inv.name) for inv, _ in goals]
    after = [_as_bool(translator.translate(inv.expr, post), inv.name) for inv, _ in goals]
    initial = translator.variables(translator.concrete_slots(model.initial_state()))
    floor = _bound_floor(translator, symbolic)
    holds_initially = [_valid(floor, translator.translate(inv.expr, initial)) for inv, _ in goals]
    context = [state_in_sorts(translator, pre_slots, symbolic), floor, *hypotheses]
    if pre_state is not None:
        fixed = translator.concrete_slots(pre_state)
        context.extend(_slot_equal(a, b) for a, b in zip(pre_slots, fixed, strict=True))
    counterexamples: list[list[InductionCounterexample]] = [[] for _ in goals]
    seconds = [0.0 for _ in goals]
    well_formed: list[ActionWellFormedness] = []
    for done, action in enumerate(chosen):
        encoding = encode_action(translator, action, pre_slots, f"param.{action.name}", symbolic)
        solver = z3.Solver()
        for fact in (*context, encoding.params_in_sort):
            solver.add(_bool_term(fact))
        problem = _fault_counterexample(model, translator, encoding, solver, pre_slots)
        solver.add(_bool_term(encoding.enabled))
        for term, value in zip(post_slots, encoding.post, strict=True):
            solver.add(_slot_term_equal(term, value))
        if problem is None:
            solver.push()
            solver.add(_bool_term(negate(state_in_sorts(translator, post_slots, symbolic))))
            if _check(solver):
                problem = _counterexample(
                    model,
                    translator,
                    encoding,
                    solver.model(),
                    pre_slots,
                    post_slots,
                    f"{action.name} leaves the sorts",
                    (),
                )
            solver.pop()
        well_formed.append(ActionWellFormedness(action.name, problem is None, problem))
        for position, (inv, _) in enumerate(goals):
            if invariants is not None and inv.name not in invariants:
                continue
            tick = time.perf_counter()
            solver.push()
            solver.add(_bool_term(negate(after[position])))
            if _check(solver) and len(counterexamples[position]) < max_counterexamples:
                z3_model = solver.model()
                broken = tuple(
                    name for name, a in zip(names, after, strict=True) if not _evaluate(z3_model, a)
                )
                counterexamples[position].append(
                    _counterexample(
                        model,
                        translator,
                        encoding,
                        z3_model,
                        pre_slots,
                        post_slots,
                        f"{inv.name} is not preserved by {action.name}",
                        broken,
                    )
                )
            solver.pop()
            seconds[position] += time.perf_counter() - tick
        if progress is not None:
            progress(
                InductionProgress(action.name, done + 1, len(chosen), time.perf_counter() - started)
            )
    proofs = [
        InvariantProof(
            inv.name,
            inv.statement,
            inv.reference,
            is_lemma,
            holds_initially[position],
            not counterexamples[position],
            tuple(counterexamples[position]),
            seconds[position],
        )
        for position, (inv, is_lemma) in enumerate(goals)
        if invariants is None or inv.name in invariants
    ]
    return InductionReport(
        model,
        tuple(symbolic.base) if symbolic is not None else (),
        proofs,
        well_formed,
        time.perf_counter() - started,
    )


def _check(solver: Any) -> bool:
    """True when satisfiable; an ``unknown`` answer is an error, never a proof."""
    verdict = solver.check()
    if verdict == z3.unknown:
        raise ModelError(f"z3 returned unknown: {solver.reason_unknown()}")
    return bool(verdict == z3.sat)


def _valid(assumption: Sym, claim: Sym) -> bool:
    claim = _as_bool(claim, "claim")
    if isinstance(claim, bool):
        return claim
    solver = z3.Solver()
    solver.add(_bool_term(assumption), _bool_term(negate(claim)))
    return not _check(solver)


def _slot_term_equal(term: Term, value: Sym) -> Term:
    return term == (_bool_term(value) if isinstance(term, z3.BoolRef) else _int_term(value))


def _fault_counterexample(
    model: Model,
    translator: Translator,
    encoding: ActionEncoding,
    solver: Any,
    pre_slots: Sequence[Sym],
) -> InductionCounterexample | None:
    if encoding.faults is False:
        return None
    solver.push()
    solver.add(_bool_term(encoding.faults))
    problem = None
    if _check(solver):
        z3_model = solver.model()
        kinds = sorted({kind for kind, c in encoding.fault_kinds if _evaluate(z3_model, c)})
        problem = _counterexample(
            model,
            translator,
            encoding,
            z3_model,
            pre_slots,
            None,
            f"{encoding.action.name}: {', '.join(kinds)}",
            (),
        )
    solver.pop()
    return problem


def _counterexample(
    model: Model,
    translator: Translator,
    encoding: ActionEncoding,
    z3_model: Any,
    pre_slots: Sequence[Sym],
    post_slots: Sequence[Sym] | None,
    problem: str,
    broken: tuple[str, ...],
) -> InductionCounterexample:
    pre_state = _read_state(translator, z3_model, pre_slots)
    params = _read_params(encoding, z3_model)
    post_state = None if post_slots is None else _read_state(translator, z3_model, post_slots)
    # The outcome of the case z3 took, evaluated by the interpreter; evaluating it directly
    # (rather than replaying the step) also works for states beyond the base bounds.
    outcome: OutcomeValue | None = None
    case = encoding.taken_case(lambda value: _evaluate(z3_model, value))
    if case is not None:
        try:
            outcome = evaluate_outcome(
                encoding.action.cases[case].outcome, model.decode(pre_state), params
            )
        except ModelError:
            outcome = None
    return InductionCounterexample(
        problem, encoding.action.name, params, pre_state, post_state, outcome, broken
    )


# --------------------------------------------------------------------------------------------
# Bounded model checking

WELL_FORMED = "well_formed"
"""Pseudo-invariant reported by BMC: every reachable state is in its sorts and no action
instance fails to evaluate there (the explorer would raise instead)."""


@dataclass(frozen=True)
class TraceStep:
    """One step of a counterexample: the action instance, its outcome and the state reached."""

    action: str
    params: Mapping[str, Scalar]
    outcome: OutcomeValue | None
    state: FlatState

    @property
    def tag(self) -> str:
        return "?" if self.outcome is None else self.outcome[0]

    def describe(self) -> str:
        return (
            f"{self.action}({_describe_params(self.params)}) -> {_describe_outcome(self.outcome)}"
        )


@dataclass(frozen=True)
class BmcCounterexample:
    """The shortest path from the initial state to a state violating ``invariant``."""

    invariant: str
    statement: str
    reference: str
    initial: FlatState
    steps: tuple[TraceStep, ...]

    @property
    def length(self) -> int:
        return len(self.steps)

    @property
    def final_state(self) -> FlatState:
        return self.steps[-1].state if self.steps else self.initial

    def describe(self) -> str:
        lines = [f"{self.invariant} violated after {self.length} steps ({self.reference}):"]
        lines.append(f"  {self.statement}")
        lines.extend(f"  {n + 1:2d}. {step.describe()}" for n, step in enumerate(self.steps))
        return "\n".join(lines)

    def to_dict(self, model: Model) -> dict[str, Any]:
        return {
            "invariant": self.invariant,
            "statement": self.statement,
            "reference": self.reference,
            "length": self.length,
            "steps": [
                {
                    "action": step.action,
                    "params": dict(step.params),
                    "outcome": None
                    if step.outcome is None
                    else _jsonable(outcome_as_dict(step.outcome)),
                }
                for step in self.steps
            ],
            "final_state": _jsonable(model.decode(self.final_state)),
        }


@dataclass(frozen=True)
class BmcProgress:
    """Reported after each depth."""

    depth: int
    depth_seconds: float
    elapsed: float
    violations: int


@dataclass
class BmcResult:
    model: Model
    depth: int
    checked_depth: int
    violations: dict[str, BmcCounterexample]
    depth_seconds: list[float]
    seconds: float

    @property
    def complete(self) -> bool:
        """Every depth up to the requested one was checked."""
        return self.checked_depth >= self.depth

    @property
    def ok(self) -> bool:
        """No invariant is violated within the checked depth."""
        return not self.violations

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": self.model.name,
            "bounds": dict(self.model.bounds),
            "depth": self.depth,
            "checked_depth": self.checked_depth,
            "complete": self.complete,
            "ok": self.ok,
            "seconds": round(self.seconds, 3),
            "depth_seconds": [round(s, 3) for s in self.depth_seconds],
            "invariants": [
                {
                    "name": inv.name,
                    "statement": inv.statement,
                    "reference": inv.reference,
                    "holds_to_depth": inv.name not in self.violations,
                    "counterexample": None
                    if inv.name not in self.violations
                    else self.violations[inv.name].to_dict(self.model),
                }
                for inv in self.model.invariants
            ],
            "well_formed": None
            if WELL_FORMED not in self.violations
            else self.violations[WELL_FORMED].to_dict(self.model),
        }


class Unrolling:
    """The transition relation unrolled from the initial state, one step at a time.

    ``states[k]`` holds the slot values after ``k`` steps (the initial state is concrete);
    step ``k`` picks action ``actions[selector[k]]`` with that action's parameters. Queries
    about depth ``k`` are asked with ``solve(condition)`` after ``extend_to(k)``.
    """

    def __init__(self, model: Model, solver: Any = None):
        self.model = model
        self.translator = Translator(model)
        self.solver = z3.Solver() if solver is None else solver
        self.states: list[list[Sym]] = [self.translator.concrete_slots(model.initial_state())]
        self.selectors: list[Term] = []
        self.encodings: list[list[ActionEncoding]] = []

    @property
    def depth(self) -> int:
        return len(self.states) - 1

    def variables(self, depth: int) -> dict[str, Sym]:
        return self.translator.variables(self.states[depth])

    def encodings_at(self, depth: int) -> list[ActionEncoding]:
        """Every action encoded from the state at ``depth`` (made once, then reused)."""
        while len(self.encodings) <= depth:
            k = len(self.encodings)
            self.encodings.append(
                [
                    encode_action(self.translator, a, self.states[k], f"step{k}.{a.name}")
                    for a in self.model.actions
                ]
            )
        return self.encodings[depth]

    def extend_to(self, depth: int) -> None:
        while self.depth < depth:
            k = self.depth
            encodings = self.encodings_at(k)
            selector = z3.Int(f"step{k}.action")
            nxt = self.translator.fresh_state(f"s{k + 1}")
            solver = self.solver
            solver.add(selector >= 0, selector < len(encodings))
            choices = []
            for index, encoding in enumerate(encodings):
                solver.add(_bool_term(encoding.params_in_sort))
                chosen = selector == index
                if encoding.enabled is not False:
                    choices.append(z3.And(chosen, _bool_term(encoding.enabled)))
            solver.add(z3.Or(*choices) if choices else z3.BoolVal(False))
            for slot, term in enumerate(nxt):
                value: Sym = self.states[k][slot]
                for index, encoding in reversed(list(enumerate(encodings))):
                    if encoding.enabled is not False and not _same(encoding.post[slot], value):
                        value = ite(selector == index, encoding.post[slot], value)
                solver.add(_slot_term_equal(term, value))
            self.selectors.append(selector)
            self.states.append(nxt)

    def solve(self, condition: Sym) -> Any | None:
        """A z3 model of the unrolling satisfying ``condition``, or None."""
        condition = _as_bool(condition, "query")
        if condition is False:
            return None
        verdict = (
            self.solver.check(_bool_term(condition))
            if condition is not True
            else self.solver.check()
        )
        if verdict == z3.unknown:
            raise ModelError(f"z3 returned unknown: {self.solver.reason_unknown()}")
        return self.solver.model() if verdict == z3.sat else None

    def well_formed(self, depth: int) -> Sym:
        """The state at ``depth`` is in its sorts and no action instance faults there."""
        faults = disj(conj((e.params_in_sort, e.faults)) for e in self.encodings_at(depth))
        return conj((state_in_sorts(self.translator, self.states[depth]), negate(faults)))

    def trace(self, z3_model: Any, depth: int) -> tuple[FlatState, tuple[TraceStep, ...]]:
        """The path of length ``depth`` chosen by ``z3_model``, outcomes replayed through the
        interpreter (which must agree with the encoding's post-states)."""
        states = [_read_state(self.translator, z3_model, self.states[k]) for k in range(depth + 1)]
        steps = []
        for k in range(depth):
            encoding = self.encodings[k][_evaluate(z3_model, self.selectors[k])]
            params = _read_params(encoding, z3_model)
            outcome, post, error = _replay_outcome(
                self.model, states[k], encoding.action.name, params
            )
            if error == "" and post is not None and post != states[k + 1]:
                differences = state_difference(self.model, post, states[k + 1])
                raise ModelError(
                    f"step {k + 1} {encoding.action.name}{params}: the z3 encoding and the "
                    f"interpreter disagree on {differences}"
                )
            steps.append(TraceStep(encoding.action.name, params, outcome, states[k + 1]))
        return states[0], tuple(steps)


def bmc(
    model: Model,
    depth: int,
    lemmas: Sequence[Invariant] = (),
    *,
    invariants: Collection[str] | None = None,
    check_well_formed: bool = True,
    stop_on_violation: bool = False,
    time_budget: float | None = None,
    progress: Callable[[BmcProgress], None] | None = None,
) -> BmcResult:
    """Bounded model checking from the initial state to ``depth`` steps.

    Depths are checked in increasing order, so each reported counterexample is a shortest
    one. ``lemmas`` are checked like invariants. A property found to hold at every state
    reachable in exactly ``k`` steps is then asserted at depth ``k``: that removes no real
    path and lets z3 prune the deeper queries (with an inductive set, each depth costs about
    one induction query). ``check_well_formed`` also looks for states out of their sorts and
    action instances that fail to evaluate (``WELL_FORMED``). Checking stops early when every
    property is violated, at the first violation with ``stop_on_violation``, or before a new
    depth once ``time_budget`` seconds were spent (``checked_depth`` says how far it got).
    ``invariants`` restricts the check to the named invariants and lemmas.
    """
    if depth < 0:
        raise ValueError("depth must be >= 0")
    started = time.perf_counter()
    properties = [*model.invariants, *lemmas]
    if invariants is not None:
        unknown = set(invariants) - {p.name for p in properties}
        if unknown:
            raise IllFormedModelError(f"unknown invariants {sorted(unknown)}")
    pending = [p for p in properties if invariants is None or p.name in invariants]
    unrolling = Unrolling(model)
    solver = unrolling.solver
    violations: dict[str, BmcCounterexample] = {}
    depth_seconds: list[float] = []
    checked = -1
    for k in range(depth + 1):
        if time_budget is not None and k > 0 and time.perf_counter() - started > time_budget:
            break
        tick = time.perf_counter()
        unrolling.extend_to(k)
        state = unrolling.variables(k)
        if check_well_formed:
            well_formed = unrolling.well_formed(k)
            found = unrolling.solve(negate(well_formed))
            if found is None:
                solver.add(_bool_term(state_in_sorts(unrolling.translator, unrolling.states[k])))
            else:
                initial, steps = unrolling.trace(found, k)
                violations[WELL_FORMED] = BmcCounterexample(
                    WELL_FORMED,
                    "every reachable state is in its sorts and every action instance evaluates",
                    "model DSL",
                    initial,
                    steps,
                )
                check_well_formed = False
        holds = {
            p.name: _as_bool(unrolling.translator.translate(p.expr, state), p.name) for p in pending
        }
        while pending:
            found = unrolling.solve(disj(negate(holds[p.name]) for p in pending))
            if found is None:
                break
            initial, steps = unrolling.trace(found, k)
            for prop in list(pending):
                if not _evaluate(found, holds[prop.name]):
                    violations[prop.name] = BmcCounterexample(
                        prop.name, prop.statement, prop.reference, initial, steps
                    )
                    pending.remove(prop)
        for prop in pending:
            solver.add(_bool_term(holds[prop.name]))
        checked = k
        depth_seconds.append(time.perf_counter() - tick)
        if progress is not None:
            progress(
                BmcProgress(k, depth_seconds[-1], time.perf_counter() - started, len(violations))
            )
        if not pending or (stop_on_violation and violations):
            break
    return BmcResult(
        model, depth, checked, violations, depth_seconds, time.perf_counter() - started
    )


def reachable_within(model: Model, states: Sequence[FlatState], depth: int) -> list[int | None]:
    """For each state, the length of the shortest path from the initial state to it if that
    is at most ``depth``, else None; decided by z3 over one shared unrolling."""
    unrolling = Unrolling(model)
    targets = [unrolling.translator.concrete_slots(state) for state in states]
    found: list[int | None] = [None for _ in states]
    for k in range(depth + 1):
        unrolling.extend_to(k)
        for position, target in enumerate(targets):
            if found[position] is not None:
                continue
            matches = conj(
                _slot_equal(a, b) for a, b in zip(unrolling.states[k], target, strict=True)
            )
            if unrolling.solve(matches) is not None:
                found[position] = k
    return found


def _slot_equal(value: Sym, concrete: Sym) -> Sym:
    if _is_boolish(value):
        return equal(value, concrete)
    return _int_eq(value, concrete)


# --------------------------------------------------------------------------------------------
# Symbolic bounds: one proof for every larger bound


@dataclass(frozen=True)
class LiftedModel:
    """A model (and lemmas) whose chosen bound parameters are symbolic; see ``lift_bounds``."""

    model: Model
    lemmas: tuple[Invariant, ...]
    symbolic: SymbolicBounds


ModelBuilder: TypeAlias = Callable[[Mapping[str, int]], tuple[Model, Sequence[Invariant]]]
"""Builds a model and its lemmas from bound parameter values."""


def lift_bounds(
    build: ModelBuilder, bounds: Mapping[str, int], parameters: Sequence[str]
) -> LiftedModel:
    """Make ``parameters`` symbolic by comparing the model built at ``bounds`` with the models
    built with each parameter one larger.

    Every integer constant and every integer sort limit that differs is taken to be affine in
    the parameters (which is how bounds enter a model: as counter limits in guards and as sort
    ranges). Anything else that differs — a quantifier or map over a range that grows, a
    changed layout — makes the parameter not liftable (``LiftError``). A proof over the lifted
    model holds for every bound at least as large as ``bounds``; since every finite run of
    the unbounded system stays within some bound, the invariants then hold without the bound.
    """
    if not parameters:
        raise LiftError("no parameter to lift")
    for name in parameters:
        if name not in bounds:
            raise LiftError(f"unknown bound parameter {name}")
    base_model, base_lemmas = build(bounds)
    variants = []
    for name in parameters:
        moved = dict(bounds)
        moved[name] = bounds[name] + 1
        variants.append((name, *build(moved)))
    aligner = _Aligner([name for name, _, _ in variants])
    models = [base_model, *[m for _, m, _ in variants]]
    layouts = [m.layout() for m in models]
    if any(len(layout) != len(layouts[0]) for layout in layouts):
        raise LiftError(f"{', '.join(parameters)} change the state layout")
    slot_ranges: list[tuple[Affine, Affine] | None] = []
    for slots in zip(*layouts, strict=True):
        if any((s.variable, s.keys) != (slots[0].variable, slots[0].keys) for s in slots):
            raise LiftError(f"{', '.join(parameters)} change the state layout")
        slot_ranges.append(aligner.int_range([s.sort for s in slots], slots[0].variable))
    if any(m.init != base_model.init for m in models):
        raise LiftError(f"{', '.join(parameters)} change the initial state")
    actions = []
    param_ranges: dict[tuple[str, str], tuple[Affine, Affine]] = {}
    for group in zip(*[m.actions for m in models], strict=True):
        first = group[0]
        if any(a.name != first.name or len(a.cases) != len(first.cases) for a in group):
            raise LiftError(f"{', '.join(parameters)} change the actions")
        for position, (pname, _) in enumerate(first.params):
            sorts = [a.params[position][1] for a in group]
            limits = aligner.int_range(sorts, f"{first.name}.{pname}")
            if limits is not None:
                param_ranges[(first.name, pname)] = limits
        cases = []
        for case_group in zip(*[a.cases for a in group], strict=True):
            head = case_group[0]
            if any(c.outcome.tag != head.outcome.tag for c in case_group):
                raise LiftError(f"{', '.join(parameters)} change the cases of {first.name}")
            cases.append(
                Case(
                    aligner.align([c.condition for c in case_group]),
                    [
                        (target, aligner.align([dict(c.updates)[target] for c in case_group]))
                        for target, _ in head.updates
                    ],
                    head.outcome,
                )
            )
        actions.append(first.replace(guard=aligner.align([a.guard for a in group]), cases=cases))
    monitors = [
        Monitor(group[0].variable, aligner.align([m.update for m in group]))
        for group in zip(*[m.monitors for m in models], strict=True)
    ]
    invariants = aligner.invariants([list(m.invariants) for m in models])
    lemmas = aligner.invariants(
        [list(base_lemmas), *[list(lemma_set) for _, _, lemma_set in variants]]
    )
    model = base_model.replace(actions=actions, monitors=monitors, invariants=invariants)
    symbolic = SymbolicBounds(
        {name: bounds[name] for name in parameters}, tuple(slot_ranges), param_ranges
    )
    return LiftedModel(model, tuple(lemmas), symbolic)


class _Aligner:
    """Walks the same expression of the base model and of each moved model in parallel."""

    def __init__(self, parameters: Sequence[str]):
        self.parameters = list(parameters)

    def affine(self, values: Sequence[int]) -> Affine:
        deltas = tuple(
            (name, value - values[0])
            for name, value in zip(self.parameters, values[1:], strict=True)
            if value != values[0]
        )
        return Affine(values[0], deltas)

    def int_range(self, sorts: Sequence[Sort], where: str) -> tuple[Affine, Affine] | None:
        first = sorts[0]
        if isinstance(first, IntSort) and all(isinstance(s, IntSort) for s in sorts):
            int_sorts = [s for s in sorts if isinstance(s, IntSort)]
            return (
                self.affine([s.lo for s in int_sorts]),
                self.affine([s.hi for s in int_sorts]),
            )
        if any(s != first for s in sorts):
            raise LiftError(f"the sort of {where} changes shape with {self.parameters}")
        return None

    def invariants(self, groups: Sequence[Sequence[Invariant]]) -> list[Invariant]:
        result = []
        for group in zip(*groups, strict=True):
            head = group[0]
            if any(inv.name != head.name for inv in group):
                raise LiftError(f"{self.parameters} change the invariants")
            result.append(
                Invariant(
                    head.name, head.statement, head.reference, self.align([i.expr for i in group])
                )
            )
        return result

    def align(self, exprs: Sequence[Expr]) -> Expr:
        first = exprs[0]
        if all(e == first for e in exprs[1:]):
            return first
        if all(
            isinstance(e, Const) and isinstance(e.value, int) and not isinstance(e.value, bool)
            for e in exprs
        ):
            return _BoundConst(self.affine([int(e.value) for e in exprs if isinstance(e, Const)]))
        if any(type(e) is not type(first) for e in exprs):
            raise LiftError(f"{self.parameters} change a {type(first).__name__} expression")
        if _shape(first) is None or any(_shape(e) != _shape(first) for e in exprs):
            raise LiftError(
                f"{self.parameters} change the range of a {type(first).__name__} "
                f"({_shape(first)} vs {[_shape(e) for e in exprs[1:]]})"
            )
        kids = [children(e) for e in exprs]
        if any(len(k) != len(kids[0]) for k in kids):
            raise LiftError(f"{self.parameters} change the arity of a {type(first).__name__}")
        return rebuild(first, [self.align(list(group)) for group in zip(*kids, strict=True)])


def _shape(expr: Expr) -> tuple[Any, ...] | None:
    """The non-expression fields of a node (None for leaves that must be equal to align)."""
    if isinstance(expr, Const | Var | Next | Param | ActionIs):
        return None
    if isinstance(expr, MapOf | ForAll | Exists | Count | SetOf | ListOf):
        return (expr.name, expr.domain)
    if isinstance(expr, MapLit):
        return (expr.key_sort, len(expr.values))
    if isinstance(expr, Let):
        return (expr.name,)
    return ()


# --------------------------------------------------------------------------------------------
# Text reports


def _bounds_text(model: Model) -> str:
    return ", ".join(f"{k}={v}" for k, v in model.bounds.items())


def format_induction(report: InductionReport, *, details: bool = True) -> str:
    """A readable induction report: one line per invariant, then the counterexamples."""
    model = report.model
    invariants = sum(1 for p in report.proofs if not p.lemma)
    lemmas = len(report.proofs) - invariants
    symbolic = (
        f"; symbolic (unbounded): {', '.join(report.symbolic_bounds)}"
        if report.symbolic_bounds
        else ""
    )
    verdict = "INDUCTIVE" if report.inductive else "NOT INDUCTIVE"
    lines = [
        f"induction {model.name} ({_bounds_text(model)}){symbolic}",
        f"  {invariants} invariants + {lemmas} lemmas, {len(model.actions)} actions, "
        f"{report.seconds:.2f}s: {verdict}",
    ]
    for proof in report.proofs:
        if proof.proved:
            mark = "ok  "
        elif not proof.holds_initially:
            mark = "INIT"
        else:
            mark = "CTI "
        kind = " (lemma)" if proof.lemma else ""
        failing = (
            f"  not preserved by {', '.join(c.action for c in proof.counterexamples)}"
            if proof.counterexamples
            else ""
        )
        lines.append(f"  [{mark}] {proof.name}{kind} ({proof.reference}){failing}")
    broken = [w for w in report.well_formed if not w.ok]
    if broken:
        lines.append(f"  ill-formed actions: {', '.join(w.action for w in broken)}")
    else:
        lines.append("  every action is well-formed on the invariant states")
    if details:
        for proof in report.proofs:
            for cti in proof.counterexamples:
                lines.append("")
                lines.append(cti.describe(model))
        for well in broken:
            if well.counterexample is not None:
                lines.append("")
                lines.append(well.counterexample.describe(model))
    return "\n".join(lines)


def format_bmc(result: BmcResult) -> str:
    """A readable BMC report: depth reached, timings, then each shortest counterexample."""
    model = result.model
    reached = (
        f"checked depths 0..{result.checked_depth}"
        if result.checked_depth >= 0
        else "checked nothing"
    )
    if not result.complete and not result.violations:
        reached += f" of {result.depth} (stopped early)"
    verdict = "no violation" if result.ok else f"{len(result.violations)} violated"
    lines = [
        f"bmc {model.name} ({_bounds_text(model)}) to depth {result.depth}",
        f"  {reached} in {result.seconds:.2f}s: {verdict}",
        "  seconds per depth: " + " ".join(f"{s:.2f}" for s in result.depth_seconds),
    ]
    for violation in sorted(result.violations.values(), key=lambda v: (v.length, v.invariant)):
        lines.append("")
        lines.append(violation.describe())
    return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# The kernel model: proofs, BMC and the documentation table

UNBOUNDED_PARAMETERS: tuple[str, ...] = ("max_generation", "max_head_revision", "max_incarnation")
"""Bound parameters that only cap counters, so the proofs are repeated with them symbolic.
``max_claims_per_row`` also caps a counter, but claim codes pack the fencing token into a
finite range that an invariant quantifies over; owners, batches and inputs size the state."""

PARAMETER_LABELS: dict[str, str] = {
    "max_generation": "generations",
    "max_head_revision": "head revision",
    "max_incarnation": "incarnations",
}

DEFAULT_BMC_DEPTH = 10
"""BMC depth of the command line: about 30 s at ``DEFAULT_BOUNDS`` with the lemmas, where
depth 13 already takes about a minute (``docs/model.md`` records the measurements)."""


def kernel_builder(mutant: str | None = None) -> ModelBuilder:
    """Builds the kernel model (or a seeded mutant) and the proof lemmas from bound values."""

    def build(values: Mapping[str, int]) -> tuple[Model, Sequence[Invariant]]:
        bounds = Bounds(**values)
        model = build_model(bounds) if mutant is None else build_mutant(mutant, bounds)
        return model, build_lemmas(bounds)

    return build


def prove_kernel(
    bounds: Bounds = DEFAULT_BOUNDS,
    *,
    mutant: str | None = None,
    lemmas: bool = True,
    progress: Callable[[InductionProgress], None] | None = None,
) -> InductionReport:
    """Inductiveness of the kernel model's invariants (with the proof lemmas) at ``bounds``."""
    model, lemma_set = kernel_builder(mutant)(bounds.as_dict())
    return prove_inductive(model, lemma_set if lemmas else (), progress=progress)


def prove_kernel_unbounded(
    bounds: Bounds = DEFAULT_BOUNDS,
    parameters: Sequence[str] = UNBOUNDED_PARAMETERS,
    *,
    mutant: str | None = None,
    progress: Callable[[InductionProgress], None] | None = None,
) -> InductionReport:
    """The same proof with ``parameters`` symbolic: it then holds for every larger bound."""
    lifted = lift_bounds(kernel_builder(mutant), bounds.as_dict(), parameters)
    return prove_inductive(lifted.model, lifted.lemmas, symbolic=lifted.symbolic, progress=progress)


def bmc_kernel(
    bounds: Bounds = DEFAULT_BOUNDS,
    depth: int = DEFAULT_BMC_DEPTH,
    *,
    mutant: str | None = None,
    lemmas: bool = True,
    time_budget: float | None = None,
    progress: Callable[[BmcProgress], None] | None = None,
) -> BmcResult:
    """Bounded model checking of the kernel model (or a mutant) from its initial state."""
    model, lemma_set = kernel_builder(mutant)(bounds.as_dict())
    return bmc(
        model,
        depth,
        lemma_set if lemmas else (),
        time_budget=time_budget,
        progress=progress,
    )


@dataclass
class KernelProofs:
    """Every proof the documentation table reports, at one set of bounds.

    ``all_unbounded`` has every counter bound symbolic at once; ``unbounded`` holds the
    one-parameter proofs, made only when that joint proof fails (each is a special case of
    it, so they hold whenever it does).
    """

    without_lemmas: InductionReport
    with_lemmas: InductionReport
    all_unbounded: InductionReport
    unbounded: dict[str, InductionReport] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return self.with_lemmas.inductive and self.all_unbounded.inductive

    def to_dict(self) -> dict[str, Any]:
        return {
            "without_lemmas": self.without_lemmas.to_dict(),
            "with_lemmas": self.with_lemmas.to_dict(),
            "all_unbounded": self.all_unbounded.to_dict(),
            "unbounded": {name: r.to_dict() for name, r in self.unbounded.items()},
        }


def prove_kernel_all(
    bounds: Bounds = DEFAULT_BOUNDS, progress: Callable[[str], None] | None = None
) -> KernelProofs:
    """Induction without and with lemmas, then with every counter bound symbolic (and, if
    that fails, with each one symbolic on its own)."""

    def note(message: str) -> None:
        if progress is not None:
            progress(message)

    note("induction without lemmas")
    without = prove_kernel(bounds, lemmas=False)
    note("induction with lemmas")
    with_lemmas = prove_kernel(bounds)
    note("induction with every counter bound symbolic")
    together = prove_kernel_unbounded(bounds)
    proofs = KernelProofs(without, with_lemmas, together)
    if not together.inductive:
        for name in UNBOUNDED_PARAMETERS:
            note(f"induction with {name} symbolic")
            proofs.unbounded[name] = prove_kernel_unbounded(bounds, (name,))
    return proofs


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def invariant_table_markdown(proofs: KernelProofs | None = None) -> str:
    """The invariant and lemma tables of ``docs/model.md``, generated from the model and
    from the proofs at ``DEFAULT_BOUNDS`` (computed when not given)."""
    if proofs is None:
        proofs = prove_kernel_all()

    def unbounded_cell(name: str) -> str:
        if proofs.all_unbounded.proof(name).proved:
            return "yes"
        held = [PARAMETER_LABELS[p] for p, r in proofs.unbounded.items() if r.proof(name).proved]
        return ", ".join(held) if held else "no"

    def default_cell(name: str) -> str:
        if not proofs.with_lemmas.proof(name).holds_initially:
            return "fails in the initial state"
        if proofs.without_lemmas.proof(name).proved:
            return "inductive"
        if proofs.with_lemmas.proof(name).proved:
            return "inductive with the lemmas"
        return "NOT inductive"

    lines = [
        "| # | invariant | statement | reference | at default bounds | unbounded |",
        "|---|---|---|---|---|---|",
    ]
    for number, proof in enumerate((p for p in proofs.with_lemmas.proofs if not p.lemma), start=1):
        lines.append(
            f"| {number} | `{proof.name}` | {_cell(proof.statement)} | "
            f"{_cell(proof.reference)} | {default_cell(proof.name)} | "
            f"{unbounded_cell(proof.name)} |"
        )
    lines.append("")
    lines.append("| lemma | statement | reference | needed by | at default bounds | unbounded |")
    lines.append("|---|---|---|---|---|---|")
    for proof in (p for p in proofs.with_lemmas.proofs if p.lemma):
        verdict = "inductive with the invariants" if proof.proved else "NOT inductive"
        lines.append(
            f"| `{proof.name}` | {_cell(proof.statement)} | {_cell(proof.reference)} | "
            f"{_cell(LEMMA_REASONS.get(proof.name, ''))} | {verdict} | "
            f"{unbounded_cell(proof.name)} |"
        )
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------
# Command line: python -m lashspec.model.z3check


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m lashspec.model.z3check",
        description=(
            "z3 checks of the kernel model: inductiveness of the invariants (with lemmas), "
            "the same proof for unbounded counters, and bounded model checking."
        ),
    )
    defaults = DEFAULT_BOUNDS.as_dict()
    for name, value in defaults.items():
        parser.add_argument(
            "--" + name.replace("_", "-"), type=int, default=value, help=f"(default {value})"
        )
    parser.add_argument(
        "--mutant", choices=[m.name for m in MUTANTS], help="check a seeded mutant instead"
    )
    parser.add_argument("--depth", type=int, default=DEFAULT_BMC_DEPTH, help="BMC depth")
    parser.add_argument("--time-budget", type=float, help="stop BMC before a depth after this")
    parser.add_argument("--no-induction", action="store_true", help="skip the induction proof")
    parser.add_argument("--no-unbounded", action="store_true", help="skip the unbounded proof")
    parser.add_argument("--no-bmc", action="store_true", help="skip bounded model checking")
    parser.add_argument("--json", type=str, help="write a JSON report to this file")
    parser.add_argument(
        "--table", action="store_true", help="print the docs/model.md invariant table and exit"
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress on stderr")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.table:
        sys.stdout.write(invariant_table_markdown())
        return 0
    bounds = Bounds(**{name: getattr(args, name) for name in DEFAULT_BOUNDS.as_dict()})

    def say(message: str) -> None:
        if not args.quiet:
            print(message, file=sys.stderr, flush=True)

    report: dict[str, Any] = {}
    ok = True
    if not args.no_induction:
        induction = prove_kernel(
            bounds,
            mutant=args.mutant,
            progress=lambda p: say(f"induction: {p.action} ({p.done}/{p.total})"),
        )
        print(format_induction(induction))
        report["induction"] = induction.to_dict()
        ok = ok and induction.inductive
    if not args.no_unbounded:
        unbounded = prove_kernel_unbounded(bounds, mutant=args.mutant)
        print(format_induction(unbounded))
        report["unbounded"] = unbounded.to_dict()
        ok = ok and unbounded.inductive
    if not args.no_bmc:
        result = bmc_kernel(
            bounds,
            args.depth,
            mutant=args.mutant,
            time_budget=args.time_budget,
            progress=lambda p: say(f"bmc: depth {p.depth} in {p.depth_seconds:.2f}s"),
        )
        print(format_bmc(result))
        report["bmc"] = result.to_dict()
        ok = ok and result.ok
    if args.json:
        with open(args.json, "w", encoding="utf-8") as handle:
            json.dump(report, handle, indent=2, sort_keys=True)
            handle.write("\n")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
