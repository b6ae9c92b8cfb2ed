"""The runtime-scenario phase-order rule as an automaton in the model DSL.

Theory of operation
-------------------
A runtime scenario is a list of phases; ``validate_phase_order`` (scenarios.md §4.5) walks the
list once with two flags, ``saw_live`` and ``saw_turn_work``, and rejects the list as soon as a
rule breaks. The same walk is a finite automaton: each phase is an action that is always
enabled (a phase can always be appended), the flags are state variables, and a sticky ``valid``
flag records whether every rule held so far. A phase list is accepted iff the state reached by
taking its phases in order has ``valid`` set. The rule "a phase that releases the lease must be
the last one" needs to look ahead in the list; the automaton instead remembers that a releasing
phase was taken (``ended``) and rejects any later phase, which accepts the same lists.

Per phase (in the reference's order): a phase taken after a releasing phase invalidates; a phase
that requires a live lease sets ``saw_live``; ``DeadLeaseReclaim`` invalidates when ``saw_live``
was already set and then sets it; ``TurnWorkClaim`` sets ``saw_turn_work``;
``StaleQueueCompletionFault`` needs ``saw_turn_work``; a misaligned next-turn input claim
(alias and text lists of different length) always invalidates. The symbols are those of the
seed's property test ``runtime_state_machine_property_phase_order_matches_scenario_dsl``.
"""

from __future__ import annotations

from dataclasses import dataclass

from .dsl import FALSE, TRUE, Action, BoolSort, Case, Expr, Model, Outcome, Var, Variable, all_of


@dataclass(frozen=True)
class PhaseKind:
    """The attributes of one phase symbol that the order rule reads."""

    name: str
    requires_live_lease: bool = False
    releases_lease: bool = False
    is_reclaim: bool = False
    claims_turn_work: bool = False
    needs_turn_work: bool = False
    misaligned: bool = False


PHASES: tuple[PhaseKind, ...] = (
    PhaseKind("Ingress"),
    PhaseKind("Checkpoint", requires_live_lease=True),
    PhaseKind("LeadingCommandClaim", requires_live_lease=True),
    PhaseKind("TurnWorkClaim", requires_live_lease=True, claims_turn_work=True),
    PhaseKind("NextTurnInputClaim", requires_live_lease=True),
    PhaseKind("MisalignedNextTurnInputClaim", requires_live_lease=True, misaligned=True),
    PhaseKind("DeadLeaseReclaim", is_reclaim=True),
    PhaseKind("StaleQueueCompletionFault", requires_live_lease=True, needs_turn_work=True),
    PhaseKind("ReleasedLeaseCommitFault", releases_lease=True),
    PhaseKind("Commit", requires_live_lease=True, releases_lease=True),
)

saw_live = Var("saw_live")
saw_turn_work = Var("saw_turn_work")
ended = Var("ended")
valid = Var("valid")

ACCEPTING: Expr = valid
"""A phase list is accepted iff the automaton ends in a state satisfying this predicate."""


def _phase_action(phase: PhaseKind) -> Action:
    still_valid: list[Expr] = [valid, ~ended]
    if phase.is_reclaim:
        still_valid.append(~saw_live)
    if phase.needs_turn_work:
        still_valid.append(saw_turn_work)
    if phase.misaligned:
        still_valid.append(FALSE)
    new_valid = all_of(*still_valid)
    updates: dict[str, Expr] = {"valid": new_valid}
    if phase.requires_live_lease or phase.is_reclaim or phase.claims_turn_work:
        updates["saw_live"] = TRUE
    if phase.claims_turn_work:
        updates["saw_turn_work"] = TRUE
    if phase.releases_lease:
        updates["ended"] = TRUE
    return Action(
        phase.name,
        {},
        TRUE,
        [
            Case(new_valid, updates, Outcome("Accepted")),
            Case(TRUE, updates, Outcome("Rejected")),
        ],
        doc=f"append a {phase.name} phase",
    )


def build_phase_order_model() -> Model:
    """The phase-order automaton (scenarios.md §4.5)."""
    return Model(
        name="runtime-scenario-phase-order",
        variables=(
            Variable("saw_live", BoolSort(), "a phase that needs (or takes) a live lease ran"),
            Variable("saw_turn_work", BoolSort(), "a TurnWorkClaim phase ran"),
            Variable("ended", BoolSort(), "a phase that releases the lease ran"),
            Variable("valid", BoolSort(), "every order rule held so far"),
        ),
        init={"saw_live": False, "saw_turn_work": False, "ended": False, "valid": True},
        actions=tuple(_phase_action(phase) for phase in PHASES),
        doc=__doc__ or "",
    )


def phase_names() -> tuple[str, ...]:
    return tuple(phase.name for phase in PHASES)
