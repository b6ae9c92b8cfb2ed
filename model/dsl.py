"""A small declarative modelling language: models are data, not code.

The shape follows mypyvy / Quint / TLA+: a model is a set of typed state variables, an initial
state, a list of guarded actions and a list of invariants. Everything an action does is written
as an immutable expression tree (the AST below), so the same model can be

* interpreted directly (`interpret_successors`, slow, obviously correct: the cross-check),
* compiled to straight-line Python over a flat state tuple (`compile_model`, fast: exploration),
* encoded into an SMT solver (a z3 encoder walks the same AST).

Sorts (all finite)
------------------
``BoolSort()``                 the values ``False``, ``True`` (Python ``bool``).
``IntSort(lo, hi)``            the integers ``lo..hi`` inclusive (Python ``int``).
``EnumSort(name, values)``     a finite set of string constants (Python ``str``), ordered as given.
``MapSort(key, value)``        a total function from a finite key sort (Bool, Int or Enum) to any
                               sort, including another map. Decoded map values are Python ``dict``
                               objects with one entry per key, in key order; they are treated as
                               immutable.
Finite key sorts expose ``values()``, the tuple of their elements in order. Those orders define
quantifier unrolling order, the order of ``ListOf`` results and the flat state layout.

Expressions (``Expr`` subclasses; every node is a frozen, hashable dataclass)
-------------------------------------------------------------------------------
Leaves
  ``Const(value)``            a literal ``bool``, ``int`` or ``str``.
  ``Var(name)``               the value of state variable ``name`` in the pre-state.
  ``Next(name)``              the value of state variable ``name`` in the post-state. Allowed only
                              in ``Monitor.update`` expressions (see below).
  ``Param(name)``             the value bound to ``name`` by the innermost enclosing binder
                              (``ForAll``, ``Exists``, ``Count``, ``MapOf``, ``SetOf``, ``ListOf``,
                              ``Let``) or, if none binds it, the action parameter ``name``.
  ``ActionIs(name)``          ``True`` iff the transition being taken is an instance of action
                              ``name``. Allowed only in monitor updates. Implementations must treat
                              ``And``/``Or``/``Implies``/``Ite`` lazily so that
                              ``Implies(ActionIs("a"), ... Param("p") ...)`` never evaluates a
                              parameter the current action does not have.
Maps
  ``Select(map, key)``        function application ``map[key]``.
  ``Store(map, key, value)``  functional update: the map equal to ``map`` except at ``key``.
  ``MapOf(name, domain, body)`` the map ``{k: body[name := k] for k in domain}`` (``domain`` is a
                              finite key sort).
  ``MapLit(key_sort, values)`` the map with ``values[j]`` at the j-th key of ``key_sort``.
Boolean
  ``Not(arg)``, ``And(args)``, ``Or(args)`` (``args`` a tuple, empty And = True, empty Or = False),
  ``Implies(lhs, rhs)``.
Comparison (scalars only; maps are never compared as a whole)
  ``Eq(lhs, rhs)``, ``Lt(lhs, rhs)``, ``Le(lhs, rhs)`` (``Lt``/``Le`` on integers).
Arithmetic (integers, unbounded during evaluation; the result must fit the target variable's sort)
  ``Add(lhs, rhs)``, ``Sub(lhs, rhs)``, ``Mul(lhs, rhs)``.
Control
  ``Ite(cond, then, else_)``  if-then-else on any sort (also on maps).
  ``Let(name, value, body)``  ``body`` with ``Param(name)`` bound to ``value``.
Finite quantifiers and aggregates (``name`` ranges over the finite sort ``domain``)
  ``ForAll(name, domain, body)``, ``Exists(name, domain, body)``: Booleans.
  ``Count(name, domain, body)``: the number of domain elements for which ``body`` holds (an int).
Outcome-only values (never stored in a state variable; a z3 encoder may ignore them)
  ``SetOf(name, domain, cond)``: ``frozenset`` of the domain elements satisfying ``cond``.
  ``ListOf(name, domain, cond, item)``: ``tuple`` of ``item`` for the elements satisfying ``cond``,
  in domain order.

Python sugar on every ``Expr``: ``a & b``, ``a | b``, ``~a``, ``a + b``, ``a - b``, ``a * b``,
``a < b``, ``a <= b``, ``a > b``, ``a >= b``, ``m[k]`` (Select), ``a.eq(b)``, ``a.ne(b)``,
``m.set(k, v)`` (Store), ``a.implies(b)``; plain Python values are lifted to ``Const``. ``==`` is
structural AST equality, never a model comparison, and ``bool(expr)`` raises ``TypeError``.

Model structure
---------------
``Outcome(tag, fields)``      the observable result of a case: a record ``{tag, field: Expr...}``
                              (``fields`` a mapping or tuple of pairs). Its value is the tuple
                              ``(tag, ((field, value), ...))``.
``Case(condition, updates, outcome)`` ``updates`` maps variable names to Exprs giving their new
                              values; all right-hand sides are evaluated in the pre-state;
                              unmentioned variables keep their values.
``Action(name, params, guard, cases)`` ``params`` maps parameter names to finite sorts; one
                              transition instance exists per parameter binding (cartesian product,
                              in declaration order). An instance is *enabled* in a state iff
                              ``guard`` holds; it then takes the FIRST case whose condition holds
                              (so typed error outcomes are explicit cases). If no case holds the
                              model is ill-formed (``NoCaseMatched``). Bounds are enforced by
                              guards: an instance whose first matching case would leave a
                              variable's sort is meant to be disabled by its guard; leaving a sort
                              anyway is an error (``SortError``) found by the interpreter and by
                              compiled code in checked mode.
``Monitor(variable, update)`` a ghost variable rewritten after EVERY transition by ``update``,
                              evaluated with ``Var`` = pre-state, ``Next`` = post-state (after the
                              case's updates; monitors read no other monitor's ``Next``) and
                              ``ActionIs``/``Param`` describing the transition. Sticky history
                              flags (``Or(Var(flag), bad_transition)``) turn transition properties
                              into state invariants.
``Invariant(name, statement, reference, expr)`` a state predicate (``Var`` only) that must hold in
                              every reachable state; ``statement`` is one line of prose and
                              ``reference`` points into the specification.
``Variable(name, sort, doc, ghost)`` a state variable declaration.
``Model(name, variables, init, actions, invariants, monitors, bounds, doc)`` ``init`` maps every
                              variable to a decoded value (maps as ``dict``); ``bounds`` records
                              the integer parameters the model was built with.

Flat states
-----------
Compiled exploration stores a state as one flat tuple of scalars: variables in declaration order,
each map expanded recursively in key order (``Model.layout``). ``Model.encode``/``Model.decode``
convert between flat tuples and decoded dicts.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeAlias

from . import compile_cache

Value: TypeAlias = Any
"""A decoded value: bool, int, str, dict (map), frozenset (SetOf) or tuple (ListOf/outcome)."""

Scalar: TypeAlias = bool | int | str
FlatState: TypeAlias = tuple[Any, ...]
OutcomeValue: TypeAlias = tuple[str, tuple[tuple[str, Any], ...]]


# --------------------------------------------------------------------------------------------
# Errors


class ModelError(Exception):
    """Base class of every error raised while building, evaluating or compiling a model."""


class SortError(ModelError):
    """A value does not belong to the sort it is used at (out-of-range int, unknown enum...)."""


class UnboundNameError(ModelError):
    """A Var/Next/Param/ActionIs names nothing in the current context."""


class NoCaseMatchedError(ModelError):
    """An enabled action instance has no case whose condition holds (ill-formed model)."""


class IllFormedModelError(ModelError):
    """The model data is inconsistent (duplicate names, missing init value, bad update target)."""


# --------------------------------------------------------------------------------------------
# Sorts


class Sort:
    """Base class of sorts."""

    __slots__ = ()

    def contains(self, value: Value) -> bool:
        raise NotImplementedError

    def is_finite_key(self) -> bool:
        return False

    def values(self) -> tuple[Scalar, ...]:
        raise SortError(f"sort {self} is not a finite key sort")

    def index_of(self, value: Value) -> int:
        """Position of ``value`` in ``values()``; SortError when absent."""
        try:
            return self._index()[value]
        except (KeyError, TypeError):
            raise SortError(f"{value!r} is not an element of {self}") from None

    def _index(self) -> dict[Scalar, int]:
        raise SortError(f"sort {self} is not a finite key sort")


@dataclass(frozen=True, slots=True)
class BoolSort(Sort):
    def contains(self, value: Value) -> bool:
        return isinstance(value, bool)

    def is_finite_key(self) -> bool:
        return True

    def values(self) -> tuple[Scalar, ...]:
        return (False, True)

    def _index(self) -> dict[Scalar, int]:
        return {False: 0, True: 1}

    def __str__(self) -> str:
        return "Bool"


@dataclass(frozen=True, slots=True)
class IntSort(Sort):
    lo: int
    hi: int

    def __post_init__(self) -> None:
        if self.lo > self.hi:
            raise SortError(f"empty int range {self.lo}..{self.hi}")

    def contains(self, value: Value) -> bool:
        return (
            isinstance(value, int) and not isinstance(value, bool) and self.lo <= value <= self.hi
        )

    def is_finite_key(self) -> bool:
        return True

    def values(self) -> tuple[Scalar, ...]:
        return tuple(range(self.lo, self.hi + 1))

    def _index(self) -> dict[Scalar, int]:
        return {v: v - self.lo for v in range(self.lo, self.hi + 1)}

    def index_of(self, value: Value) -> int:
        if not self.contains(value):
            raise SortError(f"{value!r} is not an element of {self}")
        return int(value) - self.lo

    def __str__(self) -> str:
        return f"Int[{self.lo}..{self.hi}]"


@dataclass(frozen=True, slots=True)
class EnumSort(Sort):
    name: str
    members: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.members or len(set(self.members)) != len(self.members):
            raise SortError(f"enum {self.name} needs distinct members, got {self.members!r}")

    def contains(self, value: Value) -> bool:
        return isinstance(value, str) and value in self.members

    def is_finite_key(self) -> bool:
        return True

    def values(self) -> tuple[Scalar, ...]:
        return self.members

    def _index(self) -> dict[Scalar, int]:
        return {v: i for i, v in enumerate(self.members)}

    def __str__(self) -> str:
        return f"Enum {self.name}{{{', '.join(self.members)}}}"


@dataclass(frozen=True, slots=True)
class MapSort(Sort):
    key: Sort
    value: Sort

    def __post_init__(self) -> None:
        if not self.key.is_finite_key():
            raise SortError(f"map keys must be a finite key sort, got {self.key}")

    def contains(self, value: Value) -> bool:
        if not isinstance(value, dict) or set(value) != set(self.key.values()):
            return False
        return all(self.value.contains(v) for v in value.values())

    def __str__(self) -> str:
        return f"Map[{self.key} -> {self.value}]"


def _lift(value: Value) -> Expr:
    if isinstance(value, Expr):
        return value
    if isinstance(value, bool | int | str):
        return Const(value)
    raise ModelError(f"cannot lift {value!r} into an expression")


# --------------------------------------------------------------------------------------------
# Expressions


class Expr:
    """Base class of expression nodes; see the module docstring for the node catalogue."""

    __slots__ = ()

    def __bool__(self) -> bool:
        raise TypeError("a model expression has no Python truth value; use &, |, ~ or eq()")

    def __and__(self, other: Value) -> Expr:
        return And((self, _lift(other)))

    def __rand__(self, other: Value) -> Expr:
        return And((_lift(other), self))

    def __or__(self, other: Value) -> Expr:
        return Or((self, _lift(other)))

    def __ror__(self, other: Value) -> Expr:
        return Or((_lift(other), self))

    def __invert__(self) -> Expr:
        return Not(self)

    def __add__(self, other: Value) -> Expr:
        return Add(self, _lift(other))

    def __radd__(self, other: Value) -> Expr:
        return Add(_lift(other), self)

    def __sub__(self, other: Value) -> Expr:
        return Sub(self, _lift(other))

    def __rsub__(self, other: Value) -> Expr:
        return Sub(_lift(other), self)

    def __mul__(self, other: Value) -> Expr:
        return Mul(self, _lift(other))

    def __rmul__(self, other: Value) -> Expr:
        return Mul(_lift(other), self)

    def __lt__(self, other: Value) -> Expr:
        return Lt(self, _lift(other))

    def __le__(self, other: Value) -> Expr:
        return Le(self, _lift(other))

    def __gt__(self, other: Value) -> Expr:
        return Lt(_lift(other), self)

    def __ge__(self, other: Value) -> Expr:
        return Le(_lift(other), self)

    def __getitem__(self, key: Value) -> Expr:
        return Select(self, _lift(key))

    def eq(self, other: Value) -> Expr:
        return Eq(self, _lift(other))

    def ne(self, other: Value) -> Expr:
        return Not(Eq(self, _lift(other)))

    def set(self, key: Value, value: Value) -> Expr:
        return Store(self, _lift(key), _lift(value))

    def implies(self, other: Value) -> Expr:
        return Implies(self, _lift(other))


@dataclass(frozen=True, slots=True, eq=False)
class Const(Expr):
    value: Scalar

    def __post_init__(self) -> None:
        if not isinstance(self.value, bool | int | str):
            raise ModelError(f"Const takes bool, int or str, got {self.value!r}")

    # Structural equality must tell True from 1 and False from 0.
    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, Const)
            and type(other.value) is type(self.value)
            and other.value == self.value
        )

    def __hash__(self) -> int:
        return hash((type(self.value).__name__, self.value))


@dataclass(frozen=True, slots=True)
class Var(Expr):
    name: str


@dataclass(frozen=True, slots=True)
class Next(Expr):
    name: str


@dataclass(frozen=True, slots=True)
class Param(Expr):
    name: str


@dataclass(frozen=True, slots=True)
class ActionIs(Expr):
    name: str


@dataclass(frozen=True, slots=True)
class Select(Expr):
    map: Expr
    key: Expr


@dataclass(frozen=True, slots=True)
class Store(Expr):
    map: Expr
    key: Expr
    value: Expr


@dataclass(frozen=True, slots=True)
class MapOf(Expr):
    name: str
    domain: Sort
    body: Expr


@dataclass(frozen=True, slots=True)
class MapLit(Expr):
    key_sort: Sort
    values: tuple[Expr, ...]

    def __post_init__(self) -> None:
        if len(self.values) != len(self.key_sort.values()):
            raise ModelError(
                f"MapLit over {self.key_sort} needs {len(self.key_sort.values())} values"
            )


@dataclass(frozen=True, slots=True)
class Not(Expr):
    arg: Expr


@dataclass(frozen=True, slots=True)
class And(Expr):
    args: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Or(Expr):
    args: tuple[Expr, ...]


@dataclass(frozen=True, slots=True)
class Implies(Expr):
    lhs: Expr
    rhs: Expr


@dataclass(frozen=True, slots=True)
class Eq(Expr):
    lhs: Expr
    rhs: Expr


@dataclass(frozen=True, slots=True)
class Lt(Expr):
    lhs: Expr
    rhs: Expr


@dataclass(frozen=True, slots=True)
class Le(Expr):
    lhs: Expr
    rhs: Expr


@dataclass(frozen=True, slots=True)
class Add(Expr):
    lhs: Expr
    rhs: Expr


@dataclass(frozen=True, slots=True)
class Sub(Expr):
    lhs: Expr
    rhs: Expr


@dataclass(frozen=True, slots=True)
class Mul(Expr):
    lhs: Expr
    rhs: Expr


@dataclass(frozen=True, slots=True)
class Ite(Expr):
    cond: Expr
    then: Expr
    else_: Expr


@dataclass(frozen=True, slots=True)
class Let(Expr):
    name: str
    value: Expr
    body: Expr


@dataclass(frozen=True, slots=True)
class ForAll(Expr):
    name: str
    domain: Sort
    body: Expr


@dataclass(frozen=True, slots=True)
class Exists(Expr):
    name: str
    domain: Sort
    body: Expr


@dataclass(frozen=True, slots=True)
class Count(Expr):
    name: str
    domain: Sort
    body: Expr


@dataclass(frozen=True, slots=True)
class SetOf(Expr):
    name: str
    domain: Sort
    cond: Expr


@dataclass(frozen=True, slots=True)
class ListOf(Expr):
    name: str
    domain: Sort
    cond: Expr
    item: Expr


TRUE = Const(True)
FALSE = Const(False)

_BINDERS = (MapOf, ForAll, Exists, Count, SetOf, ListOf)


# Small constructors used by model authors ------------------------------------------------------


def const(value: Scalar) -> Const:
    return Const(value)


def all_of(*args: Value) -> Expr:
    return And(tuple(_lift(a) for a in args))


def any_of(*args: Value) -> Expr:
    return Or(tuple(_lift(a) for a in args))


def ite(cond: Value, then: Value, else_: Value) -> Expr:
    return Ite(_lift(cond), _lift(then), _lift(else_))


def eq(lhs: Value, rhs: Value) -> Expr:
    return Eq(_lift(lhs), _lift(rhs))


def ne(lhs: Value, rhs: Value) -> Expr:
    return Not(Eq(_lift(lhs), _lift(rhs)))


def forall(name: str, domain: Sort, body: Callable[[Param], Value]) -> Expr:
    return ForAll(name, domain, _lift(body(Param(name))))


def exists(name: str, domain: Sort, body: Callable[[Param], Value]) -> Expr:
    return Exists(name, domain, _lift(body(Param(name))))


def count(name: str, domain: Sort, body: Callable[[Param], Value]) -> Expr:
    return Count(name, domain, _lift(body(Param(name))))


def map_of(name: str, domain: Sort, body: Callable[[Param], Value]) -> Expr:
    return MapOf(name, domain, _lift(body(Param(name))))


def set_of(name: str, domain: Sort, cond: Callable[[Param], Value]) -> Expr:
    return SetOf(name, domain, _lift(cond(Param(name))))


def list_of(
    name: str, domain: Sort, cond: Callable[[Param], Value], item: Callable[[Param], Value]
) -> Expr:
    return ListOf(name, domain, _lift(cond(Param(name))), _lift(item(Param(name))))


def let(name: str, value: Value, body: Callable[[Param], Value]) -> Expr:
    return Let(name, _lift(value), _lift(body(Param(name))))


def first_where(domain: Sort, cond: Callable[[Const], Value], default: Scalar) -> Expr:
    """The smallest element of ``domain`` satisfying ``cond``, else ``default`` (an Ite chain)."""
    result: Expr = Const(default)
    for key in reversed(domain.values()):
        result = Ite(_lift(cond(Const(key))), Const(key), result)
    return result


def map_lit(key_sort: Sort, values: Sequence[Value]) -> MapLit:
    return MapLit(key_sort, tuple(_lift(v) for v in values))


def ite_chain(pairs: Sequence[tuple[Value, Value]], default: Value) -> Expr:
    """``Ite(c1, v1, Ite(c2, v2, ... default))``."""
    result = _lift(default)
    for cond, value in reversed(pairs):
        result = Ite(_lift(cond), _lift(value), result)
    return result


def children(expr: Expr) -> tuple[Expr, ...]:
    """The direct sub-expressions of a node (in field order)."""
    if isinstance(expr, Const | Var | Next | Param | ActionIs):
        return ()
    if isinstance(expr, Select):
        return (expr.map, expr.key)
    if isinstance(expr, Store):
        return (expr.map, expr.key, expr.value)
    if isinstance(expr, MapOf | ForAll | Exists | Count):
        return (expr.body,)
    if isinstance(expr, MapLit):
        return expr.values
    if isinstance(expr, Not):
        return (expr.arg,)
    if isinstance(expr, And | Or):
        return expr.args
    if isinstance(expr, Implies | Eq | Lt | Le | Add | Sub | Mul):
        return (expr.lhs, expr.rhs)
    if isinstance(expr, Ite):
        return (expr.cond, expr.then, expr.else_)
    if isinstance(expr, Let):
        return (expr.value, expr.body)
    if isinstance(expr, SetOf):
        return (expr.cond,)
    if isinstance(expr, ListOf):
        return (expr.cond, expr.item)
    raise ModelError(f"unknown expression node {type(expr).__name__}")


def rebuild(expr: Expr, kids: Sequence[Expr]) -> Expr:
    """A node of the same type and non-expression fields as ``expr`` with new children."""
    k = tuple(kids)
    if isinstance(expr, Const | Var | Next | Param | ActionIs):
        return expr
    if isinstance(expr, Select):
        return Select(k[0], k[1])
    if isinstance(expr, Store):
        return Store(k[0], k[1], k[2])
    if isinstance(expr, MapOf):
        return MapOf(expr.name, expr.domain, k[0])
    if isinstance(expr, ForAll):
        return ForAll(expr.name, expr.domain, k[0])
    if isinstance(expr, Exists):
        return Exists(expr.name, expr.domain, k[0])
    if isinstance(expr, Count):
        return Count(expr.name, expr.domain, k[0])
    if isinstance(expr, MapLit):
        return MapLit(expr.key_sort, k)
    if isinstance(expr, Not):
        return Not(k[0])
    if isinstance(expr, And):
        return And(k)
    if isinstance(expr, Or):
        return Or(k)
    if isinstance(expr, Implies | Eq | Lt | Le | Add | Sub | Mul):
        return type(expr)(k[0], k[1])
    if isinstance(expr, Ite):
        return Ite(k[0], k[1], k[2])
    if isinstance(expr, Let):
        return Let(expr.name, k[0], k[1])
    if isinstance(expr, SetOf):
        return SetOf(expr.name, expr.domain, k[0])
    if isinstance(expr, ListOf):
        return ListOf(expr.name, expr.domain, k[0], k[1])
    raise ModelError(f"unknown expression node {type(expr).__name__}")


def transform(expr: Expr, fn: Callable[[Expr], Expr | None]) -> Expr:
    """Rewrite top-down: where ``fn`` returns an Expr it replaces the node (not revisited);
    where it returns None the node is kept and its children are rewritten."""
    replaced = fn(expr)
    if replaced is not None:
        return replaced
    kids = children(expr)
    if not kids:
        return expr
    new_kids = tuple(transform(k, fn) for k in kids)
    if all(a is b for a, b in zip(kids, new_kids, strict=True)):
        return expr
    return rebuild(expr, new_kids)


def replace_all(expr: Expr, pattern: Expr, replacement: Expr) -> Expr:
    """Replace every sub-expression structurally equal to ``pattern``."""
    return transform(expr, lambda e: replacement if e == pattern else None)


def count_matches(expr: Expr, predicate: Callable[[Expr], bool]) -> int:
    """How many sub-expressions (including ``expr``) satisfy ``predicate``."""
    return int(predicate(expr)) + sum(count_matches(k, predicate) for k in children(expr))


# --------------------------------------------------------------------------------------------
# Model structure


@dataclass(frozen=True, slots=True)
class Outcome:
    tag: str
    fields: tuple[tuple[str, Expr], ...] = ()

    def __init__(self, tag: str, fields: Mapping[str, Value] | Iterable[tuple[str, Value]] = ()):
        items = fields.items() if isinstance(fields, Mapping) else fields
        object.__setattr__(self, "tag", tag)
        object.__setattr__(self, "fields", tuple((k, _lift(v)) for k, v in items))


@dataclass(frozen=True, slots=True)
class Case:
    condition: Expr
    updates: tuple[tuple[str, Expr], ...]
    outcome: Outcome

    def __init__(
        self,
        condition: Value,
        updates: Mapping[str, Value] | Iterable[tuple[str, Value]],
        outcome: Outcome,
    ):
        items = updates.items() if isinstance(updates, Mapping) else updates
        pairs = tuple((k, _lift(v)) for k, v in items)
        if len({k for k, _ in pairs}) != len(pairs):
            raise IllFormedModelError("a case updates the same variable twice")
        object.__setattr__(self, "condition", _lift(condition))
        object.__setattr__(self, "updates", pairs)
        object.__setattr__(self, "outcome", outcome)

    def update_map(self) -> dict[str, Expr]:
        return dict(self.updates)

    def map_exprs(self, fn: Callable[[Expr], Expr]) -> Case:
        """A copy with ``fn`` applied to the condition, every update and every outcome field."""
        return Case(
            fn(self.condition),
            [(k, fn(v)) for k, v in self.updates],
            Outcome(self.outcome.tag, [(k, fn(v)) for k, v in self.outcome.fields]),
        )


@dataclass(frozen=True, slots=True)
class Action:
    name: str
    params: tuple[tuple[str, Sort], ...]
    guard: Expr
    cases: tuple[Case, ...]
    doc: str = ""

    def __init__(
        self,
        name: str,
        params: Mapping[str, Sort] | Iterable[tuple[str, Sort]],
        guard: Value,
        cases: Iterable[Case | tuple[Value, Mapping[str, Value], Outcome]],
        doc: str = "",
    ):
        items = params.items() if isinstance(params, Mapping) else params
        pairs = tuple(items)
        for pname, psort in pairs:
            if not psort.is_finite_key():
                raise IllFormedModelError(f"parameter {name}.{pname} needs a finite sort")
        built = tuple(c if isinstance(c, Case) else Case(c[0], c[1], c[2]) for c in cases)
        if not built:
            raise IllFormedModelError(f"action {name} has no case")
        object.__setattr__(self, "name", name)
        object.__setattr__(self, "params", pairs)
        object.__setattr__(self, "guard", _lift(guard))
        object.__setattr__(self, "cases", built)
        object.__setattr__(self, "doc", doc)

    def bindings(self) -> list[dict[str, Scalar]]:
        """Every parameter binding, cartesian product in declaration order."""
        names = [n for n, _ in self.params]
        domains = [s.values() for _, s in self.params]
        return [dict(zip(names, combo, strict=True)) for combo in itertools.product(*domains)]

    def map_exprs(self, fn: Callable[[Expr], Expr]) -> Action:
        """A copy with ``fn`` applied to the guard and to every expression of every case."""
        return self.replace(guard=fn(self.guard), cases=[c.map_exprs(fn) for c in self.cases])

    def replace(self, **changes: Any) -> Action:
        """A copy with some fields replaced (used by model transformations)."""
        return Action(
            changes.get("name", self.name),
            changes.get("params", self.params),
            changes.get("guard", self.guard),
            changes.get("cases", self.cases),
            changes.get("doc", self.doc),
        )


@dataclass(frozen=True, slots=True)
class Invariant:
    name: str
    statement: str
    reference: str
    expr: Expr


@dataclass(frozen=True, slots=True)
class Monitor:
    variable: str
    update: Expr


@dataclass(frozen=True, slots=True)
class Variable:
    name: str
    sort: Sort
    doc: str = ""
    ghost: bool = False


@dataclass(frozen=True, slots=True)
class SlotInfo:
    """One scalar position of the flat state: variable name, map key path and leaf sort."""

    variable: str
    keys: tuple[Scalar, ...]
    sort: Sort


def _flatten_sort(
    sort: Sort, keys: tuple[Scalar, ...]
) -> Iterator[tuple[tuple[Scalar, ...], Sort]]:
    if isinstance(sort, MapSort):
        for key in sort.key.values():
            yield from _flatten_sort(sort.value, (*keys, key))
    else:
        yield keys, sort


@dataclass(frozen=True)
class Model:
    name: str
    variables: tuple[Variable, ...]
    init: Mapping[str, Value]
    actions: tuple[Action, ...]
    invariants: tuple[Invariant, ...] = ()
    monitors: tuple[Monitor, ...] = ()
    bounds: Mapping[str, int] = field(default_factory=dict)
    doc: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "variables", tuple(self.variables))
        object.__setattr__(self, "actions", tuple(self.actions))
        object.__setattr__(self, "invariants", tuple(self.invariants))
        object.__setattr__(self, "monitors", tuple(self.monitors))
        names = [v.name for v in self.variables]
        if len(set(names)) != len(names):
            raise IllFormedModelError(f"duplicate variable names in {self.name}")
        action_names = [a.name for a in self.actions]
        if len(set(action_names)) != len(action_names):
            raise IllFormedModelError(f"duplicate action names in {self.name}")
        for inv in self.invariants:
            if not inv.name or not inv.statement or not inv.reference:
                raise IllFormedModelError("an invariant needs a name, a statement and a reference")
        sorts = self.sorts()
        for name in names:
            if name not in self.init:
                raise IllFormedModelError(f"variable {name} has no initial value")
            if not sorts[name].contains(self.init[name]):
                raise SortError(f"initial value of {name} is not in {sorts[name]}")
        extra = set(self.init) - set(names)
        if extra:
            raise IllFormedModelError(f"initial values for unknown variables {sorted(extra)}")
        for action in self.actions:
            for case in action.cases:
                for target, _ in case.updates:
                    if target not in sorts:
                        raise IllFormedModelError(
                            f"{action.name} updates unknown variable {target}"
                        )
        monitored = [m.variable for m in self.monitors]
        for target in monitored:
            if target not in sorts:
                raise IllFormedModelError(f"monitor of unknown variable {target}")
        if len(set(monitored)) != len(monitored):
            raise IllFormedModelError("a variable has two monitors")

    # Layout ------------------------------------------------------------------------------------

    def sorts(self) -> dict[str, Sort]:
        return {v.name: v.sort for v in self.variables}

    def layout(self) -> tuple[SlotInfo, ...]:
        slots: list[SlotInfo] = []
        for var in self.variables:
            for keys, leaf in _flatten_sort(var.sort, ()):
                slots.append(SlotInfo(var.name, keys, leaf))
        return tuple(slots)

    def slot_offsets(self) -> dict[str, int]:
        """First flat index of every variable."""
        offsets: dict[str, int] = {}
        position = 0
        for var in self.variables:
            offsets[var.name] = position
            position += sum(1 for _ in _flatten_sort(var.sort, ()))
        return offsets

    def encode(self, state: Mapping[str, Value]) -> FlatState:
        """Decoded state (maps as dicts) -> flat tuple."""
        sorts = self.sorts()
        flat: list[Value] = []
        for var in self.variables:
            if var.name not in state:
                raise IllFormedModelError(f"state has no value for {var.name}")
            value = state[var.name]
            if not sorts[var.name].contains(value):
                raise SortError(f"value of {var.name} is not in {sorts[var.name]}: {value!r}")
            for keys, _ in _flatten_sort(var.sort, ()):
                leaf = value
                for key in keys:
                    leaf = leaf[key]
                flat.append(leaf)
        return tuple(flat)

    def decode(self, flat: Sequence[Value]) -> dict[str, Value]:
        """Flat tuple -> decoded state (maps as dicts in key order)."""
        result: dict[str, Value] = {}
        position = 0
        for var in self.variables:
            result[var.name], position = _unflatten(var.sort, flat, position)
        if position != len(flat):
            raise IllFormedModelError(f"flat state has {len(flat)} slots, model needs {position}")
        return result

    def initial_state(self) -> FlatState:
        return self.encode(self.init)

    def action(self, name: str) -> Action:
        for action in self.actions:
            if action.name == name:
                return action
        raise IllFormedModelError(f"model {self.name} has no action {name}")

    def invariant(self, name: str) -> Invariant:
        for inv in self.invariants:
            if inv.name == name:
                return inv
        raise IllFormedModelError(f"model {self.name} has no invariant {name}")

    def replace(self, **changes: Any) -> Model:
        """A copy with some fields replaced (model transformations, e.g. mutants)."""
        fields_now: dict[str, Any] = {
            "name": self.name,
            "variables": self.variables,
            "init": self.init,
            "actions": self.actions,
            "invariants": self.invariants,
            "monitors": self.monitors,
            "bounds": self.bounds,
            "doc": self.doc,
        }
        unknown = set(changes) - set(fields_now)
        if unknown:
            raise IllFormedModelError(f"unknown model fields {sorted(unknown)}")
        fields_now.update(changes)
        return Model(**fields_now)

    def with_action(self, action: Action) -> Model:
        """A copy in which the action of the same name is replaced by ``action``."""
        self.action(action.name)
        return self.replace(
            actions=tuple(action if a.name == action.name else a for a in self.actions)
        )


def _unflatten(sort: Sort, flat: Sequence[Value], position: int) -> tuple[Value, int]:
    if isinstance(sort, MapSort):
        result: dict[Scalar, Value] = {}
        for key in sort.key.values():
            result[key], position = _unflatten(sort.value, flat, position)
        return result, position
    return flat[position], position + 1


# --------------------------------------------------------------------------------------------
# Interpreter (reference semantics)


@dataclass(frozen=True)
class _Ctx:
    pre: Mapping[str, Value]
    post: Mapping[str, Value] | None
    action: str | None
    env: Mapping[str, Value]

    def bind(self, name: str, value: Value) -> _Ctx:
        return _Ctx(self.pre, self.post, self.action, {**self.env, name: value})


def evaluate(
    expr: Expr,
    state: Mapping[str, Value],
    params: Mapping[str, Value] | None = None,
    *,
    post: Mapping[str, Value] | None = None,
    action: str | None = None,
) -> Value:
    """Evaluate ``expr`` in a decoded state (the reference interpreter)."""
    return _eval(expr, _Ctx(state, post, action, dict(params or {})))


def _as_bool(value: Value, expr: Expr) -> bool:
    if not isinstance(value, bool):
        raise SortError(f"expected a Boolean from {type(expr).__name__}, got {value!r}")
    return value


def _as_int(value: Value, expr: Expr) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise SortError(f"expected an integer from {type(expr).__name__}, got {value!r}")
    return value


def _eval(expr: Expr, ctx: _Ctx) -> Value:
    if isinstance(expr, Const):
        return expr.value
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
        mapping = _eval(expr.map, ctx)
        key = _eval(expr.key, ctx)
        if not isinstance(mapping, dict):
            raise SortError(f"Select on a non-map value {mapping!r}")
        if key not in mapping or type(key) is not type(next(iter(mapping))):
            raise SortError(f"key {key!r} outside the map's domain")
        return mapping[key]
    if isinstance(expr, Store):
        mapping = _eval(expr.map, ctx)
        key = _eval(expr.key, ctx)
        if not isinstance(mapping, dict) or key not in mapping:
            raise SortError(f"Store at key {key!r} outside the map's domain")
        updated = dict(mapping)
        updated[key] = _eval(expr.value, ctx)
        return updated
    if isinstance(expr, MapOf):
        return {k: _eval(expr.body, ctx.bind(expr.name, k)) for k in expr.domain.values()}
    if isinstance(expr, MapLit):
        keys = expr.key_sort.values()
        return {k: _eval(v, ctx) for k, v in zip(keys, expr.values, strict=True)}
    if isinstance(expr, Not):
        return not _as_bool(_eval(expr.arg, ctx), expr)
    if isinstance(expr, And):
        return all(_as_bool(_eval(a, ctx), expr) for a in expr.args)
    if isinstance(expr, Or):
        return any(_as_bool(_eval(a, ctx), expr) for a in expr.args)
    if isinstance(expr, Implies):
        return (not _as_bool(_eval(expr.lhs, ctx), expr)) or _as_bool(_eval(expr.rhs, ctx), expr)
    if isinstance(expr, Eq):
        lhs = _eval(expr.lhs, ctx)
        rhs = _eval(expr.rhs, ctx)
        if isinstance(lhs, dict) or isinstance(rhs, dict):
            raise SortError("Eq compares scalars only")
        if isinstance(lhs, bool) != isinstance(rhs, bool) or type(lhs) is not type(rhs):
            raise SortError(f"Eq between different sorts: {lhs!r} and {rhs!r}")
        return bool(lhs == rhs)
    if isinstance(expr, Lt):
        return _as_int(_eval(expr.lhs, ctx), expr) < _as_int(_eval(expr.rhs, ctx), expr)
    if isinstance(expr, Le):
        return _as_int(_eval(expr.lhs, ctx), expr) <= _as_int(_eval(expr.rhs, ctx), expr)
    if isinstance(expr, Add):
        return _as_int(_eval(expr.lhs, ctx), expr) + _as_int(_eval(expr.rhs, ctx), expr)
    if isinstance(expr, Sub):
        return _as_int(_eval(expr.lhs, ctx), expr) - _as_int(_eval(expr.rhs, ctx), expr)
    if isinstance(expr, Mul):
        return _as_int(_eval(expr.lhs, ctx), expr) * _as_int(_eval(expr.rhs, ctx), expr)
    if isinstance(expr, Ite):
        if _as_bool(_eval(expr.cond, ctx), expr):
            return _eval(expr.then, ctx)
        return _eval(expr.else_, ctx)
    if isinstance(expr, Let):
        return _eval(expr.body, ctx.bind(expr.name, _eval(expr.value, ctx)))
    if isinstance(expr, ForAll):
        return all(
            _as_bool(_eval(expr.body, ctx.bind(expr.name, k)), expr) for k in expr.domain.values()
        )
    if isinstance(expr, Exists):
        return any(
            _as_bool(_eval(expr.body, ctx.bind(expr.name, k)), expr) for k in expr.domain.values()
        )
    if isinstance(expr, Count):
        return sum(
            1
            for k in expr.domain.values()
            if _as_bool(_eval(expr.body, ctx.bind(expr.name, k)), expr)
        )
    if isinstance(expr, SetOf):
        return frozenset(
            k
            for k in expr.domain.values()
            if _as_bool(_eval(expr.cond, ctx.bind(expr.name, k)), expr)
        )
    if isinstance(expr, ListOf):
        items = []
        for k in expr.domain.values():
            inner = ctx.bind(expr.name, k)
            if _as_bool(_eval(expr.cond, inner), expr):
                items.append(_eval(expr.item, inner))
        return tuple(items)
    raise ModelError(f"unknown expression node {type(expr).__name__}")


def evaluate_outcome(
    outcome: Outcome, state: Mapping[str, Value], params: Mapping[str, Value]
) -> OutcomeValue:
    return (outcome.tag, tuple((name, evaluate(e, state, params)) for name, e in outcome.fields))


@dataclass(frozen=True)
class Transition:
    """One interpreted transition: action instance, outcome and decoded post-state."""

    action: str
    params: Mapping[str, Scalar]
    outcome: OutcomeValue
    state: dict[str, Value]


def interpret_step(
    model: Model, state: Mapping[str, Value], action: Action, params: Mapping[str, Scalar]
) -> Transition | None:
    """Take one action instance in ``state``; ``None`` when it is not enabled."""
    if not _as_bool(evaluate(action.guard, state, params), action.guard):
        return None
    sorts = model.sorts()
    for case in action.cases:
        if not _as_bool(evaluate(case.condition, state, params), case.condition):
            continue
        post = dict(state)
        for target, expr in case.updates:
            post[target] = evaluate(expr, state, params)
        for monitor in model.monitors:
            post[monitor.variable] = evaluate(
                monitor.update, state, params, post=post, action=action.name
            )
        for name, value in post.items():
            if not sorts[name].contains(value):
                raise SortError(
                    f"{action.name}{dict(params)} sets {name} outside {sorts[name]}: {value!r}"
                )
        return Transition(
            action.name, dict(params), evaluate_outcome(case.outcome, state, params), post
        )
    raise NoCaseMatchedError(f"no case of {action.name}{dict(params)} matches the state")


def interpret_successors(model: Model, state: Mapping[str, Value]) -> list[Transition]:
    """Every enabled transition from ``state`` in binding order (reference semantics)."""
    result = []
    for action in model.actions:
        for params in action.bindings():
            step = interpret_step(model, state, action, params)
            if step is not None:
                result.append(step)
    return result


def interpret_invariants(model: Model, state: Mapping[str, Value]) -> list[str]:
    """Names of the invariants violated in ``state``."""
    return [
        inv.name for inv in model.invariants if not _as_bool(evaluate(inv.expr, state), inv.expr)
    ]


# --------------------------------------------------------------------------------------------
# Compiler: specialise per binding, unroll quantifiers, emit straight-line Python


@dataclass(frozen=True, slots=True)
class _Slot(Expr):
    """Compiler-internal: flat slot ``index`` of the pre-state (``post`` False) or post-state."""

    index: int
    post: bool


@dataclass(frozen=True, slots=True)
class _Path(Expr):
    """Compiler-internal: a map-valued partial selection of a state variable."""

    variable: str
    keys: tuple[Scalar, ...]
    post: bool


@dataclass(frozen=True, slots=True)
class _Local(Expr):
    """Compiler-internal: a hoisted ``Let`` value held in a Python local."""

    name: str


@dataclass(frozen=True, slots=True)
class _Bind(Expr):
    """Compiler-internal: ``body`` evaluated after assigning ``value`` to local ``name``."""

    name: str
    value: Expr
    body: Expr


@dataclass(frozen=True, slots=True)
class _Undefined(Expr):
    """Compiler-internal: a select at a key outside the map's domain; raises if evaluated."""

    message: str


@dataclass(frozen=True, slots=True)
class _Members(Expr):
    members: tuple[tuple[Scalar, Expr], ...]


@dataclass(frozen=True, slots=True)
class _Entries(Expr):
    entries: tuple[tuple[Expr, Expr], ...]


_ATOMS = (Const, _Slot, _Local, _Undefined)


def _implied_facts(expr: Expr, holds: bool) -> list[tuple[Expr, Const]]:
    """Atom values implied when ``expr`` evaluates to ``holds``."""
    if isinstance(expr, _Slot | _Local):
        return [(expr, Const(holds))]
    if isinstance(expr, Not):
        return _implied_facts(expr.arg, not holds)
    if holds and isinstance(expr, Eq):
        if isinstance(expr.lhs, _Slot | _Local) and isinstance(expr.rhs, Const):
            return [(expr.lhs, expr.rhs)]
        if isinstance(expr.rhs, _Slot | _Local) and isinstance(expr.lhs, Const):
            return [(expr.rhs, expr.lhs)]
        return []
    if (holds and isinstance(expr, And)) or (not holds and isinstance(expr, Or)):
        return [fact for arg in expr.args for fact in _implied_facts(arg, holds)]
    if isinstance(expr, Eq | Lt | Le):
        return [(expr, Const(holds))]
    return []


def _substitute(expr: Expr, facts: Mapping[Expr, Const]) -> Expr:
    """Replace atoms by constants in a specialised Boolean/arithmetic expression."""
    if isinstance(expr, _Slot | _Local):
        return facts.get(expr, expr)
    if isinstance(expr, And):
        return And(tuple(_substitute(a, facts) for a in expr.args))
    if isinstance(expr, Or):
        return Or(tuple(_substitute(a, facts) for a in expr.args))
    if isinstance(expr, Not):
        return Not(_substitute(expr.arg, facts))
    if isinstance(expr, Eq | Lt | Le):
        known = facts.get(expr)
        if known is not None:
            return known
        return type(expr)(_substitute(expr.lhs, facts), _substitute(expr.rhs, facts))
    if isinstance(expr, Add | Sub | Mul):
        return type(expr)(_substitute(expr.lhs, facts), _substitute(expr.rhs, facts))
    if isinstance(expr, Ite):
        return Ite(
            _substitute(expr.cond, facts),
            _substitute(expr.then, facts),
            _substitute(expr.else_, facts),
        )
    if isinstance(expr, _Bind):
        return _Bind(expr.name, _substitute(expr.value, facts), _substitute(expr.body, facts))
    return expr


def _mentions(expr: Expr, name: str) -> bool:
    """Does the specialised ``expr`` read local ``name``?"""
    if isinstance(expr, _Local):
        return expr.name == name
    if isinstance(expr, Const | _Slot | _Undefined | _Path):
        return False
    if isinstance(expr, _Members):
        return any(_mentions(c, name) for _, c in expr.members)
    if isinstance(expr, _Entries):
        return any(_mentions(c, name) or _mentions(v, name) for c, v in expr.entries)
    if isinstance(expr, And | Or):
        return any(_mentions(a, name) for a in expr.args)
    if isinstance(expr, MapLit):
        return any(_mentions(v, name) for v in expr.values)
    if isinstance(expr, Not):
        return _mentions(expr.arg, name)
    if isinstance(expr, Eq | Lt | Le | Add | Sub | Mul):
        return _mentions(expr.lhs, name) or _mentions(expr.rhs, name)
    if isinstance(expr, Ite):
        return (
            _mentions(expr.cond, name) or _mentions(expr.then, name) or _mentions(expr.else_, name)
        )
    if isinstance(expr, Store):
        return _mentions(expr.map, name) or _mentions(expr.key, name) or _mentions(expr.value, name)
    if isinstance(expr, _Bind):
        return _mentions(expr.value, name) or _mentions(expr.body, name)
    if isinstance(expr, SetOf):
        return _mentions(expr.cond, name)
    if isinstance(expr, ListOf):
        return _mentions(expr.cond, name)
    raise ModelError(f"unexpected node {type(expr).__name__} after specialisation")


class _Scope:
    """Locals already assigned on the current code path: value code -> local name."""

    def __init__(self, parent: _Scope | None = None):
        self.parent = parent
        self.known: dict[str, str] = {}
        self.alias: dict[str, str] = {}

    def lookup_value(self, code: str) -> str | None:
        scope: _Scope | None = self
        while scope is not None:
            if code in scope.known:
                return scope.known[code]
            scope = scope.parent
        return None

    def resolve(self, name: str) -> str:
        scope: _Scope | None = self
        while scope is not None:
            if name in scope.alias:
                return scope.alias[name]
            scope = scope.parent
        return name


class _Compiler:
    """Specialises expressions per action instance and emits Python source.

    Pre-state slots are the locals ``v<i>``; post-state slots of the case being emitted are
    ``n<i>`` (case updates) or ``m<i>`` (monitors).
    """

    def __init__(self, model: Model):
        self.model = model
        self.sorts = model.sorts()
        self.layout = model.layout()
        self.slot_index: dict[tuple[str, tuple[Scalar, ...]], int] = {
            (s.variable, s.keys): i for i, s in enumerate(self.layout)
        }
        self.counter = itertools.count()
        # Slots a case changes; a Next() of any other slot reads the pre-state slot.
        self.changed: set[int] | None = None

    def _slot(self, index: int, post: bool) -> _Slot:
        if post and self.changed is not None and index not in self.changed:
            return _Slot(index, False)
        return _Slot(index, post)

    # -- sort helpers ---------------------------------------------------------------------------

    def _path_sort(self, path: _Path) -> Sort:
        sort = self.sorts[path.variable]
        for _ in path.keys:
            assert isinstance(sort, MapSort)
            sort = sort.value
        return sort

    def _map_key_sort(self, expr: Expr) -> Sort:
        if isinstance(expr, _Path):
            sort = self._path_sort(expr)
            if not isinstance(sort, MapSort):
                raise SortError(f"Select on non-map variable path {expr.variable}{expr.keys}")
            return sort.key
        if isinstance(expr, Store):
            return self._map_key_sort(expr.map)
        if isinstance(expr, MapOf):
            return expr.domain
        if isinstance(expr, MapLit):
            return expr.key_sort
        if isinstance(expr, Ite):
            return self._map_key_sort(expr.then)
        if isinstance(expr, _Bind):
            return self._map_key_sort(expr.body)
        raise SortError(f"expected a map expression, got {type(expr).__name__}")

    # -- specialisation -------------------------------------------------------------------------

    def specialise(self, expr: Expr, env: Mapping[str, Expr], action: str | None) -> Expr:
        """Substitute parameters, unroll binders, fold constants, resolve constant selects."""
        sp = self.specialise
        if isinstance(expr, _ATOMS):
            return expr
        if isinstance(expr, Var | Next):
            post = isinstance(expr, Next)
            if expr.name not in self.sorts:
                raise UnboundNameError(f"unknown variable {expr.name}")
            if isinstance(self.sorts[expr.name], MapSort):
                return _Path(expr.name, (), post)
            return self._slot(self.slot_index[(expr.name, ())], post)
        if isinstance(expr, Param):
            if expr.name not in env:
                raise UnboundNameError(f"unbound parameter {expr.name}")
            return env[expr.name]
        if isinstance(expr, ActionIs):
            if action is None:
                raise UnboundNameError("ActionIs outside a monitor update")
            return Const(action == expr.name)
        if isinstance(expr, Select):
            return self._select(sp(expr.map, env, action), sp(expr.key, env, action), action)
        if isinstance(expr, Store):
            key = sp(expr.key, env, action)
            stored = Store(sp(expr.map, env, action), key, sp(expr.value, env, action))
            if isinstance(key, _ATOMS):
                return stored
            local = _Local(f"t{next(self.counter)}")
            return _Bind(local.name, key, Store(stored.map, local, stored.value))
        if isinstance(expr, MapOf):
            values = tuple(
                sp(expr.body, {**env, expr.name: Const(k)}, action) for k in expr.domain.values()
            )
            return MapLit(expr.domain, values)
        if isinstance(expr, MapLit):
            return MapLit(expr.key_sort, tuple(sp(v, env, action) for v in expr.values))
        if isinstance(expr, Not):
            arg = sp(expr.arg, env, action)
            if isinstance(arg, Const):
                return Const(not arg.value)
            if isinstance(arg, Not):
                return arg.arg
            return Not(arg)
        if isinstance(expr, And | Or):
            return self._junction(isinstance(expr, And), expr.args, env, action)
        if isinstance(expr, Implies):
            return sp(Or((Not(expr.lhs), expr.rhs)), env, action)
        if isinstance(expr, Eq | Lt | Le | Add | Sub | Mul):
            lhs = sp(expr.lhs, env, action)
            rhs = sp(expr.rhs, env, action)
            if isinstance(lhs, Const) and isinstance(rhs, Const):
                return Const(_fold(expr, lhs.value, rhs.value))
            if isinstance(expr, Eq | Le | Lt) and lhs == rhs:
                # specialised expressions are pure, so x == x and x <= x hold, x < x fails
                return Const(not isinstance(expr, Lt))
            return type(expr)(lhs, rhs)
        if isinstance(expr, Ite):
            cond = sp(expr.cond, env, action)
            if isinstance(cond, Const):
                return sp(expr.then if cond.value else expr.else_, env, action)
            then = sp(expr.then, env, action)
            else_ = sp(expr.else_, env, action)
            if then == else_:
                return then
            if then == TRUE and else_ == FALSE:
                return cond
            if then == FALSE and else_ == TRUE:
                return Not(cond)
            return Ite(cond, then, else_)
        if isinstance(expr, Let):
            value = sp(expr.value, env, action)
            if isinstance(value, Const | _Slot | _Local | _Path):
                return sp(expr.body, {**env, expr.name: value}, action)
            local = _Local(f"t{next(self.counter)}")
            body = sp(expr.body, {**env, expr.name: local}, action)
            if not _mentions(body, local.name):
                return body
            return _Bind(local.name, value, body)
        if isinstance(expr, ForAll | Exists):
            return self._junction(
                isinstance(expr, ForAll),
                tuple(expr.body for _ in expr.domain.values()),
                env,
                action,
                [{expr.name: Const(k)} for k in expr.domain.values()],
            )
        if isinstance(expr, Count):
            total: Expr = Const(0)
            for k in expr.domain.values():
                body = sp(expr.body, {**env, expr.name: Const(k)}, action)
                total = sp(Add(total, Ite(body, Const(1), Const(0))), {}, action)
            return total
        if isinstance(expr, SetOf | ListOf) and isinstance(expr.cond, _Members | _Entries):
            return expr
        if isinstance(expr, SetOf):
            members = tuple(
                (k, sp(expr.cond, {**env, expr.name: Const(k)}, action))
                for k in expr.domain.values()
            )
            return SetOf(expr.name, expr.domain, _Members(members))
        if isinstance(expr, ListOf):
            entries = tuple(
                (
                    sp(expr.cond, {**env, expr.name: Const(k)}, action),
                    sp(expr.item, {**env, expr.name: Const(k)}, action),
                )
                for k in expr.domain.values()
            )
            return ListOf(expr.name, expr.domain, _Entries(entries), Const(0))
        if isinstance(expr, _Path | _Bind | _Members | _Entries):
            return expr
        raise ModelError(f"cannot compile node {type(expr).__name__}")

    def _junction(
        self,
        is_and: bool,
        args: tuple[Expr, ...],
        env: Mapping[str, Expr],
        action: str | None,
        extra_envs: list[dict[str, Expr]] | None = None,
    ) -> Expr:
        """Specialise And/Or arguments left to right, stopping at a deciding constant."""
        kept: list[Expr] = []
        for position, arg in enumerate(args):
            arg_env = env if extra_envs is None else {**env, **extra_envs[position]}
            s = self.specialise(arg, arg_env, action)
            if isinstance(s, Const):
                if bool(s.value) == is_and:
                    continue
                return Const(not is_and)
            if (is_and and isinstance(s, And)) or (not is_and and isinstance(s, Or)):
                kept.extend(s.args)
            elif s not in kept:
                kept.append(s)
        if len(kept) > 1:
            refined = self._propagate(is_and, kept, action)
            if refined is None:
                return Const(not is_and)
            kept = refined
        if not kept:
            return Const(is_and)
        if len(kept) == 1:
            return kept[0]
        return And(tuple(kept)) if is_and else Or(tuple(kept))

    def _propagate(self, is_and: bool, parts: list[Expr], action: str | None) -> list[Expr] | None:
        """Use ``x == c`` facts of a conjunction (``x != c`` of a disjunction) in its siblings.

        In ``A and B`` the conjunct ``B`` only matters when ``A`` holds, and in ``A or B`` the
        disjunct ``B`` only matters when ``A`` fails, so a sibling may be simplified under that
        assumption. Returns None when the junction folds to its absorbing constant.
        """
        facts: dict[Expr, Const] = {}
        sources: dict[Expr, int] = {}
        for position, part in enumerate(parts):
            for atom, value in _implied_facts(part, is_and):
                if atom not in facts:
                    facts[atom] = value
                    sources[atom] = position
        if not facts:
            return parts
        result: list[Expr] = []
        for position, part in enumerate(parts):
            usable = {a: v for a, v in facts.items() if sources[a] != position}
            if usable:
                part = self.specialise(_substitute(part, usable), {}, action)
            if isinstance(part, Const):
                if bool(part.value) == is_and:
                    continue
                return None
            result.append(part)
        return result

    def refine(self, expr: Expr, facts: Mapping[Expr, Const]) -> Expr:
        """Simplify a specialised expression knowing the atom values in ``facts``."""
        if not facts:
            return expr
        return self.specialise(_substitute(expr, facts), {}, None)

    def _select(self, mapping: Expr, key: Expr, action: str | None) -> Expr:
        if isinstance(key, Const):
            return self._select_const(mapping, key.value, action)
        if not isinstance(key, _Slot | _Local):
            local = _Local(f"t{next(self.counter)}")
            return _Bind(local.name, key, self._select(mapping, local, action))
        key_sort = self._map_key_sort(mapping)
        keys = key_sort.values()
        result: Expr = _Undefined(f"key outside {key_sort}")
        for k in reversed(keys):
            branch = self._select_const(mapping, k, action)
            result = self.specialise(Ite(Eq(key, Const(k)), branch, result), {}, action)
        return result

    def _select_const(self, mapping: Expr, key: Scalar, action: str | None) -> Expr:
        if isinstance(mapping, _Path):
            sort = self._path_sort(mapping)
            if not isinstance(sort, MapSort):
                raise SortError(f"Select on non-map variable {mapping.variable}")
            if not sort.key.contains(key):
                return _Undefined(f"key {key!r} outside {sort.key} of {mapping.variable}")
            keys = (*mapping.keys, key)
            if isinstance(sort.value, MapSort):
                return _Path(mapping.variable, keys, mapping.post)
            return self._slot(self.slot_index[(mapping.variable, keys)], mapping.post)
        if isinstance(mapping, Store):
            if isinstance(mapping.key, Const):
                if mapping.key == Const(key):
                    return mapping.value
                return self._select_const(mapping.map, key, action)
            inner = self._select_const(mapping.map, key, action)
            return self.specialise(
                Ite(Eq(mapping.key, Const(key)), mapping.value, inner), {}, action
            )
        if isinstance(mapping, MapLit):
            if not mapping.key_sort.contains(key):
                return _Undefined(f"key {key!r} outside {mapping.key_sort}")
            return mapping.values[mapping.key_sort.index_of(key)]
        if isinstance(mapping, Ite):
            then = self._select_const(mapping.then, key, action)
            else_ = self._select_const(mapping.else_, key, action)
            return self.specialise(Ite(mapping.cond, then, else_), {}, action)
        if isinstance(mapping, _Bind):
            inner_body = self._select_const(mapping.body, key, action)
            if not _mentions(inner_body, mapping.name):
                return inner_body
            return _Bind(mapping.name, mapping.value, inner_body)
        raise SortError(f"Select on a non-map expression {type(mapping).__name__}")

    # -- emission -------------------------------------------------------------------------------

    def emit(
        self,
        expr: Expr,
        prelude: list[str],
        scope: _Scope,
        post_names: Mapping[int, str] | None = None,
    ) -> str:
        """Python source for a specialised scalar expression.

        ``Let`` values are assigned to locals in ``prelude`` (once per value on the current code
        path, tracked by ``scope``); specialised expressions are pure and total, so evaluating
        them eagerly is safe.
        """

        def go(e: Expr) -> str:
            if isinstance(e, Const):
                return repr(e.value)
            if isinstance(e, _Slot):
                if e.post:
                    if post_names is None:
                        raise UnboundNameError("Next() outside a monitor update")
                    return post_names[e.index]
                return f"v{e.index}"
            if isinstance(e, _Local):
                return scope.resolve(e.name)
            if isinstance(e, _Undefined):
                return f"_undefined({e.message!r})"
            if isinstance(e, _Bind):
                value_code = go(e.value)
                existing = scope.lookup_value(value_code)
                if existing is not None:
                    scope.alias[e.name] = existing
                else:
                    prelude.append(f"{e.name} = {value_code}")
                    scope.known[value_code] = e.name
                return go(e.body)
            if isinstance(e, Not):
                return f"(not {go(e.arg)})"
            if isinstance(e, And):
                return "(" + " and ".join(go(a) for a in e.args) + ")"
            if isinstance(e, Or):
                return "(" + " or ".join(go(a) for a in e.args) + ")"
            if isinstance(e, Eq):
                return f"({go(e.lhs)} == {go(e.rhs)})"
            if isinstance(e, Lt):
                return f"({go(e.lhs)} < {go(e.rhs)})"
            if isinstance(e, Le):
                return f"({go(e.lhs)} <= {go(e.rhs)})"
            if isinstance(e, Add):
                return f"({go(e.lhs)} + {go(e.rhs)})"
            if isinstance(e, Sub):
                return f"({go(e.lhs)} - {go(e.rhs)})"
            if isinstance(e, Mul):
                return f"({go(e.lhs)} * {go(e.rhs)})"
            if isinstance(e, Ite):
                return f"({go(e.then)} if {go(e.cond)} else {go(e.else_)})"
            if isinstance(e, SetOf):
                assert isinstance(e.cond, _Members)
                parts = ", ".join(f"({k!r}, {go(c)})" for k, c in e.cond.members)
                return f"frozenset(_k for _k, _c in ({parts},) if _c)"
            if isinstance(e, ListOf):
                assert isinstance(e.cond, _Entries)
                parts = ", ".join(f"({go(c)}, {go(v)})" for c, v in e.cond.entries)
                return f"tuple(_v for _c, _v in ({parts},) if _c)"
            if isinstance(e, _Path | Store | MapLit):
                raise SortError("a map value cannot be used as a scalar")
            raise ModelError(f"cannot emit node {type(e).__name__}")

        return go(expr)


def _fold(expr: Expr, lhs: Scalar, rhs: Scalar) -> Scalar:
    if isinstance(expr, Eq):
        return type(lhs) is type(rhs) and lhs == rhs
    if isinstance(lhs, bool | str) or isinstance(rhs, bool | str):
        raise SortError(f"{type(expr).__name__} needs integers, got {lhs!r} and {rhs!r}")
    if isinstance(expr, Lt):
        return lhs < rhs
    if isinstance(expr, Le):
        return lhs <= rhs
    if isinstance(expr, Add):
        return lhs + rhs
    if isinstance(expr, Sub):
        return lhs - rhs
    if isinstance(expr, Mul):
        return lhs * rhs
    raise ModelError(f"cannot fold {type(expr).__name__}")


@dataclass(frozen=True)
class Binding:
    """One action instance of a compiled model: its index, action name and parameters."""

    index: int
    action: str
    params: Mapping[str, Scalar]


Successor: TypeAlias = tuple[int, OutcomeValue, FlatState]


@dataclass(frozen=True)
class CompiledModel:
    """A model compiled to Python functions over flat state tuples.

    ``successors(s)`` returns ``[(binding_index, outcome, next_state), ...]`` in binding order
    (``next_state is s`` when a transition changes nothing); ``violations(s)`` returns the
    indices (into ``model.invariants``) of the invariants violated in ``s``.
    """

    model: Model
    bindings: tuple[Binding, ...]
    successors: Callable[[FlatState], list[Successor]]
    violations: Callable[[FlatState], tuple[int, ...]]
    source: str
    checked: bool


def compile_model(model: Model, *, checked: bool = False) -> CompiledModel:
    """Compile ``model`` to straight-line Python.

    Every action instance (action x parameter binding) is specialised: parameters become
    constants, quantifiers are unrolled, selects with constant keys become direct slot reads,
    constant sub-expressions are folded, guards are tested conjunct by conjunct and ``Let``
    values are computed once per code path. With ``checked`` the generated code also verifies
    that every post-state value lies in its variable's sort (slower; used by tests). The
    generated source is kept in the on-disk cache of :mod:`.compile_cache`, keyed by the
    model's content and this compiler's source, so each model is specialised once.
    """
    instances = [(action.name, params) for action in model.actions for params in action.bindings()]
    bindings = tuple(Binding(index, name, params) for index, (name, params) in enumerate(instances))
    key = compile_cache.entry_key(repr(model), checked, _compiler_source())
    source = compile_cache.load(key)
    if source is None:
        source = _generate_source(model, bindings, checked)
        compile_cache.store(key, source)
    namespace: dict[str, Any] = {
        "NoCaseMatchedError": NoCaseMatchedError,
        "_undefined": _raise_undefined,
        "_check_sorts": _make_sort_checker(model),
    }
    exec(compile(source, f"<compiled model {model.name}>", "exec"), namespace)
    return CompiledModel(
        model,
        bindings,
        namespace["successors"],
        namespace["violations"],
        source,
        checked,
    )


@functools.cache
def _compiler_source() -> bytes:
    """This module's source: the generated code is a function of it and of the model."""
    return Path(__file__).read_bytes()


def _generate_source(model: Model, bindings: Sequence[Binding], checked: bool) -> str:
    """The Python source of ``successors`` (one block per binding, in binding order) and
    ``violations`` (see :func:`compile_model`)."""
    actions = {action.name: action for action in model.actions}
    comp = _Compiler(model)
    width = len(comp.layout)
    monitored = {m.variable for m in model.monitors}
    lines: list[str] = []
    unpack = "(" + "".join(f"v{i}, " for i in range(width)) + ") = s"
    lines.append("def successors(s):")
    lines.append(f"    {unpack}")
    lines.append("    out = []")
    lines.append("    append = out.append")
    for binding in bindings:
        action = actions[binding.action]
        env: dict[str, Expr] = {k: Const(v) for k, v in binding.params.items()}
        lines.extend(_emit_binding(comp, model, action, binding, env, monitored, checked))
    lines.append("    return out")
    lines.append("")
    lines.append("def violations(s):")
    lines.append(f"    {unpack}")
    prelude: list[str] = []
    scope = _Scope()
    inv_codes = [
        comp.emit(comp.specialise(inv.expr, {}, None), prelude, scope) for inv in model.invariants
    ]
    lines.extend(f"    {p}" for p in prelude)
    if inv_codes:
        lines.append("    if " + " and ".join(inv_codes) + ":")
        lines.append("        return ()")
        lines.append("    bad = []")
        for k, code in enumerate(inv_codes):
            lines.append(f"    if not {code}:")
            lines.append(f"        bad.append({k})")
        lines.append("    return tuple(bad)")
    else:
        lines.append("    return ()")
    return "\n".join(lines) + "\n"


def _conjuncts(expr: Expr) -> list[Expr]:
    if isinstance(expr, And):
        return list(expr.args)
    if isinstance(expr, _Bind) and isinstance(expr.body, And):
        # keep the binding with the first conjunct that reads it
        return [_Bind(expr.name, expr.value, expr.body.args[0]), *expr.body.args[1:]]
    return [expr]


def _emit_binding(
    comp: _Compiler,
    model: Model,
    action: Action,
    binding: Binding,
    env: Mapping[str, Expr],
    monitored: set[str],
    checked: bool,
) -> list[str]:
    header = [f"    # {action.name} {dict(binding.params)}"]
    guard = comp.specialise(action.guard, env, None)
    if guard == FALSE:
        return header
    lines: list[str] = []
    depth = "    "
    scope = _Scope()
    facts: dict[Expr, Const] = {}
    for raw in _conjuncts(guard):
        conjunct = comp.refine(raw, facts)
        if conjunct == TRUE:
            continue
        if conjunct == FALSE:
            return header
        prelude: list[str] = []
        scope = _Scope(scope)
        code = comp.emit(conjunct, prelude, scope)
        lines.extend(f"{depth}{p}" for p in prelude)
        lines.append(f"{depth}if {code}:")
        depth += "    "
        for atom, value in _implied_facts(conjunct, True):
            facts.setdefault(atom, value)
    if depth == "    ":
        lines.append(f"{depth}if True:")
        depth += "    "
    matched_all = False
    for case in action.cases:
        cond = comp.refine(comp.specialise(case.condition, env, None), facts)
        if cond == FALSE:
            continue
        prelude = []
        scope = _Scope(scope)
        cond_code = comp.emit(cond, prelude, scope)
        lines.extend(f"{depth}{p}" for p in prelude)
        lines.append(f"{depth}if {cond_code}:")
        case_facts = dict(facts)
        for atom, value in _implied_facts(cond, True):
            case_facts.setdefault(atom, value)
        lines.extend(
            _emit_case(
                comp,
                model,
                action,
                binding,
                case,
                env,
                monitored,
                checked,
                depth + "    ",
                _Scope(scope),
                case_facts,
            )
        )
        if cond == TRUE:
            matched_all = True
            break
        lines.append(f"{depth}else:")
        depth += "    "
        for atom, value in _implied_facts(cond, False):
            facts.setdefault(atom, value)
    if not matched_all:
        message = f"no case of {action.name}{dict(binding.params)} matches the state"
        lines.append(f"{depth}raise NoCaseMatchedError({message!r})")
    return header + lines


def _emit_case(
    comp: _Compiler,
    model: Model,
    action: Action,
    binding: Binding,
    case: Case,
    env: Mapping[str, Expr],
    monitored: set[str],
    checked: bool,
    indent: str,
    scope: _Scope,
    facts: Mapping[Expr, Const],
) -> list[str]:
    lines: list[str] = []
    prelude: list[str] = []
    new_names: dict[int, str] = {}
    assigns: list[str] = []
    for target, expr in case.updates:
        if target in monitored:
            raise IllFormedModelError(f"{action.name} updates monitored variable {target}")
        value = comp.specialise(expr, env, None)
        for keys, _ in _flatten_sort(comp.sorts[target], ()):
            index = comp.slot_index[(target, keys)]
            leaf = value
            for key in keys:
                leaf = comp._select_const(leaf, key, None)
            leaf = comp.refine(leaf, facts)
            if leaf == _Slot(index, False):
                continue
            code = comp.emit(leaf, prelude, scope)
            new_names[index] = f"n{index}"
            assigns.append(f"n{index} = {code}")
    lines.extend(f"{indent}{p}" for p in prelude)
    lines.extend(f"{indent}{a}" for a in assigns)
    post_names = {i: new_names.get(i, f"v{i}") for i in range(len(comp.layout))}
    monitor_assigns: list[str] = []
    monitor_prelude: list[str] = []
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
                code = comp.emit(leaf, monitor_prelude, scope, post_names)
                monitor_assigns.append(f"m{index} = {code}")
                new_names[index] = f"m{index}"
    finally:
        comp.changed = None
    lines.extend(f"{indent}{p}" for p in monitor_prelude)
    lines.extend(f"{indent}{a}" for a in monitor_assigns)
    out_prelude: list[str] = []
    fields = []
    for fname, fexpr in case.outcome.fields:
        code = comp.emit(comp.refine(comp.specialise(fexpr, env, None), facts), out_prelude, scope)
        fields.append(f"({fname!r}, {code}), ")
    lines.extend(f"{indent}{p}" for p in out_prelude)
    outcome_code = f"({case.outcome.tag!r}, ({''.join(fields)}))"
    if new_names:
        slots = "".join(f"{new_names.get(i, f'v{i}')}, " for i in range(len(comp.layout)))
        state_code = f"({slots})"
    else:
        state_code = "s"
    if checked:
        lines.append(f"{indent}_ns = {state_code}")
        lines.append(f"{indent}_check_sorts(_ns, {action.name!r}, {dict(binding.params)!r})")
        state_code = "_ns"
    lines.append(f"{indent}append(({binding.index}, {outcome_code}, {state_code}))")
    return lines


def _raise_undefined(message: str) -> Any:
    raise SortError(message)


def _make_sort_checker(model: Model) -> Callable[[FlatState, str, Mapping[str, Scalar]], None]:
    layout = model.layout()

    def check(state: FlatState, action: str, params: Mapping[str, Scalar]) -> None:
        for slot, value in zip(layout, state, strict=True):
            if not slot.sort.contains(value):
                raise SortError(
                    f"{action}{dict(params)} sets {slot.variable}{list(slot.keys)} outside "
                    f"{slot.sort}: {value!r}"
                )

    return check


def outcome_as_dict(outcome: OutcomeValue) -> dict[str, Value]:
    """``("Busy", (("holder", 1),))`` -> ``{"tag": "Busy", "holder": 1}``."""
    tag, fields = outcome
    return {"tag": tag, **dict(fields)}
