"""Render a DSL model (``model/dsl.py``) as a Quint module.

The module is generated from the model's data alone, so every DSL model renders: the store
model of ``kernel_model.py``, the machine model of ``machine_model.py`` and every seeded
mutant. What it contains:

* a header comment naming the model and its bounds (``// lashspec-bounds: owners=1, ...``),
  which ``lashspec replay`` reads back when a Quint trace names the spec as its source;
* the model's state variables with the same names and sorts: ``Bool`` as ``bool``, integer
  ranges as ``int``, enums as ``str``, maps as Quint maps (``int -> bool``, nested maps as
  maps of maps), ghost variables included (the invariants read them);
* one extra state variable ``outcome`` of a sum type ``Outcome`` with one variant per outcome
  tag (fields as a record payload), so Quint's traces carry each step's observable result;
* ``init``, and one action per model action, named as the action, each parameter a
  ``nondet`` pick over its domain named as the parameter (so ``mbt::nondetPicks`` uses the
  trace vocabulary's names); the guard, then the first case whose condition holds, exactly as
  the DSL: ``case_taken`` is the index of that case, every update and the outcome select on it,
  and the monitors (ghost updates) read the post-state through ``post_<variable>`` values;
* every invariant as a ``val`` of the same name, and ``all_invariants``, their conjunction;
* ``step``, the choice of any action.

An enabled action instance that no case matches is a model error in the DSL; here it is
simply disabled (``case_taken >= 0`` is part of the action), which the explorer would report.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

from .dsl import (
    FALSE,
    TRUE,
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
    ForAll,
    Implies,
    IntSort,
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
    Mul,
    Next,
    Not,
    Or,
    Outcome,
    Param,
    Select,
    SetOf,
    Sort,
    Store,
    Sub,
    Value,
    Var,
    children,
    rebuild,
    transform,
)

#: The state variable holding each step's outcome, and its sum type.
OUTCOME_VARIABLE = "outcome"
OUTCOME_TYPE = "Outcome"
#: The local naming the index of the case an action takes.
CASE_LOCAL = "case_taken"
#: Prefix of the locals holding an action's post-state values (read by monitors).
POST_PREFIX = "post_"
#: Header lines ``replay`` reads back (see :func:`header_fields`).
HEADER_MODEL = "lashspec-model"
HEADER_BOUNDS = "lashspec-bounds"

# Quint's reserved words and built-in type names: no model name may render as one of them.
_RESERVED_WORDS = """module import export from as const var val def pure action temporal nondet
    assume type if else and or iff implies not all any match true false Set List Map Rec Tup
    Bool Int Nat str int bool run then reps fail expect Some None init step"""
QUINT_RESERVED = frozenset(_RESERVED_WORDS.split())
_IDENTIFIER = re.compile(r"[a-z_][A-Za-z0-9_]*")
_CONSTRUCTOR = re.compile(r"[A-Z][A-Za-z0-9_]*")


class QuintRenderError(ModelError):
    """A model that cannot be written as Quint (a name Quint reserves, clashing types)."""


# --------------------------------------------------------------------------------------------
# Types


@dataclass(frozen=True)
class _SetType:
    element: _Type


@dataclass(frozen=True)
class _ListType:
    element: _Type


_Type = Sort | _SetType | _ListType


def _type_text(sort: _Type) -> str:
    if isinstance(sort, BoolSort):
        return "bool"
    if isinstance(sort, IntSort):
        return "int"
    if isinstance(sort, EnumSort):
        return "str"
    if isinstance(sort, MapSort):
        value = _type_text(sort.value)
        return f"{_type_text(sort.key)} -> {f'({value})' if '->' in value else value}"
    if isinstance(sort, _SetType):
        return f"Set[{_type_text(sort.element)}]"
    if isinstance(sort, _ListType):
        return f"List[{_type_text(sort.element)}]"
    raise QuintRenderError(f"no Quint type for sort {sort}")


def _infer(expr: Expr, scope: Mapping[str, _Type], variables: Mapping[str, Sort]) -> _Type:
    """The sort of an expression, as far as its Quint type is concerned."""
    if isinstance(expr, Const):
        if isinstance(expr.value, bool):
            return BoolSort()
        if isinstance(expr.value, int):
            return IntSort(expr.value, expr.value)
        return EnumSort("str", (expr.value,))
    if isinstance(expr, Var | Next):
        return variables[expr.name]
    if isinstance(expr, Param):
        return scope[expr.name]
    if isinstance(expr, Select):
        mapping = _infer(expr.map, scope, variables)
        if not isinstance(mapping, MapSort):
            raise QuintRenderError("a select on a value that is not a map")
        return mapping.value
    if isinstance(expr, Store):
        return _infer(expr.map, scope, variables)
    if isinstance(expr, MapOf):
        body = _infer(expr.body, {**scope, expr.name: expr.domain}, variables)
        if not isinstance(body, Sort):
            raise QuintRenderError("a map of sets or lists")
        return MapSort(expr.domain, body)
    if isinstance(expr, MapLit):
        value = _infer(expr.values[0], scope, variables)
        if not isinstance(value, Sort):
            raise QuintRenderError("a map literal of sets or lists")
        return MapSort(expr.key_sort, value)
    if isinstance(expr, Not | And | Or | Implies | Eq | Lt | Le | ActionIs | ForAll | Exists):
        return BoolSort()
    if isinstance(expr, Add | Sub | Mul | Count):
        return IntSort(0, 0)
    if isinstance(expr, Ite):
        return _infer(expr.then, scope, variables)
    if isinstance(expr, Let):
        bound = _infer(expr.value, scope, variables)
        return _infer(expr.body, {**scope, expr.name: bound}, variables)
    if isinstance(expr, SetOf):
        return _SetType(expr.domain)
    if isinstance(expr, ListOf):
        return _ListType(_infer(expr.item, {**scope, expr.name: expr.domain}, variables))
    raise QuintRenderError(f"cannot type expression node {type(expr).__name__}")


# --------------------------------------------------------------------------------------------
# Expressions


def _literal(value: Value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, Mapping):
        pairs = ", ".join(f"{_literal(k)} -> {_literal(v)}" for k, v in value.items())
        return f"Map({pairs})"
    raise QuintRenderError(f"no Quint literal for {value!r}")


def _domain(sort: Sort) -> str:
    """A finite key sort as a Quint set."""
    if isinstance(sort, IntSort):
        return f"{sort.lo}.to({sort.hi})"
    return "Set(" + ", ".join(_literal(v) for v in sort.values()) + ")"


def _domain_list(sort: Sort) -> str:
    """A finite key sort as a Quint list, in the sort's order (ListOf keeps domain order)."""
    return "[" + ", ".join(_literal(v) for v in sort.values()) + "]"


@dataclass
class _Context:
    """What names mean while rendering one expression."""

    binders: dict[str, str]  # DSL binder name -> its Quint name
    post: Mapping[str, str]  # variable -> the Quint name of its post-state value (monitors)
    action: str | None  # the action being rendered, for ActionIs
    fresh: list[int]  # shared counter for fresh binder names
    sharing: _Sharing | None = None

    def bind(self, name: str) -> tuple[str, _Context]:
        self.fresh[0] += 1
        quint_name = f"{name}_{self.fresh[0]}"
        inner = _Context(
            {**self.binders, name: quint_name}, self.post, self.action, self.fresh, self.sharing
        )
        return quint_name, inner


#: Sub-expressions smaller than this (in nodes) are written out wherever they occur.
SHARED_MIN_NODES = 12
_BINDING_NODES = (Let, MapOf, ForAll, Exists, Count, SetOf, ListOf)


@dataclass
class _Sharing:
    """Sub-expressions that occur more than once, written once as ``def``s.

    The module is rendered twice: the first pass counts every (folded) sub-expression, the
    second writes the repeated large ones as calls of ``shared_N(free parameters)``. The
    module gets much shorter, and Quint's parser and type checker take time in proportion.
    """

    state_variables: frozenset[str]
    counts: dict[Expr, int] = field(default_factory=dict)
    table: dict[Expr, tuple[str, tuple[str, ...]]] = field(default_factory=dict)
    defining: Expr | None = None  # the def whose body is being written (not a call of itself)
    _sizes: dict[int, int] = field(default_factory=dict)

    def size(self, expr: Expr) -> int:
        known = self._sizes.get(id(expr))
        if known is None:
            known = 1 + sum(self.size(kid) for kid in children(expr))
            self._sizes[id(expr)] = known
        return known

    def choose(self) -> None:
        """Share what still occurs more than once once the larger shared ones are written
        once (a part of a shared expression is counted once per def, not per call)."""
        counts = dict(self.counts)
        chosen = []
        for expr in sorted(counts, key=self.size, reverse=True):
            count = counts[expr]
            if count < 2 or self.size(expr) < SHARED_MIN_NODES or _mentions_action(expr):
                continue
            chosen.append(expr)
            for part in _proper_parts(expr):
                if part in counts:
                    counts[part] -= count - 1
        chosen.sort(key=self.size)  # smaller first: a def only calls earlier ones
        for number, expr in enumerate(chosen, start=1):
            self.table[expr] = (f"shared_{number}", _free_names(expr, self.state_variables))
        self.counts = {}


def _mentions_action(expr: Expr) -> bool:
    if isinstance(expr, Next | ActionIs):
        return True
    return any(_mentions_action(kid) for kid in children(expr))


def _proper_parts(expr: Expr) -> Iterator[Expr]:
    for kid in children(expr):
        yield kid
        yield from _proper_parts(kid)


def _free_names(expr: Expr, state_variables: frozenset[str]) -> tuple[str, ...]:
    """The names a shared ``expr`` takes as parameters, in first-occurrence order: its free
    ``Param``s and the action's locals it reads (post-state values, hoisted ``Let``s)."""
    found: list[str] = []

    def walk(node: Expr, bound: frozenset[str]) -> None:
        if isinstance(node, Param):
            if node.name not in bound and node.name not in found:
                found.append(node.name)
            return
        if isinstance(node, Var):
            if node.name not in state_variables and node.name not in found:
                found.append(node.name)
            return
        if isinstance(node, Let):
            walk(node.value, bound)
            walk(node.body, bound | {node.name})
            return
        inner = bound | {node.name} if isinstance(node, _BINDING_NODES) else bound
        for kid in children(node):
            walk(kid, inner)

    walk(expr, frozenset())
    return tuple(found)


def _simplify(expr: Expr, action: str | None) -> Expr:
    """``expr`` with ``ActionIs`` decided for ``action`` and constant Boolean structure folded.

    Monitors read the parameters of many actions under ``ActionIs`` guards; folding removes
    the other actions' parts, whose parameters do not exist in this action's Quint text.
    """

    def fold(node: Expr) -> Expr | None:
        if isinstance(node, ActionIs):
            return TRUE if node.name == action else FALSE
        kids = [_simplify(kid, action) for kid in children(node)] if children(node) else []
        if isinstance(node, And):
            if FALSE in kids:
                return FALSE
            rest = tuple(k for k in kids if k != TRUE)
            return (rest[0] if len(rest) == 1 else And(rest)) if rest else TRUE
        if isinstance(node, Or):
            if TRUE in kids:
                return TRUE
            rest = tuple(k for k in kids if k != FALSE)
            return (rest[0] if len(rest) == 1 else Or(rest)) if rest else FALSE
        if isinstance(node, Not):
            if kids[0] in (TRUE, FALSE):
                return FALSE if kids[0] == TRUE else TRUE
            return Not(kids[0])
        if isinstance(node, Implies):
            lhs, rhs = kids
            if lhs == FALSE or rhs == TRUE:
                return TRUE
            if lhs == TRUE:
                return rhs
            return Not(lhs) if rhs == FALSE else Implies(lhs, rhs)
        if isinstance(node, Eq) and kids[0] == kids[1]:
            return TRUE  # e.g. a monitor comparing a variable the action leaves unchanged
        if isinstance(node, Eq) and isinstance(kids[0], Const) and isinstance(kids[1], Const):
            return FALSE  # distinct constants (equal ones were caught above)
        if isinstance(node, Ite):
            cond, then, else_ = kids
            if cond in (TRUE, FALSE):
                return then if cond == TRUE else else_
            return Ite(cond, then, else_)
        return rebuild(node, kids) if kids else None

    return transform(expr, fold)


def _render(expr: Expr, ctx: _Context, minimum: int = 0) -> str:
    """``expr`` as Quint text, parenthesised unless it binds at least as tight as ``minimum``
    (an assignment's right side must bind tighter than ``==``: ``x' = a or b`` would parse as
    ``(x' = a) or b``)."""
    return _operand(_simplify(expr, ctx.action), ctx, minimum)


# Operator precedence (Quint's, loosest first): only what binds looser than its position
# needs parentheses. Fewer parentheses also keep Quint's parser fast: it slows down sharply
# on deeply parenthesised text.
_LOOSE, _IMPLIES, _OR, _AND, _COMPARE, _ADD, _MUL, _UNARY, _ATOM = range(9)
_COMPARISONS: dict[type, str] = {Lt: "<", Le: "<="}
_ARITHMETIC: dict[type, tuple[str, int]] = {Add: ("+", _ADD), Sub: ("-", _ADD), Mul: ("*", _MUL)}


def _render_folded(expr: Expr, ctx: _Context) -> str:
    return _emit(expr, ctx)[0]


def _operand(expr: Expr, ctx: _Context, minimum: int) -> str:
    text, level = _emit(expr, ctx)
    return text if level >= minimum else f"({text})"


def _emit(expr: Expr, ctx: _Context) -> tuple[str, int]:
    """Quint text for ``expr`` and the precedence level of its outermost operator."""

    sharing = ctx.sharing
    if sharing is not None and sharing.defining is not expr:
        if sharing.table:
            shared = sharing.table.get(expr)
            if shared is not None:
                name, params = shared
                if not params:
                    return name, _ATOM  # a state-only val
                arguments = ", ".join(ctx.binders.get(p, p) for p in params)  # locals: as named
                return f"{name}({arguments})", _ATOM
        else:
            sharing.counts[expr] = sharing.counts.get(expr, 0) + 1

    def top(e: Expr) -> str:
        return _emit(e, ctx)[0]

    def arg(e: Expr, minimum: int) -> str:
        return _operand(e, ctx, minimum)

    if isinstance(expr, Const):
        value = expr.value
        negative = isinstance(value, int) and not isinstance(value, bool) and value < 0
        return _literal(value), _UNARY if negative else _ATOM
    if isinstance(expr, Var):
        return expr.name, _ATOM
    if isinstance(expr, Next):
        return ctx.post.get(expr.name, expr.name), _ATOM
    if isinstance(expr, Param):
        return ctx.binders.get(expr.name, expr.name), _ATOM
    if isinstance(expr, ActionIs):
        if ctx.action is None:
            raise QuintRenderError("ActionIs outside an action")
        return ("true" if expr.name == ctx.action else "false"), _ATOM
    if isinstance(expr, Select):
        return f"{arg(expr.map, _ATOM)}.get({top(expr.key)})", _ATOM
    if isinstance(expr, Store):
        return f"{arg(expr.map, _ATOM)}.set({top(expr.key)}, {top(expr.value)})", _ATOM
    if isinstance(expr, MapLit):
        keys = expr.key_sort.values()
        pairs = ", ".join(
            f"{_literal(k)} -> {arg(v, _ADD)}" for k, v in zip(keys, expr.values, strict=True)
        )
        return f"Map({pairs})", _ATOM
    if isinstance(expr, Not):
        if isinstance(expr.arg, Eq):
            return f"{arg(expr.arg.lhs, _ADD)} != {arg(expr.arg.rhs, _ADD)}", _COMPARE
        return f"not({top(expr.arg)})", _ATOM
    if isinstance(expr, And | Or):
        if not expr.args:
            return ("true" if isinstance(expr, And) else "false"), _ATOM
        level = _AND if isinstance(expr, And) else _OR
        word = " and " if isinstance(expr, And) else " or "
        return word.join(arg(a, level + 1) for a in expr.args), level
    if isinstance(expr, Implies):
        return f"{arg(expr.lhs, _OR)} implies {arg(expr.rhs, _OR)}", _IMPLIES
    if isinstance(expr, Eq):
        return f"{arg(expr.lhs, _ADD)} == {arg(expr.rhs, _ADD)}", _COMPARE
    if type(expr) in _COMPARISONS:
        operator = _COMPARISONS[type(expr)]
        return f"{arg(expr.lhs, _ADD)} {operator} {arg(expr.rhs, _ADD)}", _COMPARE  # type: ignore[attr-defined]
    if type(expr) in _ARITHMETIC:
        operator, level = _ARITHMETIC[type(expr)]
        lhs, rhs = expr.lhs, expr.rhs  # type: ignore[attr-defined]
        return f"{arg(lhs, level)} {operator} {arg(rhs, level + 1)}", level
    if isinstance(expr, Ite):
        return f"if ({top(expr.cond)}) {arg(expr.then, _IMPLIES)} else {top(expr.else_)}", _LOOSE
    if isinstance(expr, Let):
        name, inner = ctx.bind(expr.name)
        return f"{{ val {name} = {top(expr.value)} {_render_folded(expr.body, inner)} }}", _ATOM
    if isinstance(expr, MapOf | ForAll | Exists | Count | SetOf):
        name, inner = ctx.bind(expr.name)
        body = _render_folded(expr.cond if isinstance(expr, SetOf) else expr.body, inner)
        method = {MapOf: "mapBy", ForAll: "forall", Exists: "exists"}.get(type(expr), "filter")
        rendered = f"{_domain(expr.domain)}.{method}({name} => {body})"
        return (f"{rendered}.size()" if isinstance(expr, Count) else rendered), _ATOM
    if isinstance(expr, ListOf):
        name, inner = ctx.bind(expr.name)
        cond, item = _render_folded(expr.cond, inner), _render_folded(expr.item, inner)
        return (
            f"{_domain_list(expr.domain)}.foldl(List(), (acc, {name}) => "
            f"if ({cond}) acc.append({item}) else acc)"
        ), _ATOM
    raise QuintRenderError(f"cannot render expression node {type(expr).__name__}")


# --------------------------------------------------------------------------------------------
# The module


def module_name(model: Model) -> str:
    """The Quint module name of ``model``: its name with every other character as ``_``."""
    name = re.sub(r"[^A-Za-z0-9_]", "_", model.name).strip("_").lower()
    return name if _IDENTIFIER.fullmatch(name or "-") else f"m_{name}"


def header_fields(text: str) -> dict[str, str]:
    """The ``// lashspec-...: value`` header lines of a rendered module, by key."""
    fields: dict[str, str] = {}
    for line in text.splitlines():
        match = re.fullmatch(r"\s*//\s*(lashspec-[a-z]+):\s*(.*?)\s*", line)
        if match:
            fields[match.group(1)] = match.group(2)
        elif line.strip() and not line.lstrip().startswith("//"):
            break  # the header ends at the first line of code
    return fields


def format_bounds(bounds: Mapping[str, int]) -> str:
    """``owners=1, batches=2``: the header's and ``--bounds``'s notation."""
    return ", ".join(f"{name}={value}" for name, value in bounds.items())


def _check_names(model: Model) -> None:
    names = [v.name for v in model.variables] + [a.name for a in model.actions]
    names += [i.name for i in model.invariants]
    names += [p for a in model.actions for p, _ in a.params]
    for name in names:
        if not _IDENTIFIER.fullmatch(name) or name in QUINT_RESERVED:
            raise QuintRenderError(f"{name!r} cannot be a Quint name (reserved or not lower case)")
    taken = {v.name for v in model.variables} | {a.name for a in model.actions}
    for name in (OUTCOME_VARIABLE, CASE_LOCAL, "all_invariants", "step"):
        if name in taken:
            raise QuintRenderError(f"the model uses {name!r}, which the rendering needs")


def _outcome_variants(model: Model) -> dict[str, dict[str, str]]:
    """Every outcome tag with its fields' Quint types; one shape per tag across the model."""
    variables = model.sorts()
    variants: dict[str, dict[str, str]] = {}
    for action in model.actions:
        scope: dict[str, _Type] = dict(action.params)
        for case in action.cases:
            tag = case.outcome.tag
            if not _CONSTRUCTOR.fullmatch(tag) or tag in QUINT_RESERVED:
                raise QuintRenderError(f"outcome tag {tag!r} cannot be a Quint variant")
            fields = {
                name: _type_text(_infer(value, scope, variables))
                for name, value in case.outcome.fields
            }
            if variants.setdefault(tag, fields) != fields:
                raise QuintRenderError(
                    f"outcome {tag} has fields {variants[tag]} and {fields} (in {action.name})"
                )
    return variants


def _outcome_text(tag: str, fields: tuple[tuple[str, Expr], ...], ctx: _Context) -> str:
    if not fields:
        return tag
    record = ", ".join(f"{name}: {_render(value, ctx, _ADD)}" for name, value in fields)
    return f"{tag}({{ {record} }})"


def _choice(arms: list[tuple[str, str]], default: str) -> str:
    """``if (c0) v0 else if (c1) v1 else default`` over ``arms``."""
    text = default
    for cond, value in reversed(arms):
        text = f"if ({cond}) {value} else {text}"
    return text


def _post_state(expr: Expr, post: Mapping[str, str]) -> Expr:
    """``Next(v)`` as the action's post-state value of ``v``, or ``v`` itself when the action
    leaves it alone (so that folding sees ``v == v`` and drops the monitor's dead parts)."""

    def replace(node: Expr) -> Expr | None:
        if isinstance(node, Next):
            return Var(post.get(node.name, node.name))
        return None

    return transform(expr, replace)


def _substitute_param(expr: Expr, name: str, replacement: Expr) -> Expr:
    """``expr`` with the free ``Param(name)`` replaced (binders of ``name`` shadow it)."""

    def replace(node: Expr) -> Expr | None:
        if isinstance(node, Param) and node.name == name:
            return replacement
        if isinstance(node, Let) and node.name == name:
            return Let(node.name, _substitute_param(node.value, name, replacement), node.body)
        if isinstance(node, MapOf | ForAll | Exists | Count | SetOf | ListOf):
            return node if node.name == name else None
        return None

    return transform(expr, replace)


def _hoist_lets(case: Case, index: int) -> tuple[Case, list[tuple[str, Expr]]]:
    """``case`` with the ``Let``s that open its updates and outcome fields taken out as
    action-level values (``h_case1``): the claim cases bind the same head slot in every
    update, and writing it once keeps the module small (Quint parses slowly)."""
    hoisted: dict[tuple[str, Expr], str] = {}

    def peel(expr: Expr) -> Expr:
        while isinstance(expr, Let):
            key = (expr.name, expr.value)
            local = hoisted.setdefault(key, f"{expr.name}_case{index}_{len(hoisted)}")
            expr = _substitute_param(expr.body, expr.name, Var(local))
        return expr

    rewritten = Case(
        case.condition,
        [(name, peel(value)) for name, value in case.updates],
        Outcome(case.outcome.tag, [(name, peel(value)) for name, value in case.outcome.fields]),
    )
    return rewritten, [(local, value) for (_, value), local in hoisted.items()]


def _render_action(model: Model, action_index: int, sharing: _Sharing) -> list[str]:
    action = model.actions[action_index]
    fresh = [0]
    pre = _Context({}, {}, action.name, fresh, sharing)
    lines = [f"  action {action.name} = {{"]
    for name, sort in action.params:
        lines.append(f"    nondet {name} = {_domain(sort)}.oneOf()")
    conditions = [_render(case.condition, pre) for case in action.cases]
    # The first case whose condition holds; an always-true condition ends the chain.
    arms: list[tuple[str, str]] = []
    default = "-1"
    for index, cond in enumerate(conditions):
        if cond == "true":
            default = str(index)
            break
        arms.append((cond, str(index)))
    lines.append("    all {")
    lines.append(f"      {_render(action.guard, pre)},")
    lines.append(f"      val {CASE_LOCAL} = {_choice(arms, default)}")
    cases = []
    for index, case in enumerate(action.cases):
        rewritten, hoisted = _hoist_lets(case, index)
        cases.append(rewritten)
        for local, bound in hoisted:
            lines.append(f"      val {local} = {_render(bound, pre)}")
    updated = [v.name for v in model.variables if any(v.name in c.update_map() for c in cases)]
    post = {name: f"{POST_PREFIX}{name}" for name in updated}
    for name in updated:
        branches = [
            (f"{CASE_LOCAL} == {index}", _render(case.update_map()[name], pre, _IMPLIES))
            for index, case in enumerate(cases)
            if name in case.update_map()
        ]
        lines.append(f"      val {post[name]} = {_choice(branches, name)}")
    monitored = {m.variable: m for m in model.monitors}
    after = _Context({}, post, action.name, fresh, sharing)
    lines.append("      all {")
    if default == "-1":
        lines.append(f"        {CASE_LOCAL} >= 0,")
    for variable in model.variables:
        name = variable.name
        if name in monitored:
            value = _render(_post_state(monitored[name].update, post), after, _ADD)
        else:
            value = post.get(name, name)
        lines.append(f"        {name}' = {value},")
    outcomes = [
        (f"{CASE_LOCAL} == {index}", _outcome_text(c.outcome.tag, c.outcome.fields, pre))
        for index, c in enumerate(cases)
    ]
    *first, (_, last) = outcomes
    lines.append(f"        {OUTCOME_VARIABLE}' = {_choice(first, last)},")
    lines.append("      }")
    lines.append("    }")
    lines.append("  }")
    return lines


def render_quint(model: Model) -> str:
    """``model`` (built at its bounds) as the text of one Quint module; see the module doc."""
    _check_names(model)
    variants = _outcome_variants(model)
    initial_tag = "Ok" if variants.get("Ok") == {} else "Init"
    if initial_tag == "Init":
        variants = {"Init": {}, **variants}
    lines = [
        f"// Generated by lashspec (model/quint.py) from the DSL model {model.name}; do not edit.",
        f"// {HEADER_MODEL}: {model.name}",
        f"// {HEADER_BOUNDS}: {format_bounds(model.bounds)}",
        "// Simulate: quint run --mbt --out-itf=trace_{seq}.itf.json --invariant all_invariants "
        "<this file>",
        f"module {module_name(model)} {{",
        "  // Each step's observable result (docs/trace-format.md §4); "
        f"{initial_tag} in the initial state.",
        f"  type {OUTCOME_TYPE} =",
    ]
    for tag, fields in variants.items():
        payload = ", ".join(f"{name}: {text}" for name, text in fields.items())
        lines.append(f"    | {tag}({{ {payload} }})" if fields else f"    | {tag}")
    lines.append("")
    for variable in model.variables:
        comment = f"  // {variable.doc}" if variable.doc else ""
        lines.append(f"  var {variable.name}: {_type_text(variable.sort)}{comment}")
    lines.append(f"  var {OUTCOME_VARIABLE}: {OUTCOME_TYPE}")
    lines.append("")
    lines.append("  action init = all {")
    for variable in model.variables:
        lines.append(f"    {variable.name}' = {_literal(model.init[variable.name])},")
    lines.append(f"    {OUTCOME_VARIABLE}' = {initial_tag},")
    lines.append("  }")
    sharing = _Sharing(frozenset(v.name for v in model.variables))
    _render_body(model, sharing)  # the counting pass
    sharing.choose()
    body = _render_body(model, sharing)
    if sharing.table:
        lines.append("")
        lines.append("  // Sub-expressions the actions and invariants share, each written once.")
    for expr, (name, params) in sharing.table.items():
        sharing.defining = expr
        text = _emit(expr, _Context({}, {}, None, [0], sharing))[0]
        declared = f"def {name}({', '.join(params)})" if params else f"val {name}"
        lines.append(f"  {declared} = {text}")
    sharing.defining = None
    lines.extend(body)
    lines.append("}")
    return "\n".join(lines) + "\n"


def _render_body(model: Model, sharing: _Sharing) -> list[str]:
    """The actions, ``step`` and the invariants."""
    lines: list[str] = []
    for index in range(len(model.actions)):
        lines.append("")
        lines.extend(_render_action(model, index, sharing))
    lines.append("")
    lines.append("  action step = any {")
    lines.extend(f"    {action.name}," for action in model.actions)
    lines.append("  }")
    lines.append("")
    fresh = [0]
    for invariant in model.invariants:
        ctx = _Context({}, {}, None, fresh, sharing)
        lines.append(f"  // {invariant.statement} ({invariant.reference})")
        lines.append(f"  val {invariant.name} = {_render(invariant.expr, ctx)}")
    names = ", ".join(i.name for i in model.invariants)
    lines.append(
        f"  val all_invariants = and {{ {names} }}" if names else "  val all_invariants = true"
    )
    return lines


# --------------------------------------------------------------------------------------------
# Running Quint

#: Environment variable naming a Quint executable to use instead of the cached install.
QUINT_ENV = "LASHSPEC_QUINT"


def quint_cache_dir() -> Path:
    """Where ``tools/quint/install`` puts the pinned Quint (``.../lashspec/quint``)."""
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "lashspec" / "quint"


def find_quint() -> Path | None:
    """The Quint executable: ``$LASHSPEC_QUINT``, the cached pinned install, or ``quint`` on
    PATH; None when there is none (a ``$LASHSPEC_QUINT`` naming no file counts as none)."""
    configured = os.environ.get(QUINT_ENV)
    if configured:
        return Path(configured) if Path(configured).is_file() else None
    cached = quint_cache_dir() / "node_modules" / ".bin" / "quint"
    if cached.exists():
        return cached
    on_path = shutil.which("quint")
    return Path(on_path) if on_path else None


def render_system(system: str, bounds: Mapping[str, int], mutant: str | None = None) -> str:
    """``render_quint`` of the ``store`` or ``machine`` model (or of the named seeded bug of the
    store model) at ``bounds``, defaults for the bounds not given."""
    from .kernel_model import Bounds, build_model
    from .machine_model import MachineBounds, build_machine_model
    from .mutants import build_mutant

    if system == "machine":
        if mutant is not None:
            raise QuintRenderError("seeded bugs are store-model bugs: drop --mutant or --system")
        return render_quint(build_machine_model(MachineBounds(**bounds)))
    if system != "store":
        raise QuintRenderError(f"unknown system {system!r}; expected store or machine")
    if mutant is not None:
        return render_quint(build_mutant(mutant, Bounds(**bounds)))
    return render_quint(build_model(Bounds(**bounds)))
