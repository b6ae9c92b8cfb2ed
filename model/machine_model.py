"""The turn machine composed with the store: one declarative model of the whole kernel.

Theory of operation
-------------------
Each owner ``o`` runs one turn machine for ``session-0`` (``kernel/machine.py``'s
``TurnMachine``, re-stated here as data; the model never imports the kernel). The store is the
store model of ``kernel_model.py``, reused through ``KernelBuilder``; the store model's owner
claim memory is replaced by what the machine holds. Phases drive store actions and store
outcomes drive phases:

* **Host events** (``host_start``, ``host_checkpoint``, ``host_finish``, ``host_interrupt``,
  ``host_renew_due``, ``host_reset``) are enabled where :data:`RULES` has a row for the
  machine's phase and the event, and the owner is alive.
* **Store steps.** A machine keeps at most one awaited store effect outstanding
  (``machine_awaiting``). ``store_step(o)`` lets the store perform it: the store model's
  semantics of that call decide a *store result* (:func:`MachineBuilder.store_results`), the
  result becomes the reply event, and the row of :data:`RULES` for (phase, reply, guard) says
  what the machine does. ``store_fail(o)`` answers with a backend error instead (nothing
  applied): ``CommitFailed`` for commits, ``LeaseLost`` for a renewal, ``StoreFailed``
  otherwise, as the kernel driver maps them.
* **Fire-and-forget effects** (``ReleaseLease``, ``AbandonClaims``) are applied in the same
  step that emits them, after the store result (sequential composition: their update
  expressions are rewritten over the store result's post-state).
* **Environment** (``enqueue_*``, ``cancel_*``, ``expire``, ``crash``, ``restart``) keeps the
  store model's semantics; a crash also resets the owner's machine.

Claims are held per row: ``machine_qheld[o][b]`` is the claim code under which the machine holds
batch ``b`` (``0`` none), so a turn can hold its idle claim and several checkpoint claims at
once; a commit completes every held claim and is valid only if, for every held code, the rows
stamped with it are exactly the rows held under it. ``batch_tick``/``input_tick`` record the
global enqueue order, which decides ``session_commands_go_first`` at ``InspectPendingWork``.

Checking
~~~~~~~~
Properties of the composition are state invariants over sticky ``hist_*`` ghost flags. Flags
about what the machine *emits* (phase order, effects after lease loss, two outstanding
operations, unsettled claims) are set by the cases themselves, computed from the row's effect
list, so a wrong row is caught by what it emits; flags about what the store *did* (stale-fence
commits, interrupted turns taking work, failed commits changing the store, foreign
completions, command order) are monitors over pre- and post-state. Per-owner ghosts remember
the current cycle: whether it holds a lease it acquired, reclaimed, issued a releasing effect
or lost its lease, and which claim codes the store granted it.

Error paths follow lash (the "Store errors" section of ``kernel/machine.py``'s theory of
operation; here they are kept in :data:`ERROR_RULES`): a store failure of lash's
``StoreCommitFailed`` class forgets lease and claims without touching the store (the lease
runs out at its TTL, the claims are superseded by the next generation), except the
session-command drain, which releases; lease loss hands the cycle's turn claims back at once
(``AbandonClaims``, lease-less) and stops a running turn.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any

from .dsl import (
    FALSE,
    TRUE,
    Action,
    ActionIs,
    BoolSort,
    Case,
    Const,
    EnumSort,
    Expr,
    FlatState,
    IntSort,
    Invariant,
    MapSort,
    Model,
    Monitor,
    Next,
    Outcome,
    Param,
    Value,
    Var,
    Variable,
    all_of,
    any_of,
    children,
    count,
    exists,
    first_where,
    forall,
    ite,
    ite_chain,
    let,
    list_of,
    map_of,
    transform,
)
from .kernel_model import (
    Bounds,
    KernelBuilder,
    batch_claim,
    batch_claim_gen,
    batch_fencing,
    batch_status,
    claim_id,
    head_revision,
    input_claim,
    input_claim_gen,
    input_fencing,
    input_rewritten,
    input_state,
    lease_gen,
    lease_holder,
    lease_holder_inc,
    lease_live,
    owner_alive,
    owner_fence,
    owner_inc,
    trace_outcome,
)

# --------------------------------------------------------------------------------------------
# Vocabulary (docs/machine-traces.md; values of kernel/machine.py written as strings)

PHASES: tuple[str, ...] = (
    "Idle",
    "AcquiringLease",
    "ReclaimingLease",
    "InspectingQueue",
    "ClaimingCommands",
    "CommittingCommand",
    "ClaimingInputs",
    "ClaimingTurnWork",
    "ActiveTurn",
    "WritingCheckpoint",
    "ClaimingCheckpointWork",
    "RenewingLease",
    "Interrupting",
    "Committing",
    "Cancelling",
    "Failed",
    "Closed",
)

CYCLE_OUTCOMES: tuple[str, ...] = (
    "",
    "committed",
    "interrupted",
    "nothing_to_do",
    "busy",
    "cancelled",
    "lease_lost",
    "failed",
)


@dataclass(frozen=True)
class EffectKind:
    """What the phase-order rule and the driver need to know about an effect type."""

    name: str
    store: bool
    awaited: bool = False
    uses_lease: bool = False
    releases_lease: bool = False
    acquires_lease: bool = False
    #: the reply a backend failure of this effect produces
    failure_reply: str = ""


EFFECTS: dict[str, EffectKind] = {
    e.name: e
    for e in (
        EffectKind("AcquireLease", True, True, acquires_lease=True, failure_reply="StoreFailed"),
        EffectKind("ReclaimLease", True, True, acquires_lease=True, failure_reply="StoreFailed"),
        EffectKind("InspectPendingWork", True, True, failure_reply="StoreFailed"),
        EffectKind("ClaimLeadingCommand", True, True, True, failure_reply="StoreFailed"),
        EffectKind("CommitSessionCommand", True, True, True, failure_reply="CommitFailed"),
        EffectKind("ClaimNextTurnInputs", True, True, True, failure_reply="StoreFailed"),
        EffectKind("ClaimQueuedWork", True, True, True, failure_reply="StoreFailed"),
        EffectKind("WriteCheckpoint", True, True, True, failure_reply="CommitFailed"),
        EffectKind("ClaimCheckpointWork", True, True, True, failure_reply="StoreFailed"),
        EffectKind("RenewLease", True, True, True, failure_reply="LeaseLost"),
        EffectKind("CommitTurn", True, True, True, True, failure_reply="CommitFailed"),
        EffectKind("ReleaseLease", True, uses_lease=True, releases_lease=True),
        EffectKind("AbandonClaims", True),
        EffectKind("ApplySessionCommand", False),
        EffectKind("RunTurn", False),
        EffectKind("DeliverCheckpointWork", False),
        EffectKind("StopTurn", False),
    )
}
AWAITED_EFFECTS: tuple[str, ...] = tuple(e.name for e in EFFECTS.values() if e.awaited)
AWAITING = EnumSort("MachineAwaiting", ("", *AWAITED_EFFECTS))
PHASE = EnumSort("TurnState", PHASES)
CYCLE_OUTCOME = EnumSort("CycleOutcome", CYCLE_OUTCOMES)
CHECKPOINT_OR_NONE = EnumSort("CheckpointKindOrNone", ("", "after_work", "before_completion"))
CHECKPOINT = EnumSort("CheckpointKind", ("after_work", "before_completion"))
#: When the host's renewal timer fires (``host_timer``), relative to the instant ``g`` the
#: store granted or last renewed the lease: ``early`` at ``g + renew - 1``, ``due`` at
#: ``g + renew``, ``late`` at ``g + ttl - 1`` (renew: a third of the TTL, as lash derives it).
TIMER_INSTANT = EnumSort("TimerInstant", ("early", "due", "late"))
#: The outcome tag of a ``host_timer`` that finds no renewal due (no event reaches the machine).
NOT_DUE = "NotDue"

# --------------------------------------------------------------------------------------------
# Driver construction (build_driver): what a host gets when it builds a driver


@dataclass(frozen=True)
class DriverConfig:
    """What the host passes when it builds a driver; ``None`` leaves a setting at its default
    (a TTL given without a renew interval derives the interval as lash's
    ``LeaseTimings::from_ttl`` does: a third of the TTL, rounded down)."""

    ttl_ms: int | None = None
    renew_interval_ms: int | None = None
    max_inputs: int | None = None
    max_batches: int | None = None


#: lash's ``LeaseTimings::default()`` (30 s TTL, renewed every 10 s) and our claim limits.
DEFAULT_TTL_MS, DEFAULT_RENEW_INTERVAL_MS = 30_000, 10_000
DEFAULT_MAX_INPUTS = DEFAULT_MAX_BATCHES = 64
#: lash's ``MIN_TTL_TO_RENEW_RATIO``: a lease survives two missed renewals.
MIN_TTL_TO_RENEW_RATIO = 3

#: The configurations ``build_driver`` names: the defaults, the smallest valid one, and each
#: refusal on both sides of its boundary.
DRIVER_CONFIGS: dict[str, DriverConfig] = {
    "defaults": DriverConfig(),
    "smallest": DriverConfig(3, 1, 1, 1),
    "ttl_only": DriverConfig(30_001),
    "ttl_only_too_small": DriverConfig(2),
    "ttl_zero": DriverConfig(0, 10_000),
    "ttl_one": DriverConfig(1, 1),
    "renew_zero": DriverConfig(30_000, 0),
    "ttl_below_three_renewals": DriverConfig(29_999, 10_000),
    "ttl_above_three_renewals": DriverConfig(30_001, 10_000),
    "no_inputs": DriverConfig(max_inputs=0),
    "no_batches": DriverConfig(max_batches=0),
    "no_inputs_no_batches": DriverConfig(max_inputs=0, max_batches=0),
}
DRIVER_CONFIG = EnumSort("DriverConfig", tuple(DRIVER_CONFIGS))
#: The outcome tags of ``build_driver``.
DRIVER_BUILT, DRIVER_REFUSED = "DriverBuilt", "DriverRefused"


def driver_build_outcome(config: DriverConfig) -> tuple[str, dict[str, int | str]]:
    """The outcome of building a driver with ``config``: the settings it runs with, or the
    variant of the error refusing them (timings are checked first, in lash's order: TTL,
    renew interval, their ratio; then the claim limits, inputs before batches)."""
    ttl = DEFAULT_TTL_MS if config.ttl_ms is None else config.ttl_ms
    if config.renew_interval_ms is not None:
        renew = config.renew_interval_ms
    elif config.ttl_ms is not None:
        renew = config.ttl_ms // MIN_TTL_TO_RENEW_RATIO
    else:
        renew = DEFAULT_RENEW_INTERVAL_MS
    inputs = DEFAULT_MAX_INPUTS if config.max_inputs is None else config.max_inputs
    batches = DEFAULT_MAX_BATCHES if config.max_batches is None else config.max_batches
    for refused, variant in (
        (ttl < 1, "TtlTooSmall"),
        (renew < 1, "RenewIntervalTooSmall"),
        (ttl < MIN_TTL_TO_RENEW_RATIO * renew, "TtlRenewRatioTooSmall"),
        (inputs < 1, "MaxInputsTooSmall"),
        (batches < 1, "MaxBatchesTooSmall"),
    ):
        if refused:
            return DRIVER_REFUSED, {"error": variant}
    return DRIVER_BUILT, {
        "ttl_ms": ttl,
        "renew_interval_ms": renew,
        "max_inputs": inputs,
        "max_batches": batches,
    }


# --------------------------------------------------------------------------------------------
# Misfed replies (host_misfeed) and drivers opened over the store (open_driver)

#: How ``host_misfeed`` gets a reply wrong: a reply type that does not answer the outstanding
#: effect (``unawaited``), or the awaited reply type carrying a lease or claim of a session id
#: sorting before or after the machine's (``session_before``/``session_after``) or of the
#: lease generation below or above the one the machine holds (``generation_below``/
#: ``generation_above``).
MISFEED = EnumSort(
    "Misfeed",
    ("unawaited", "session_before", "session_after", "generation_below", "generation_above"),
)
#: The outcome tag of a misfed reply: the machine refuses it and nothing changes.
REPLY_REFUSED = "ReplyRefused"
#: The awaited effects whose success reply carries a lease or a claim, with that reply.
PAYLOAD_REPLIES: dict[str, str] = {
    "AcquireLease": "LeaseAcquired",
    "ReclaimLease": "LeaseAcquired",
    "RenewLease": "LeaseRenewed",
    "ClaimLeadingCommand": "CommandClaimed",
    "ClaimNextTurnInputs": "InputsClaimed",
    "ClaimQueuedWork": "TurnWorkClaimed",
    "ClaimCheckpointWork": "CheckpointWorkClaimed",
}
#: The effects whose reply is checked against the lease generation the machine holds (a
#: lease acquisition has none to compare with).
GENERATION_CHECKED = frozenset(PAYLOAD_REPLIES) - {"AcquireLease", "ReclaimLease"}


def unawaited_reply(effect: str) -> str:
    """The reply ``host_misfeed(unawaited)`` feeds while ``effect`` is outstanding: the
    backend-failure reply of the other kind of call (``CommitFailed`` for a call answered by
    ``StoreFailed``, ``StoreFailed`` for a commit or a renewal), which never answers it."""
    return "CommitFailed" if EFFECTS[effect].failure_reply == "StoreFailed" else "StoreFailed"


#: ``open_driver``'s session ids: the trace's session, or an id sorting before or after it.
DRIVER_SESSION = EnumSort("DriverSession", ("own", "id_before", "id_after"))
#: The outcome tag of ``open_driver``.
DRIVER_OPENED = "DriverOpened"


HOST_EVENTS: dict[str, str] = {
    "host_start": "Start",
    "host_checkpoint": "CheckpointReached",
    "host_finish": "TurnFinished",
    "host_interrupt": "Interrupt",
    "host_renew_due": "RenewDue",
    "host_reset": "Reset",
}


# --------------------------------------------------------------------------------------------
# The machine's rules: ONE table (kernel/machine.py's TRANSITIONS, re-stated as data)


@dataclass(frozen=True)
class Rule:
    """Phase x event [guard] -> target phase, effects, machine update, cycle outcome.

    ``effects`` are effect type names in emission order; a trailing ``?`` marks an effect
    emitted only when it has something to do (``AbandonClaims`` when claims are handed back,
    ``ReleaseLease`` when a lease is held). ``update`` names a machine-variable recipe of
    :meth:`MachineBuilder.machine_updates`; ``hand_back`` says which claims ``AbandonClaims``
    returns: ``all`` (held plus those this reply granted), ``granted`` (only the new ones) or
    ``none``. Rows of one (phase, event) are tried in order; the last one has no guard.
    """

    phase: str
    event: str
    target: str
    effects: tuple[str, ...] = ()
    update: str = "none"
    guard: str = ""
    outcome: str = ""
    hand_back: str = "all"
    note: str = ""


def _r(
    phase: str,
    event: str,
    target: str,
    effects: tuple[str, ...] = (),
    update: str = "none",
    guard: str = "",
    outcome: str = "",
    hand_back: str = "all",
    note: str = "",
) -> Rule:
    return Rule(phase, event, target, effects, update, guard, outcome, hand_back, note)


_WIND_DOWN = ("AbandonClaims?", "ReleaseLease")

# fmt: off
NORMAL_RULES: tuple[Rule, ...] = (
    _r("Idle", "Start", "AcquiringLease", ("AcquireLease",), "start", note="ask for the lease"),
    _r("AcquiringLease", "LeaseAcquired", "InspectingQueue", ("InspectPendingWork",), "acquired"),
    _r("AcquiringLease", "LeaseBusy", "ReclaimingLease", ("ReclaimLease",), "reclaim",
       guard="holder_dead", note="take over a provably dead holder, CAS on the observation"),
    _r("AcquiringLease", "LeaseBusy", "Idle", (), "end_cycle", outcome="busy"),
    _r("AcquiringLease", "Interrupt", "Cancelling"),
    _r("ReclaimingLease", "LeaseAcquired", "InspectingQueue", ("InspectPendingWork",), "acquired"),
    _r("ReclaimingLease", "LeaseBusy", "Idle", (), "end_cycle", outcome="busy",
       note="reclaim at most once"),
    _r("ReclaimingLease", "Interrupt", "Cancelling"),
    _r("InspectingQueue", "PendingWorkInspected", "ClaimingCommands", ("ClaimLeadingCommand",),
       guard="commands_first", note="drain leading session commands first"),
    _r("InspectingQueue", "PendingWorkInspected", "ClaimingInputs", ("ClaimNextTurnInputs",)),
    _r("InspectingQueue", "Interrupt", "Cancelling"),
    _r("ClaimingCommands", "CommandClaimed", "CommittingCommand",
       ("ApplySessionCommand", "CommitSessionCommand"), "hold_grant", guard="claimed"),
    _r("ClaimingCommands", "CommandClaimed", "ClaimingInputs", ("ClaimNextTurnInputs",)),
    _r("ClaimingCommands", "Interrupt", "Cancelling"),
    _r("CommittingCommand", "CommitSucceeded", "ClaimingCommands", ("ClaimLeadingCommand",),
       "drop_claims", note="the command is settled; look for the next one"),
    _r("CommittingCommand", "Interrupt", "Cancelling"),
    _r("ClaimingInputs", "InputsClaimed", "ActiveTurn", ("RunTurn",), "hold_grant",
       guard="claimed"),
    _r("ClaimingInputs", "InputsClaimed", "ClaimingTurnWork", ("ClaimQueuedWork",)),
    _r("ClaimingInputs", "Interrupt", "Cancelling"),
    _r("ClaimingTurnWork", "TurnWorkClaimed", "ActiveTurn", ("RunTurn",), "hold_grant",
       guard="claimed"),
    _r("ClaimingTurnWork", "TurnWorkClaimed", "Idle", ("ReleaseLease",), "end_cycle",
       outcome="nothing_to_do"),
    _r("ClaimingTurnWork", "Interrupt", "Cancelling"),
    _r("ActiveTurn", "CheckpointReached", "WritingCheckpoint", ("WriteCheckpoint",),
       "set_checkpoint"),
    _r("ActiveTurn", "TurnFinished", "Committing", ("CommitTurn",)),
    _r("ActiveTurn", "Interrupt", "Committing", ("CommitTurn",), "interrupt"),
    _r("ActiveTurn", "RenewDue", "RenewingLease", ("RenewLease",)),
    _r("WritingCheckpoint", "CommitSucceeded", "ClaimingCheckpointWork",
       ("ClaimCheckpointWork",)),
    _r("WritingCheckpoint", "Interrupt", "Interrupting", (), "interrupt"),
    _r("ClaimingCheckpointWork", "CheckpointWorkClaimed", "ActiveTurn",
       ("DeliverCheckpointWork",), "join", guard="claimed",
       note="the claims join the turn; its commit settles them"),
    _r("ClaimingCheckpointWork", "CheckpointWorkClaimed", "ActiveTurn", (), "clear_checkpoint"),
    _r("ClaimingCheckpointWork", "Interrupt", "Interrupting", (), "interrupt"),
    _r("RenewingLease", "LeaseRenewed", "ActiveTurn"),
    _r("RenewingLease", "Interrupt", "Interrupting", (), "interrupt"),
    _r("Interrupting", "CommitSucceeded", "Committing", ("CommitTurn",)),
    _r("Interrupting", "CheckpointWorkClaimed", "Committing", ("AbandonClaims?", "CommitTurn"),
       "clear_checkpoint", hand_back="granted",
       note="an interrupted turn takes no new work: hand it back, then commit"),
    _r("Interrupting", "LeaseRenewed", "Committing", ("CommitTurn",)),
    _r("Interrupting", "Interrupt", "Interrupting"),
    _r("Committing", "CommitSucceeded", "Idle", (), "end_cycle", guard="interrupted",
       outcome="interrupted"),
    _r("Committing", "CommitSucceeded", "Idle", (), "end_cycle", outcome="committed"),
    _r("Committing", "Interrupt", "Committing"),
    _r("Cancelling", "LeaseAcquired", "Idle", ("ReleaseLease",), "end_cycle",
       outcome="cancelled"),
    _r("Cancelling", "LeaseBusy", "Idle", (), "end_cycle", outcome="cancelled"),
    _r("Cancelling", "PendingWorkInspected", "Idle", ("ReleaseLease",), "end_cycle",
       outcome="cancelled"),
    _r("Cancelling", "CommandClaimed", "Idle", _WIND_DOWN, "end_cycle", outcome="cancelled"),
    _r("Cancelling", "CommitSucceeded", "Idle", ("ReleaseLease",), "end_cycle",
       outcome="cancelled", note="the command is settled; release"),
    _r("Cancelling", "InputsClaimed", "Idle", _WIND_DOWN, "end_cycle", outcome="cancelled"),
    _r("Cancelling", "TurnWorkClaimed", "Idle", _WIND_DOWN, "end_cycle", outcome="cancelled"),
    _r("Cancelling", "Interrupt", "Cancelling"),
    _r("Failed", "Reset", "Idle"),
)

#: Error paths, all in one place (lash's split: LeaseLost vs StoreCommitFailed). "forget" drops
#: lease and claims from the machine without a store effect; see "Store errors" in the
#: docstring of kernel/machine.py.
ERROR_RULES: tuple[Rule, ...] = (
    _r("AcquiringLease", "StoreFailed", "Failed", (), "forget", outcome="failed"),
    _r("ReclaimingLease", "StoreFailed", "Failed", (), "forget", outcome="failed"),
    _r("InspectingQueue", "StoreFailed", "Failed", (), "forget", outcome="failed"),
    _r("ClaimingCommands", "StoreFailed", "Failed", ("ReleaseLease",), "forget",
       outcome="failed", note="the drain loop releases on any error"),
    _r("ClaimingCommands", "LeaseLost", "Idle", (), "forget", outcome="lease_lost"),
    _r("CommittingCommand", "CommitFailed", "Failed", ("ReleaseLease",), "forget",
       outcome="failed", note="the command claim is forgotten, never abandoned"),
    _r("CommittingCommand", "LeaseLost", "Idle", (), "forget", outcome="lease_lost"),
    _r("ClaimingInputs", "StoreFailed", "Failed", (), "forget", outcome="failed"),
    _r("ClaimingInputs", "LeaseLost", "Idle", (), "forget", outcome="lease_lost"),
    _r("ClaimingTurnWork", "StoreFailed", "Failed", (), "forget", outcome="failed"),
    _r("ClaimingTurnWork", "LeaseLost", "Idle", (), "forget", outcome="lease_lost"),
    _r("WritingCheckpoint", "CommitFailed", "ClaimingCheckpointWork", ("ClaimCheckpointWork",),
       note="the boundary is not persisted; the turn goes on"),
    _r("WritingCheckpoint", "LeaseLost", "Idle", ("StopTurn", "AbandonClaims?"), "forget",
       outcome="lease_lost"),
    _r("ClaimingCheckpointWork", "StoreFailed", "Failed", ("StopTurn",), "forget",
       outcome="failed"),
    _r("ClaimingCheckpointWork", "LeaseLost", "Idle", ("StopTurn", "AbandonClaims?"), "forget",
       outcome="lease_lost"),
    _r("RenewingLease", "LeaseLost", "Idle", ("StopTurn", "AbandonClaims?"), "forget",
       outcome="lease_lost"),
    _r("Interrupting", "CommitFailed", "Committing", ("CommitTurn",)),
    _r("Interrupting", "StoreFailed", "Failed", ("StopTurn",), "forget", outcome="failed"),
    _r("Interrupting", "LeaseLost", "Idle", ("StopTurn", "AbandonClaims?"), "forget",
       outcome="lease_lost"),
    _r("Committing", "CommitFailed", "Failed", (), "forget", outcome="failed",
       note="lash keeps the lease to its TTL and hands nothing back"),
    _r("Committing", "LeaseLost", "Idle", ("AbandonClaims?",), "forget", outcome="lease_lost"),
    _r("Cancelling", "StoreFailed", "Failed", ("ReleaseLease",), "forget",
       guard="awaiting:ClaimLeadingCommand", outcome="failed"),
    _r("Cancelling", "StoreFailed", "Failed", (), "forget", outcome="failed"),
    _r("Cancelling", "CommitFailed", "Failed", ("ReleaseLease",), "forget", outcome="failed"),
    _r("Cancelling", "LeaseLost", "Idle", (), "forget", outcome="lease_lost"),
)
# fmt: on

RULES: tuple[Rule, ...] = NORMAL_RULES + ERROR_RULES


def awaitable_effects(rules: tuple[Rule, ...]) -> dict[str, frozenset[str]]:
    """For every phase, the effects that can be outstanding in it ("" = none), by following
    the rules from ``Idle`` (a fixpoint; host events that issue nothing keep the outstanding
    effect, replies without an awaited effect leave none)."""
    found: dict[str, set[str]] = {p: set() for p in PHASES}
    found["Idle"].add("")
    changed = True
    while changed:
        changed = False
        for rule in rules:
            issued = [e.rstrip("?") for e in rule.effects if EFFECTS[e.rstrip("?")].awaited]
            if issued:
                new = {issued[0]}
            elif rule.event in HOST_EVENTS.values():
                new = set(found[rule.phase])
            else:
                new = {""}
            if not found[rule.phase]:
                continue
            if not new <= found[rule.target]:
                found[rule.target] |= new
                changed = True
    return {p: frozenset(v) for p, v in found.items()}


# --------------------------------------------------------------------------------------------
# Bounds


#: Store bounds the composition fixes when the store model has them: ``expire`` is the only
#: clock move of machine traces (one step is a whole TTL), and the machine never claims by ids.
STORE_BOUND_PINS: dict[str, int] = {"ttl_steps": 1, "exact_claims": 0}


@dataclass(frozen=True)
class MachineBounds:
    """The store bounds plus ``max_turns`` (turns started in the session)."""

    owners: int = 2
    max_incarnation: int = 1
    batches: int = 2
    inputs: int = 2
    max_generation: int = 2
    max_claims_per_row: int = 1
    max_head_revision: int = 3
    max_turns: int = 2

    def __post_init__(self) -> None:
        if not isinstance(self.max_turns, int) or not 1 <= self.max_turns <= 9:
            raise ValueError(f"bound max_turns={self.max_turns!r} must be an integer in 1..9")
        self.store_bounds()  # validates the store bounds

    def store_bounds(self) -> Bounds:
        values: dict[str, int] = asdict(self)
        del values["max_turns"]
        known = {f.name for f in fields(Bounds)}
        values.update({k: v for k, v in STORE_BOUND_PINS.items() if k in known})
        return Bounds(**values)

    def as_dict(self) -> dict[str, int]:
        return asdict(self)


# --------------------------------------------------------------------------------------------
# Variables

machine_phase = Var("machine_phase")
machine_awaiting = Var("machine_awaiting")
machine_turn = Var("machine_turn")
machine_interrupted = Var("machine_interrupted")
machine_outcome = Var("machine_outcome")
machine_checkpoint = Var("machine_checkpoint")
machine_committed_checkpoint = Var("machine_committed_checkpoint")
machine_turn_checkpoint = Var("machine_turn_checkpoint")
session_checkpoint = Var("session_checkpoint")
machine_observed = Var("machine_observed")
machine_qheld = Var("machine_qheld")
machine_iheld = Var("machine_iheld")
session_turns = Var("session_turns")
batch_tick = Var("batch_tick")
input_tick = Var("input_tick")
cycle_leased = Var("cycle_leased")
cycle_reclaimed = Var("cycle_reclaimed")
cycle_released = Var("cycle_released")
cycle_lost = Var("cycle_lost")
granted_q = Var("granted_q")
granted_i = Var("granted_i")

#: The store model's owner claim memory, replaced by what the machine holds.
OWNER_CLAIM_MEMORY: tuple[str, ...] = (
    "owner_qclaim",
    "owner_qclaim_rows",
    "owner_iclaim",
    "owner_iclaim_rows",
)


def _store_variable_names() -> tuple[str, ...]:
    """The store model's state variables the composition keeps (no claim memory, no ghosts)."""
    from .kernel_model import _sorts
    from .kernel_model import _variables as store_variables

    probe = store_variables(_sorts(Bounds()))
    return tuple(v.name for v in probe if not v.ghost and v.name not in OWNER_CLAIM_MEMORY)


#: Store variables of the store model the composition keeps.
STORE_VARIABLES: tuple[str, ...] = _store_variable_names()
#: The store model's lease clock, when it has one (``lease_ttl_left``).
HAS_LEASE_CLOCK = "lease_ttl_left" in STORE_VARIABLES


MACHINE_FLAGS: tuple[tuple[str, str], ...] = (
    ("hist_phase_order", "a cycle's effects broke the seed's phase-order rule"),
    ("hist_effect_after_loss", "a store effect was issued after lease loss, before reacquiring"),
    ("hist_two_outstanding", "a machine had two store operations outstanding"),
    ("hist_unsettled_claims", "a cycle ended leaving a granted claim stamped"),
    ("hist_foreign_completion", "a commit completed a row its cycle was not granted"),
    ("hist_interrupted_took_work", "an interrupted turn kept newly claimed work"),
    ("hist_stale_commit", "a commit applied without a valid fence"),
    ("hist_failed_leftover", "a non-lease store failure changed the store other than lash does"),
    (
        "hist_command_order",
        "the inspection answer did not decide command-first as session_commands_go_first",
    ),
    ("hist_unhandled_reply", "the machine had no rule for a store reply"),
)


# --------------------------------------------------------------------------------------------
# Store results


@dataclass(frozen=True)
class StoreResult:
    """One outcome of performing an awaited effect: condition (pre-state, first match wins),
    store updates, the reply event, guard facts, the claim codes it grants per row and the
    condition under which it stays within the bounds."""

    name: str
    condition: Expr
    updates: Mapping[str, Expr]
    reply: str
    facts: Mapping[str, Expr] = field(default_factory=dict)
    grant_q: Callable[[Expr], Expr] | None = None
    grant_i: Callable[[Expr], Expr] | None = None
    within_bounds: Expr = TRUE


def _substitute(expr: Expr, env: Mapping[str, Expr]) -> Expr:
    """``expr`` with every ``Var(name)`` for ``name`` in ``env`` replaced (sequencing)."""
    return transform(expr, lambda e: env[e.name] if isinstance(e, Var) and e.name in env else None)


def _then(first: Mapping[str, Expr], second: Mapping[str, Expr]) -> dict[str, Expr]:
    """Updates of ``first`` followed by ``second`` (whose expressions read ``first``'s post)."""
    return {**first, **{k: _substitute(v, first) for k, v in second.items()}}


def _mentions_only(expr: Expr, names: set[str]) -> bool:
    if isinstance(expr, Var | Next):
        return expr.name in names
    return all(_mentions_only(k, names) for k in children(expr))


class MachineBuilder:
    """Writes the composed model down; public pieces are what mutants and tests rewrite."""

    def __init__(self, bounds: MachineBounds, rules: tuple[Rule, ...] = RULES):
        self.bounds = bounds
        self.store_bounds = bounds.store_bounds()
        self.k = KernelBuilder(self.store_bounds)
        self.s = self.k.s
        self.rules = rules
        self.tick = IntSort(0, bounds.batches + bounds.inputs)
        self.turn = IntSort(-1, bounds.max_turns - 1)
        #: turn index of a checkpoint (a session without one is at index 0)
        self.turn_index = IntSort(0, bounds.max_turns - 1)
        self.awaitable = awaitable_effects(rules)
        for rule in rules:
            if rule.phase not in PHASES or rule.target not in PHASES:
                raise ValueError(f"rule {rule} names an unknown phase")
            for name in rule.effects:
                if name.rstrip("?") not in EFFECTS:
                    raise ValueError(f"rule {rule} names an unknown effect {name}")

    # -- shared pieces ---------------------------------------------------------------------

    def held_q(self, o: Expr) -> Callable[[Expr], Expr]:
        return lambda b: machine_qheld[o][b]

    def commit_claims_ok(self, o: Expr) -> Expr:
        """§5.3 steps 5-6 for every held claim: rows stamped with a held code are exactly the
        rows held under it, each still queued (batches) or existing (inputs)."""
        qh, ih = machine_qheld[o], machine_iheld[o]
        sb, si = self.s.batch, self.s.input
        held_rows_ok = all_of(
            forall(
                "qb",
                sb,
                lambda b: (
                    qh[b]
                    .ne(0)
                    .implies(all_of(batch_status[b].eq("queued"), batch_claim[b].eq(qh[b])))
                ),
            ),
            forall(
                "qi",
                si,
                lambda i: (
                    ih[i].ne(0).implies(all_of(self.k.input_exists(i), input_claim[i].eq(ih[i])))
                ),
            ),
        )
        no_other_rows = all_of(
            forall(
                "qb",
                sb,
                lambda b: all_of(
                    batch_status[b].eq("queued"),
                    batch_claim[b].ne(0),
                    exists("qc", sb, lambda c: qh[c].eq(batch_claim[b])),
                ).implies(qh[b].eq(batch_claim[b])),
            ),
            forall(
                "qi",
                si,
                lambda i: all_of(
                    self.k.input_exists(i),
                    input_claim[i].ne(0),
                    exists("qj", si, lambda j: ih[j].eq(input_claim[i])),
                ).implies(ih[i].eq(input_claim[i])),
            ),
        )
        return all_of(held_rows_ok, no_other_rows)

    def commit_updates(self, o: Expr, release: bool, defer: Expr) -> dict[str, Expr]:
        """A valid commit of every held claim; ``release`` ends the lease (turn commit)."""
        qh, ih = machine_qheld[o], machine_iheld[o]

        def i_completed(i: Expr) -> Expr:
            return ih[i].ne(0)

        def deferred(i: Expr) -> Expr:
            return all_of(
                defer,
                ~i_completed(i),
                input_state[i].eq("pending_active"),
                self.k.ingress[i].eq("active_turn"),
            )

        updates = self.k.row_completion_updates(lambda b: qh[b].ne(0), i_completed, deferred)
        updates["head_revision"] = head_revision + 1
        if release:
            updates.update(
                {
                    "lease_holder": Const(-1),
                    "lease_holder_inc": Const(-1),
                    "lease_live": FALSE,
                    "owner_fence": owner_fence.set(o, 0),
                    **self.no_ttl(),
                }
            )
        return updates

    def full_ttl(self) -> dict[str, Expr]:
        """A full TTL from now (acquisition, re-entry, renewal), if the store keeps a clock."""
        return {"lease_ttl_left": Const(1)} if HAS_LEASE_CLOCK else {}

    def no_ttl(self, when: Expr = TRUE) -> dict[str, Expr]:
        if not HAS_LEASE_CLOCK:
            return {}
        return {"lease_ttl_left": ite(when, 0, Var("lease_ttl_left"))}

    def fresh_acquisition(self, o: Expr) -> dict[str, Expr]:
        return {**self.k._fresh_acquisition(o), **self.full_ttl()}

    def release_updates(self, o: Expr) -> dict[str, Expr]:
        """``release_session_execution_lease``: fenced CAS, a silent no-op otherwise."""
        matches = all_of(
            lease_holder.eq(o), lease_holder_inc.eq(owner_inc[o]), lease_gen.eq(owner_fence[o])
        )
        return {
            "lease_holder": ite(matches, -1, lease_holder),
            "lease_holder_inc": ite(matches, -1, lease_holder_inc),
            "lease_live": ite(matches, FALSE, lease_live),
            "owner_fence": owner_fence.set(o, 0),
            **self.no_ttl(matches),
        }

    def abandon_updates(self) -> dict[str, Expr]:
        """``abandon_*_claim`` for the handed-back codes ``__hb_q``/``__hb_i`` (placeholders
        filled with pre-state codes after sequencing): rows still stamped with the exact claim
        are cleared; accepted inputs return to pending_active. No fence is needed."""
        hb_q, hb_i = Var("__hb_q"), Var("__hb_i")
        sb, si = self.s.batch, self.s.input

        def q_hit(b: Expr) -> Expr:
            return all_of(hb_q[b].ne(0), batch_status[b].eq("queued"), batch_claim[b].eq(hb_q[b]))

        def i_hit(i: Expr) -> Expr:
            return all_of(hb_i[i].ne(0), self.k.input_exists(i), input_claim[i].eq(hb_i[i]))

        return {
            "batch_claim": map_of("qb", sb, lambda b: ite(q_hit(b), 0, batch_claim[b])),
            "batch_claim_gen": map_of("qb", sb, lambda b: ite(q_hit(b), 0, batch_claim_gen[b])),
            "input_state": map_of(
                "qi",
                si,
                lambda i: ite(
                    all_of(i_hit(i), input_state[i].eq("accepted")),
                    "pending_active",
                    input_state[i],
                ),
            ),
            "input_claim": map_of("qi", si, lambda i: ite(i_hit(i), 0, input_claim[i])),
            "input_claim_gen": map_of("qi", si, lambda i: ite(i_hit(i), 0, input_claim_gen[i])),
        }

    def commands_first(self) -> Expr:
        """``session_commands_go_first`` on the lease-less pending listings: some pending
        session command was enqueued before every pending next-turn input."""
        sb, si = self.s.batch, self.s.input

        def command_pending(b: Expr) -> Expr:
            return all_of(
                self.k.work_class[b].eq("session_command"),
                batch_status[b].eq("queued"),
                ~self.k.batch_live_claimed(b),
            )

        def input_pending(i: Expr) -> Expr:
            return all_of(input_state[i].eq("deferred_next_turn"), ~self.k.input_live_claimed(i))

        return exists(
            "qb",
            sb,
            lambda b: all_of(
                command_pending(b),
                forall("qi", si, lambda i: input_pending(i).implies(batch_tick[b] < input_tick[i])),
            ),
        )

    # -- store results ---------------------------------------------------------------------

    def store_results(self, effect: str, o: Expr) -> list[StoreResult]:
        """The store model's semantics of ``effect`` performed for owner ``o``'s machine."""
        k, bounds = self.k, self.bounds
        g = owner_fence[o]
        kmax = bounds.max_claims_per_row
        sb, si = self.s.batch, self.s.input
        fence_lost = StoreResult("expired", ~k.valid_fence(o), {}, "LeaseLost")
        fresh_ok = lease_gen < bounds.max_generation

        if effect == "AcquireLease":
            return [
                StoreResult(
                    "reentry",
                    all_of(lease_live, lease_holder.eq(o), lease_holder_inc.eq(owner_inc[o])),
                    {"owner_fence": owner_fence.set(o, lease_gen), **self.full_ttl()},
                    "LeaseAcquired",
                ),
                StoreResult("busy", lease_live, {}, "LeaseBusy", {"holder_dead": k.holder_dead()}),
                StoreResult(
                    "fresh",
                    TRUE,
                    self.fresh_acquisition(o),
                    "LeaseAcquired",
                    within_bounds=fresh_ok,
                ),
            ]
        if effect == "ReclaimLease":
            observed = machine_observed[o]
            takeover = all_of(observed.eq(lease_gen), k.holder_dead())
            return [
                StoreResult(
                    "expired_row",
                    ~lease_live,
                    self.fresh_acquisition(o),
                    "LeaseAcquired",
                    within_bounds=fresh_ok,
                ),
                StoreResult(
                    "takeover",
                    takeover,
                    self.fresh_acquisition(o),
                    "LeaseAcquired",
                    within_bounds=fresh_ok,
                ),
                StoreResult("busy", TRUE, {}, "LeaseBusy", {"holder_dead": k.holder_dead()}),
            ]
        if effect == "InspectPendingWork":
            return [
                StoreResult(
                    "listed",
                    TRUE,
                    {},
                    "PendingWorkInspected",
                    {"commands_first": self.commands_first()},
                )
            ]
        if effect in ("ClaimLeadingCommand", "ClaimQueuedWork", "ClaimNextTurnInputs"):
            if effect == "ClaimNextTurnInputs":

                def input_selected(i: Expr) -> Expr:
                    return all_of(
                        input_state[i].eq("deferred_next_turn"),
                        any_of(input_claim[i].eq(0), input_claim_gen[i].ne(g)),
                    )

                head = first_where(si, input_selected, -1)
                code = k.claim_code(head, input_fencing)
                stamp = k.stamp_input_rows(input_selected, code, g, accept=False)
                claimed = exists("qi", si, input_selected)
                return [
                    fence_lost,
                    StoreResult(
                        "claimed",
                        claimed,
                        stamp,
                        "InputsClaimed",
                        {"claimed": TRUE},
                        grant_i=lambda i: ite(input_selected(i), code, 0),
                        within_bounds=forall(
                            "qi", si, lambda i: input_selected(i).implies(input_fencing[i] < kmax)
                        ),
                    ),
                    StoreResult("none", TRUE, {}, "InputsClaimed", {"claimed": FALSE}),
                ]
            reply = "CommandClaimed" if effect == "ClaimLeadingCommand" else "TurnWorkClaimed"

            def with_head(body: Callable[[Expr], Expr]) -> Expr:
                return let("h", k.queue_head(g), body)

            if effect == "ClaimLeadingCommand":

                def selected_under(h: Expr) -> Callable[[Expr], Expr]:
                    return lambda b: all_of(h >= 0, k.work_class[h].eq("session_command"), b.eq(h))

            else:

                def selected_under(h: Expr) -> Callable[[Expr], Expr]:
                    return lambda b: k.turn_work_selected(b, h, g, Const("idle"))

            def update_for(name: str) -> Expr:
                return with_head(
                    lambda h: k.stamp_batch_rows(
                        selected_under(h), k.claim_code(h, batch_fencing), g
                    )[name]
                )

            stamp = {n: update_for(n) for n in ("batch_claim", "batch_claim_gen", "batch_fencing")}
            claimed = with_head(lambda h: exists("qb", sb, selected_under(h)))
            return [
                fence_lost,
                StoreResult(
                    "claimed",
                    claimed,
                    stamp,
                    reply,
                    {"claimed": TRUE},
                    grant_q=lambda b: with_head(
                        lambda h: ite(selected_under(h)(b), k.claim_code(h, batch_fencing), 0)
                    ),
                    within_bounds=with_head(
                        lambda h: forall(
                            "qb",
                            sb,
                            lambda b: selected_under(h)(b).implies(batch_fencing[b] < kmax),
                        )
                    ),
                ),
                StoreResult("none", TRUE, {}, reply, {"claimed": FALSE}),
            ]
        if effect == "ClaimCheckpointWork":
            kind = machine_checkpoint[o]

            def input_selected(i: Expr) -> Expr:
                return all_of(
                    machine_turn[o].eq(0),  # the catalogue's active inputs address turn-0
                    input_state[i].eq("pending_active"),
                    ~input_rewritten[i],
                    k.input_admits(i, kind),
                    any_of(input_claim[i].eq(0), input_claim_gen[i].ne(g)),
                )

            ihead = first_where(si, input_selected, -1)
            icode = k.claim_code(ihead, input_fencing)

            def with_head(body: Callable[[Expr], Expr]) -> Expr:
                return let("h", k.queue_head(g), body)

            def work_selected(h: Expr) -> Callable[[Expr], Expr]:
                return lambda b: k.turn_work_selected(b, h, g, Const("active_turn_checkpoint"))

            def work_update(name: str) -> Expr:
                return with_head(
                    lambda h: k.stamp_batch_rows(
                        work_selected(h), k.claim_code(h, batch_fencing), g
                    )[name]
                )

            work_stamp = {
                n: work_update(n) for n in ("batch_claim", "batch_claim_gen", "batch_fencing")
            }
            stamp = {**k.stamp_input_rows(input_selected, icode, g, accept=True), **work_stamp}
            any_input = exists("qi", si, input_selected)
            any_work = with_head(lambda h: exists("qb", sb, work_selected(h)))
            # the store probes before it checks the fence (the store model's
            # claim_checkpoint_work, lash's SQLite store): nothing to claim answers
            # nothing, even to an expired lease
            return [
                replace(
                    fence_lost, condition=all_of(fence_lost.condition, any_of(any_input, any_work))
                ),
                StoreResult(
                    "claimed",
                    TRUE,
                    stamp,
                    "CheckpointWorkClaimed",
                    {"claimed": any_of(any_input, any_work)},
                    grant_q=lambda b: with_head(
                        lambda h: ite(work_selected(h)(b), k.claim_code(h, batch_fencing), 0)
                    ),
                    grant_i=lambda i: ite(input_selected(i), icode, 0),
                    within_bounds=all_of(
                        forall(
                            "qi", si, lambda i: input_selected(i).implies(input_fencing[i] < kmax)
                        ),
                        with_head(
                            lambda h: forall(
                                "qb",
                                sb,
                                lambda b: work_selected(h)(b).implies(batch_fencing[b] < kmax),
                            )
                        ),
                    ),
                ),
            ]
        if effect == "RenewLease":
            return [
                StoreResult("renewed", k.valid_fence(o), self.full_ttl(), "LeaseRenewed"),
                StoreResult("expired", TRUE, {}, "LeaseLost"),
            ]
        if effect in ("WriteCheckpoint", "CommitSessionCommand", "CommitTurn"):
            room = head_revision < bounds.max_head_revision
            if effect == "WriteCheckpoint":
                # a progress checkpoint completes no claim
                updates: dict[str, Expr] = {"head_revision": head_revision + 1}
                return [
                    fence_lost,
                    StoreResult("committed", TRUE, updates, "CommitSucceeded", within_bounds=room),
                ]
            turn_commit = effect == "CommitTurn"
            defer = machine_turn[o].eq(0) if turn_commit else FALSE
            return [
                fence_lost,
                StoreResult("superseded", ~self.commit_claims_ok(o), {}, "CommitFailed"),
                StoreResult(
                    "committed",
                    TRUE,
                    self.commit_updates(o, turn_commit, defer),
                    "CommitSucceeded",
                    within_bounds=room,
                ),
            ]
        raise ValueError(f"no store semantics for effect {effect}")

    # -- machine updates -------------------------------------------------------------------

    def machine_updates(
        self,
        recipe: str,
        o: Expr,
        grant_q: Callable[[Expr], Expr] | None,
        grant_i: Callable[[Expr], Expr] | None,
    ) -> dict[str, Expr]:
        sb, si = self.s.batch, self.s.input

        def hold() -> dict[str, Expr]:
            out: dict[str, Expr] = {}
            if grant_q is not None:
                out["machine_qheld"] = machine_qheld.set(
                    o,
                    map_of(
                        "qb", sb, lambda b: ite(grant_q(b).ne(0), grant_q(b), machine_qheld[o][b])
                    ),
                )
            if grant_i is not None:
                out["machine_iheld"] = machine_iheld.set(
                    o,
                    map_of(
                        "qi", si, lambda i: ite(grant_i(i).ne(0), grant_i(i), machine_iheld[o][i])
                    ),
                )
            return out

        end_cycle = {
            "machine_turn": machine_turn.set(o, -1),
            "machine_interrupted": machine_interrupted.set(o, FALSE),
            "machine_qheld": machine_qheld.set(o, map_of("qb", sb, lambda _: Const(0))),
            "machine_iheld": machine_iheld.set(o, map_of("qi", si, lambda _: Const(0))),
            "machine_checkpoint": machine_checkpoint.set(o, ""),
            "machine_observed": machine_observed.set(o, 0),
            "owner_fence": owner_fence.set(o, 0),
            "machine_turn_checkpoint": machine_turn_checkpoint.set(o, FALSE),
        }
        recipes: dict[str, Callable[[], dict[str, Expr]]] = {
            "none": dict,
            "start": lambda: {
                "machine_turn": machine_turn.set(o, session_turns),
                "session_turns": session_turns + 1,
            },
            "reclaim": lambda: {"machine_observed": machine_observed.set(o, lease_gen)},
            "acquired": lambda: {"machine_observed": machine_observed.set(o, 0)},
            "hold_grant": hold,
            "drop_claims": lambda: {
                "machine_qheld": machine_qheld.set(o, map_of("qb", sb, lambda _: Const(0)))
            },
            "set_checkpoint": lambda: {
                "machine_checkpoint": machine_checkpoint.set(o, Param("checkpoint"))
            },
            "join": lambda: {**hold(), "machine_checkpoint": machine_checkpoint.set(o, "")},
            "clear_checkpoint": lambda: {"machine_checkpoint": machine_checkpoint.set(o, "")},
            "interrupt": lambda: {"machine_interrupted": machine_interrupted.set(o, TRUE)},
            "end_cycle": lambda: dict(end_cycle),
            "forget": lambda: dict(end_cycle),
        }
        if recipe not in recipes:
            raise ValueError(f"unknown machine update {recipe}")
        return recipes[recipe]()

    def guard(self, name: str, o: Expr, facts: Mapping[str, Expr]) -> Expr:
        if name == "":
            return TRUE
        if name == "interrupted":
            return machine_interrupted[o]
        if name.startswith("awaiting:"):
            return machine_awaiting[o].eq(name.split(":", 1)[1])
        if name in facts:
            return facts[name]
        raise ValueError(f"guard {name} has no value here")

    # -- one case per (store result, rule) ----------------------------------------------------

    def case_for(
        self,
        rule: Rule,
        o: Expr,
        condition: Expr,
        store_updates: Mapping[str, Expr],
        grant_q: Callable[[Expr], Expr] | None,
        grant_i: Callable[[Expr], Expr] | None,
        is_reply: bool,
    ) -> Case:
        sb, si = self.s.batch, self.s.input

        zero_q = _no_grant
        gq = grant_q or _no_grant
        gi = grant_i or _no_grant

        def held_or_granted_q(b: Expr) -> Expr:
            return ite(gq(b).ne(0), gq(b), machine_qheld[o][b])

        def held_or_granted_i(i: Expr) -> Expr:
            return ite(gi(i).ne(0), gi(i), machine_iheld[o][i])

        hb_q: Callable[[Expr], Expr]
        hb_i: Callable[[Expr], Expr]
        if rule.hand_back == "all":
            hb_q, hb_i = held_or_granted_q, held_or_granted_i
        elif rule.hand_back == "granted":
            hb_q, hb_i = gq, gi
        else:
            hb_q, hb_i = zero_q, zero_q
        hands_back = any_of(
            exists("qb", sb, lambda b: hb_q(b).ne(0)), exists("qi", si, lambda i: hb_i(i).ne(0))
        )
        placeholders = {
            "__hb_q": map_of("qb", sb, hb_q),
            "__hb_i": map_of("qi", si, hb_i),
        }
        # store result, then each fire-and-forget effect in order
        state: dict[str, Expr] = dict(store_updates)
        emitted: list[tuple[str, Expr]] = []
        for slot in rule.effects:
            name = slot.rstrip("?")
            optional = slot.endswith("?")
            if name == "AbandonClaims":
                when = hands_back if optional else TRUE
                template = self.abandon_updates()
            elif name == "ReleaseLease":
                # a lease acquired by this very reply is released too (Cancelling)
                when = _substitute(owner_fence[o].ne(0), state) if optional else TRUE
                template = self.release_updates(o)
            else:
                when, template = TRUE, {}
            # the effect reads the state the store result left; ``when`` and the handed-back
            # codes read the pre-state
            state = {
                **state,
                **{
                    key: ite(
                        when,
                        _substitute(_substitute(value, state), placeholders),
                        state.get(key, Var(key)),
                    )
                    for key, value in template.items()
                },
            }
            emitted.append((name, when))
        machine = self.machine_updates(rule.update, o, grant_q, grant_i)
        awaited = [n for n, _ in emitted if EFFECTS[n].awaited]
        issued = awaited[0] if awaited else ""
        updates: dict[str, Expr] = {**state, **machine}
        updates["machine_phase"] = machine_phase.set(o, rule.target)
        if is_reply or issued:
            updates["machine_awaiting"] = machine_awaiting.set(o, issued)
        if rule.outcome:
            updates["machine_outcome"] = machine_outcome.set(o, rule.outcome)
        updates.update(self.checkpoint_updates(rule, o))
        updates.update(self.ghost_updates(rule, o, emitted, state, gq, gi, is_reply))
        effects_expr = list_of(
            "qe",
            IntSort(0, max(len(emitted), 1) - 1),
            lambda p: any_of(*[all_of(p.eq(j), w) for j, (_, w) in enumerate(emitted)]),
            lambda p: _ite_names(p, [n for n, _ in emitted]),
        )
        return Case(condition, updates, Outcome(rule.event, {"effects": effects_expr}))

    def checkpoint_updates(self, rule: Rule, o: Expr) -> dict[str, Expr]:
        """The checkpoints a row settles (kernel/machine.py's committed_checkpoint, as a turn
        index): a checkpoint or the finish gives the running turn a checkpoint of its index;
        a successful checkpoint write commits it; a turn commit commits the turn's
        checkpoint when it has one; every applied commit writes its checkpoint to the store
        (``session_checkpoint``, which a restarted machine starts from)."""
        turn_index = ite(machine_turn[o] < 0, 0, machine_turn[o])  # always >= 0 in a turn
        out: dict[str, Expr] = {}
        if rule.phase == "ActiveTurn" and rule.event in ("CheckpointReached", "TurnFinished"):
            out["machine_turn_checkpoint"] = machine_turn_checkpoint.set(o, TRUE)
        if rule.event != "CommitSucceeded":
            return out
        written: Expr
        if rule.phase in ("WritingCheckpoint", "Interrupting"):  # the checkpoint write
            written = turn_index
        elif rule.phase == "Committing":  # the turn commit
            written = ite(machine_turn_checkpoint[o], turn_index, machine_committed_checkpoint[o])
        else:  # a session command's commit carries the committed checkpoint
            return {**out, "session_checkpoint": machine_committed_checkpoint[o]}
        out["machine_committed_checkpoint"] = machine_committed_checkpoint.set(o, written)
        out["session_checkpoint"] = written
        return out

    def restart(self) -> Action:
        """The store model's restart; the owner's new machine starts from the checkpoint the
        store holds."""
        action = self.k.restart()
        o = Param("o")
        start = {
            "machine_committed_checkpoint": machine_committed_checkpoint.set(o, session_checkpoint)
        }
        cases = [Case(c.condition, {**c.update_map(), **start}, c.outcome) for c in action.cases]
        return action.replace(cases=cases)

    def ghost_updates(
        self,
        rule: Rule,
        o: Expr,
        emitted: list[tuple[str, Expr]],
        state: Mapping[str, Expr],
        gq: Callable[[Expr], Expr],
        gi: Callable[[Expr], Expr],
        is_reply: bool,
    ) -> dict[str, Expr]:
        """The cycle ghosts and the emission flags, from the effects this row emits."""
        sb, si = self.s.batch, self.s.input
        grants_q = gq is not _no_grant
        grants_i = gi is not _no_grant
        leased: Expr = cycle_leased[o]
        reclaimed: Expr = cycle_reclaimed[o]
        released: Expr = cycle_released[o]
        lost: Expr = cycle_lost[o]
        if rule.event == "Start":
            leased, reclaimed, released = FALSE, FALSE, FALSE
        if rule.event == "LeaseAcquired":
            leased, lost = TRUE, FALSE
        if rule.event == "LeaseLost":
            leased, lost = FALSE, TRUE
        order_bad: list[Expr] = []
        loss_bad: list[Expr] = []
        for name, when in emitted:
            kind = EFFECTS[name]
            if not kind.store:
                continue
            if kind.acquires_lease:
                bad = any_of(leased, released)
                if name == "ReclaimLease":
                    bad = any_of(bad, reclaimed)
                    reclaimed = ite(when, TRUE, reclaimed)
                order_bad.append(all_of(when, bad))
            elif kind.uses_lease:
                order_bad.append(all_of(when, any_of(~leased, released)))
                if kind.releases_lease:
                    released = ite(when, TRUE, released)
            if name != "AbandonClaims" and not kind.acquires_lease:
                loss_bad.append(all_of(when, lost))
        awaited = sum(1 for n, _ in emitted if EFFECTS[n].awaited)
        two = awaited >= 2 or (not is_reply and awaited == 1)
        two_bad: Expr = TRUE if awaited >= 2 else FALSE
        if two and awaited == 1:
            two_bad = machine_awaiting[o].ne("")
        ends_cycle = rule.target in ("Idle", "Failed") and rule.phase not in ("Idle", "Failed")
        new_gq = map_of("qb", sb, lambda b: ite(gq(b).ne(0), gq(b), granted_q[o][b]))
        new_gi = map_of("qi", si, lambda i: ite(gi(i).ne(0), gi(i), granted_i[o][i]))
        # only what changes is written: smaller cases, cheaper z3 encodings
        updates: dict[str, Expr] = {}
        flagged: tuple[tuple[str, list[Expr]], ...] = (
            ("hist_phase_order", order_bad),
            ("hist_effect_after_loss", loss_bad),
            ("hist_two_outstanding", [two_bad] if two_bad != FALSE else []),
        )
        for flag, bad_list in flagged:
            if bad_list:
                updates[flag] = any_of(Var(flag), *bad_list)
        if ends_cycle:
            leased = FALSE
            if rule.outcome != "failed":
                post_bclaim = state.get("batch_claim", batch_claim)
                post_bstatus = state.get("batch_status", batch_status)
                post_iclaim = state.get("input_claim", input_claim)
                exempt_commands = rule.outcome == "lease_lost"

                def q_left(b: Expr) -> Expr:
                    code = new_gq[b]
                    left = all_of(code.ne(0), post_bstatus[b].eq("queued"), post_bclaim[b].eq(code))
                    if exempt_commands:  # lash forgets a command claim on lease loss
                        left = all_of(left, self.k.work_class[b].ne("session_command"))
                    return left

                def i_left(i: Expr) -> Expr:
                    code = new_gi[i]
                    return all_of(code.ne(0), post_iclaim[i].eq(code))

                updates["hist_unsettled_claims"] = any_of(
                    Var("hist_unsettled_claims"), exists("qb", sb, q_left), exists("qi", si, i_left)
                )
            new_gq = map_of("qb", sb, lambda _: Const(0))
            new_gi = map_of("qi", si, lambda _: Const(0))
        for name, var, value in (
            ("cycle_leased", cycle_leased, leased),
            ("cycle_reclaimed", cycle_reclaimed, reclaimed),
            ("cycle_released", cycle_released, released),
            ("cycle_lost", cycle_lost, lost),
        ):
            if value != var[o]:
                updates[name] = var.set(o, value)
        resets = ends_cycle or rule.event == "Start"
        if resets:
            new_gq = map_of("qb", sb, lambda _: Const(0))
            new_gi = map_of("qi", si, lambda _: Const(0))
        if resets or grants_q:
            updates["granted_q"] = granted_q.set(o, new_gq)
        if resets or grants_i:
            updates["granted_i"] = granted_i.set(o, new_gi)
        return updates

    # -- actions -----------------------------------------------------------------------------

    def host_action(self, action: str) -> Action:
        o = Param("o")
        event = HOST_EVENTS[action]
        rows = [r for r in self.rules if r.event == event]
        params: dict[str, Any] = {"o": self.s.owner}
        if action == "host_checkpoint":
            params["checkpoint"] = CHECKPOINT
        phases = sorted({r.phase for r in rows}, key=PHASES.index)
        cases = [
            self.case_for(
                r,
                o,
                all_of(machine_phase[o].eq(r.phase), self.guard(r.guard, o, {})),
                {},
                None,
                None,
                is_reply=False,
            )
            for r in rows
        ]
        guard = all_of(owner_alive[o], any_of(*[machine_phase[o].eq(p) for p in phases]))
        if action == "host_start":
            guard = all_of(guard, session_turns < self.bounds.max_turns)
        return Action(action, params, guard, cases, doc=f"the host feeds {event}")

    def host_timer(self) -> Action:
        """The host's renewal timer fires at ``at``; the driver renews only once the renew
        interval has passed since the lease was granted or renewed and the machine takes
        ``RenewDue``; otherwise nothing happens (``NotDue``)."""
        o, at = Param("o"), Param("at")
        renewing = [
            self.case_for(
                r,
                o,
                all_of(at.ne("early"), machine_phase[o].eq(r.phase), self.guard(r.guard, o, {})),
                {},
                None,
                None,
                is_reply=False,
            )
            for r in self.rules
            if r.event == "RenewDue"
        ]
        not_due = Case(
            TRUE,
            {},
            Outcome(
                NOT_DUE,
                {"effects": list_of("qe", IntSort(0, 0), lambda _: FALSE, lambda _: "")},
            ),
        )
        return Action(
            "host_timer",
            {"o": self.s.owner, "at": TIMER_INSTANT},
            # the timer runs while the machine holds a lease (lash: a renewal task per lease)
            all_of(owner_alive[o], owner_fence[o].ne(0)),
            [*renewing, not_due],
            doc="o's renewal timer fires; the driver decides whether a renewal is due",
        )

    def build_driver(self) -> Action:
        """The host builds a driver with a named configuration, before the session's first
        turn, and reads back what it got; the driver is not kept, so nothing changes."""
        config = Param("config")
        cases = []
        for name, settings in DRIVER_CONFIGS.items():
            tag, fields = driver_build_outcome(settings)
            cases.append(Case(config.eq(name), {}, Outcome(tag, fields)))
        return Action(
            "build_driver",
            {"config": DRIVER_CONFIG},
            session_turns.eq(0),
            cases,
            doc="build a driver with a named configuration: its settings or its refusal",
        )

    def host_misfeed(self) -> Action:
        """The host feeds o's machine a reply that is not the store's answer to its
        outstanding effect; the machine refuses it (a typed error) and nothing changes. The
        outcome says which reply type was fed and whether the machine, asked first, said it
        accepts that type now (payload aside)."""
        o, misfeed = Param("o"), Param("reply")
        cases: list[Case] = []
        for effect in AWAITED_EFFECTS:
            awaited = machine_awaiting[o].eq(effect)
            cases.append(
                Case(
                    all_of(awaited, misfeed.eq("unawaited")),
                    {},
                    Outcome(REPLY_REFUSED, {"reply": unawaited_reply(effect), "accepts": False}),
                )
            )
            if effect not in PAYLOAD_REPLIES:
                continue
            picks = ["session_before", "session_after"]
            if effect in GENERATION_CHECKED:
                picks += ["generation_below", "generation_above"]
            cases.append(
                Case(
                    all_of(awaited, any_of(*[misfeed.eq(p) for p in picks])),
                    {},
                    Outcome(REPLY_REFUSED, {"reply": PAYLOAD_REPLIES[effect], "accepts": True}),
                )
            )
        return Action(
            "host_misfeed",
            {"o": self.s.owner, "reply": MISFEED},
            all_of(owner_alive[o], any_of(*[c.condition for c in cases])),
            cases,
            doc="the host feeds o's machine a wrong reply; the machine refuses it",
        )

    def open_driver(self) -> Action:
        """The host opens a driver over the trace's store for the trace's session or another
        session id and reads the checkpoint it starts from: the store's for its own session,
        none (turn index 0) for another; the driver is dropped, so nothing changes."""
        session = Param("session")
        return Action(
            "open_driver",
            {"session": DRIVER_SESSION},
            TRUE,
            [
                Case(
                    session.eq("own"),
                    {},
                    Outcome(DRIVER_OPENED, {"committed_checkpoint": session_checkpoint}),
                ),
                Case(TRUE, {}, Outcome(DRIVER_OPENED, {"committed_checkpoint": Const(0)})),
            ],
            doc="open a driver for a session id over the store: the checkpoint it starts from",
        )

    def _reply_cases(
        self,
        o: Expr,
        effect: str,
        prefix: Expr,
        reply: str,
        store_updates: Mapping[str, Expr],
        facts: Mapping[str, Expr],
        grant_q: Callable[[Expr], Expr] | None,
        grant_i: Callable[[Expr], Expr] | None,
    ) -> list[Case]:
        cases = []
        settled: set[str] = set()  # phases whose rows for this result are exhausted
        for rule in self.rules:
            if rule.event != reply or effect not in self.awaitable[rule.phase]:
                continue
            if rule.phase in settled:
                continue
            guard: Expr
            if rule.guard.startswith("awaiting:"):
                guard = TRUE if rule.guard == f"awaiting:{effect}" else FALSE
            else:
                guard = self.guard(rule.guard, o, facts)
            if guard == FALSE:
                continue
            if guard == TRUE:
                settled.add(rule.phase)  # later rows of this phase cannot be taken
            condition = all_of(prefix, machine_phase[o].eq(rule.phase), guard)
            cases.append(
                self.case_for(rule, o, condition, store_updates, grant_q, grant_i, is_reply=True)
            )
        return cases

    def _unhandled(self) -> Case:
        return Case(
            TRUE,
            {"hist_unhandled_reply": TRUE},
            Outcome(
                "Unhandled",
                {"effects": list_of("qe", IntSort(0, 0), lambda _: FALSE, lambda _: "")},
            ),
        )

    def answers_everywhere(self, effect: str, reply: str) -> bool:
        """Every phase that can await ``effect`` has an unguarded row for ``reply``."""
        phases = [p for p in PHASES if effect in self.awaitable[p]]
        return all(
            any(r.phase == p and r.event == reply and r.guard == "" for r in self.rules)
            for p in phases
        )

    def _cut(self, effect: str, o: Expr) -> Expr:
        """The bound cut of ``effect``: the result the store would take stays in the bounds."""
        results = self.store_results(effect, o)
        pairs = [(r.condition, r.within_bounds) for r in results]
        return ite_chain(pairs, TRUE)

    def store_step(self) -> Action:
        o = Param("o")
        cases: list[Case] = []
        cut_by_effect: list[tuple[Expr, Expr]] = []
        for effect in AWAITED_EFFECTS:
            earlier: list[Expr] = []
            for result in self.store_results(effect, o):
                taken = all_of(machine_awaiting[o].eq(effect), result.condition, *earlier)
                cases += self._reply_cases(
                    o,
                    effect,
                    taken,
                    result.reply,
                    result.updates,
                    result.facts,
                    result.grant_q,
                    result.grant_i,
                )
                if not self.answers_everywhere(effect, result.reply):
                    # a phase without a row for this reply would fall through to later results
                    earlier.append(~result.condition)
            cut_by_effect.append((machine_awaiting[o].eq(effect), self._cut(effect, o)))
        cases.append(self._unhandled())
        # one conjunct (an if-then-else over the awaited effect) keeps the compiled code shallow
        within_bounds = ite_chain(cut_by_effect, TRUE)
        return Action(
            "store_step",
            {"o": self.s.owner},
            all_of(owner_alive[o], machine_awaiting[o].ne(""), within_bounds),
            cases,
            doc="the store performs o's outstanding effect; the answer is fed to the machine",
        )

    def store_fail(self) -> Action:
        o = Param("o")
        cases: list[Case] = []
        for effect in AWAITED_EFFECTS:
            reply = EFFECTS[effect].failure_reply
            cases += self._reply_cases(
                o, effect, machine_awaiting[o].eq(effect), reply, {}, {}, None, None
            )
        cases.append(self._unhandled())
        return Action(
            "store_fail",
            {"o": self.s.owner},
            all_of(owner_alive[o], machine_awaiting[o].ne("")),
            cases,
            doc="o's outstanding store call fails with a backend error; nothing is applied",
        )

    def _with_tick(self, action: Action, tick_var: str, slot: str) -> Action:
        sb, si = self.s.batch, self.s.input
        now = (
            count("qb", sb, lambda b: batch_status[b].ne("absent"))
            + count("qi", si, lambda i: input_state[i].ne("absent"))
            + 1
        )
        tick = Var(tick_var)
        cases = [
            Case(c.condition, {**c.update_map(), tick_var: tick.set(Param(slot), now)}, c.outcome)
            for c in action.cases
        ]
        return action.replace(cases=cases)

    def crash(self) -> Action:
        o = Param("o")
        sb, si = self.s.batch, self.s.input
        zero_b = map_of("qb", sb, lambda _: Const(0))
        zero_i = map_of("qi", si, lambda _: Const(0))
        updates: dict[str, Expr] = {
            "owner_alive": owner_alive.set(o, FALSE),
            "owner_fence": owner_fence.set(o, 0),
            "machine_phase": machine_phase.set(o, "Idle"),
            "machine_awaiting": machine_awaiting.set(o, ""),
            "machine_turn": machine_turn.set(o, -1),
            "machine_interrupted": machine_interrupted.set(o, FALSE),
            "machine_outcome": machine_outcome.set(o, ""),
            "machine_checkpoint": machine_checkpoint.set(o, ""),
            "machine_committed_checkpoint": machine_committed_checkpoint.set(o, 0),
            "machine_turn_checkpoint": machine_turn_checkpoint.set(o, FALSE),
            "machine_observed": machine_observed.set(o, 0),
            "machine_qheld": machine_qheld.set(o, zero_b),
            "machine_iheld": machine_iheld.set(o, zero_i),
            "cycle_leased": cycle_leased.set(o, FALSE),
            "cycle_reclaimed": cycle_reclaimed.set(o, FALSE),
            "cycle_released": cycle_released.set(o, FALSE),
            "cycle_lost": cycle_lost.set(o, FALSE),
            "granted_q": granted_q.set(o, zero_b),
            "granted_i": granted_i.set(o, zero_i),
        }
        return Action(
            "crash",
            {"o": self.s.owner},
            owner_alive[o],
            [Case(TRUE, updates, Outcome("Ok"))],
            doc="kill the owner's process: its machine and memory are lost",
        )

    def actions(self) -> list[Action]:
        k = self.k
        return [
            *[self.host_action(name) for name in HOST_EVENTS],
            self.host_timer(),
            self.build_driver(),
            self.host_misfeed(),
            self.open_driver(),
            self.store_step(),
            self.store_fail(),
            self._with_tick(k.enqueue_batch(), "batch_tick", "b"),
            self._with_tick(k.enqueue_input(), "input_tick", "i"),
            k.cancel_batch(),
            k.cancel_input(),
            k.expire(),
            self.crash(),
            self.restart(),
        ]

    # -- monitors and invariants ----------------------------------------------------------------

    def monitors(self) -> list[Monitor]:
        o = Param("o")
        sb, si = self.s.batch, self.s.input
        step = ActionIs("store_step")

        def newly_stamped_b(b: Expr) -> Expr:
            return all_of(Next("batch_claim")[b].ne(0), Next("batch_claim")[b].ne(batch_claim[b]))

        def newly_stamped_i(i: Expr) -> Expr:
            return all_of(Next("input_claim")[i].ne(0), Next("input_claim")[i].ne(input_claim[i]))

        took_work = all_of(step, machine_interrupted[o]).implies(
            all_of(
                ~exists("qb", sb, newly_stamped_b),
                ~exists("qi", si, newly_stamped_i),
                forall(
                    "qb",
                    sb,
                    lambda b: Next("machine_qheld")[o][b].ne(0).implies(machine_qheld[o][b].ne(0)),
                ),
                forall(
                    "qi",
                    si,
                    lambda i: Next("machine_iheld")[o][i].ne(0).implies(machine_iheld[o][i].ne(0)),
                ),
            )
        )
        commits = all_of(step, Next("head_revision").ne(head_revision))
        stale = commits.implies(self.k.valid_fence(o))
        foreign = commits.implies(
            all_of(
                forall(
                    "qb",
                    sb,
                    lambda b: all_of(
                        batch_status[b].eq("queued"), Next("batch_status")[b].eq("deleted")
                    ).implies(all_of(granted_q[o][b].ne(0), batch_claim[b].eq(granted_q[o][b]))),
                ),
                forall(
                    "qi",
                    si,
                    lambda i: all_of(
                        input_state[i].ne("completed"), Next("input_state")[i].eq("completed")
                    ).implies(all_of(granted_i[o][i].ne(0), input_claim[i].eq(granted_i[o][i]))),
                ),
            )
        )
        unchanged_rows = all_of(
            forall(
                "qb",
                sb,
                lambda b: all_of(
                    Next("batch_claim")[b].eq(batch_claim[b]),
                    Next("batch_status")[b].eq(batch_status[b]),
                ),
            ),
            forall(
                "qi",
                si,
                lambda i: all_of(
                    Next("input_claim")[i].eq(input_claim[i]),
                    Next("input_state")[i].eq(input_state[i]),
                ),
            ),
        )
        lease_unchanged = all_of(
            Next("lease_holder").eq(lease_holder),
            Next("lease_holder_inc").eq(lease_holder_inc),
            Next("lease_gen").eq(lease_gen),
            Next("lease_live").eq(lease_live),
        )
        drain_releases = any_of(
            machine_awaiting[o].eq("ClaimLeadingCommand"),
            machine_awaiting[o].eq("CommitSessionCommand"),
        )
        failed = all_of(
            any_of(step, ActionIs("store_fail")),
            machine_phase[o].ne("Failed"),
            Next("machine_phase")[o].eq("Failed"),
        ).implies(
            all_of(
                unchanged_rows,
                any_of(lease_unchanged, all_of(drain_releases, Next("lease_holder").eq(-1))),
            )
        )

        # the inspection answer decides, as session_commands_go_first does on its listings
        command_order = all_of(
            step,
            machine_awaiting[o].eq("InspectPendingWork"),
            machine_phase[o].eq("InspectingQueue"),
        ).implies(Next("machine_phase")[o].eq("ClaimingCommands").eq(self.commands_first()))

        def sticky(flag: str, ok: Expr) -> Monitor:
            return Monitor(flag, any_of(Var(flag), ~ok))

        return [
            sticky("hist_interrupted_took_work", took_work),
            sticky("hist_stale_commit", stale),
            sticky("hist_foreign_completion", foreign),
            sticky("hist_failed_leftover", failed),
            sticky("hist_command_order", command_order),
        ]

    def invariants(self) -> list[Invariant]:
        so = self.s.owner
        kept = set(STORE_VARIABLES)
        store = [
            inv
            for inv in self.k.invariants()
            if inv.name not in STORE_INVARIANTS_DROPPED and _mentions_only(inv.expr, kept)
        ]

        def flag(name: str, statement: str, reference: str) -> Invariant:
            return Invariant(name, statement, reference, ~Var(f"hist_{name}"))

        machine = [
            flag(
                "phase_order",
                "Every cycle follows the phase-order rule: the lease is acquired before every "
                "lease-using effect, reclaimed at most once and only as the acquisition, and a "
                "releasing effect is the cycle's last lease-using effect.",
                "scenarios.md §4.5; kernel/machine.py 'The phase-order rule'",
            ),
            flag(
                "effect_after_loss",
                "After its lease is lost a machine issues no store effect (other than handing "
                "the claims back at once) until it acquires a lease again.",
                "docs/turn-machine.md, Store errors; lash turn_loop.rs lease loss",
            ),
            flag(
                "two_outstanding",
                "A machine never has two store operations outstanding.",
                "kernel/machine.py TurnMachine.awaiting",
            ),
            flag(
                "unsettled_claims",
                "A cycle that ends other than by a non-lease store failure leaves none of its "
                "claims stamped: its turn commit settled them or they were handed back (a "
                "command claim is forgotten on lease loss, as lash does).",
                "scenarios.md §4.5 (the turn commit settles all claims); machine_error_paths.md",
            ),
            flag(
                "foreign_completion",
                "A commit completes only claims its cycle was granted.",
                "scenarios.md §4.5",
            ),
            flag(
                "interrupted_took_work",
                "An interrupted turn takes no new work: a checkpoint claim answering after the "
                "interrupt is handed back in the same step.",
                "kernel/machine.py 'Stopping early'",
            ),
            flag(
                "stale_commit",
                "A commit applies only under the live fence of the committing machine.",
                "store.md §6.32",
            ),
            flag(
                "failed_leftover",
                "A non-lease store failure changes no claim row and leaves the lease row as it "
                "was (live under the same generation until its TTL), except that the "
                "session-command drain releases the lease.",
                "docs/turn-machine.md, Store errors (lash StoreCommitFailed)",
            ),
            flag(
                "command_order",
                "At the inspection answer the machine drains session commands first exactly "
                "when the earliest pending command was enqueued before every pending next-turn "
                "input.",
                "kernel/machine.py session_commands_go_first",
            ),
            flag(
                "unhandled_reply",
                "Every store reply is handled by a rule of the machine.",
                "kernel/machine.py TRANSITIONS",
            ),
            Invariant(
                "lease_memory_matches_phase",
                "A machine remembers a lease exactly in the phases that hold one, and awaits a "
                "store answer exactly in the phases that wait for one.",
                "kernel/machine.py STATE_DOCS",
                forall(
                    "qo",
                    so,
                    lambda p: all_of(
                        _in(machine_phase[p], LEASED_PHASES).implies(owner_fence[p].ne(0)),
                        _in(machine_phase[p], UNLEASED_PHASES).implies(owner_fence[p].eq(0)),
                        machine_awaiting[p].eq("").eq(_in(machine_phase[p], RESTING_PHASES)),
                    ),
                ),
            ),
        ]
        return store + machine


def _no_grant(_: Expr) -> Expr:
    """The grant of a reply that grants nothing."""
    return Const(0)


def _ite_names(position: Expr, names: list[str]) -> Expr:
    if not names:
        return Const("")
    result: Expr = Const(names[-1])
    for j in range(len(names) - 2, -1, -1):
        result = ite(position.eq(j), names[j], result)
    return result


def _in(value: Expr, members: tuple[str, ...]) -> Expr:
    return any_of(*[value.eq(m) for m in members])


#: Store invariants that lash's error paths break on purpose.
STORE_INVARIANTS_DROPPED: dict[str, str] = {
    "live_lease_known_to_holder": (
        "a non-lease store failure makes the machine forget a lease the row keeps live until "
        "its TTL (lash's StoreCommitFailed path)"
    ),
}

#: Phases in which the machine holds a lease.
LEASED_PHASES: tuple[str, ...] = (
    "InspectingQueue",
    "ClaimingCommands",
    "CommittingCommand",
    "ClaimingInputs",
    "ClaimingTurnWork",
    "ActiveTurn",
    "WritingCheckpoint",
    "ClaimingCheckpointWork",
    "RenewingLease",
    "Interrupting",
    "Committing",
)
#: Phases in which the machine holds no lease (Cancelling may or may not hold one).
UNLEASED_PHASES: tuple[str, ...] = ("Idle", "AcquiringLease", "ReclaimingLease", "Failed", "Closed")
#: Effects awaited before a turn holds anything (held claims are empty while they wait).
PRE_TURN_EFFECTS: tuple[str, ...] = (
    "AcquireLease",
    "ReclaimLease",
    "InspectPendingWork",
    "ClaimLeadingCommand",
    "ClaimNextTurnInputs",
    "ClaimQueuedWork",
)
#: Phases in which no store operation is outstanding.
RESTING_PHASES: tuple[str, ...] = ("Idle", "ActiveTurn", "Failed", "Closed")


# --------------------------------------------------------------------------------------------
# Building


def _variables(b: MachineBuilder) -> tuple[Variable, ...]:
    s = b.s
    so, sb, si = s.owner, s.batch, s.input
    store_model_vars = {v.name: v for v in _store_variables(b)}
    plain = [store_model_vars[name] for name in STORE_VARIABLES]
    plain += [
        Variable("batch_tick", MapSort(sb, b.tick), "global enqueue order of the batch, 0 = none"),
        Variable("input_tick", MapSort(si, b.tick), "global enqueue order of the input, 0 = none"),
        Variable("machine_phase", MapSort(so, PHASE), "the machine's TurnState"),
        Variable("machine_awaiting", MapSort(so, AWAITING), "the outstanding store effect"),
        Variable("machine_turn", MapSort(so, b.turn), "n of the turn turn-<n> it runs, -1 none"),
        Variable("machine_interrupted", MapSort(so, BoolSort()), "the turn was interrupted"),
        Variable("machine_outcome", MapSort(so, CYCLE_OUTCOME), "the last cycle outcome"),
        Variable(
            "machine_checkpoint", MapSort(so, CHECKPOINT_OR_NONE), "checkpoint kind being claimed"
        ),
        Variable("machine_observed", MapSort(so, s.gen), "busy holder generation to reclaim"),
        Variable(
            "machine_committed_checkpoint",
            MapSort(so, b.turn_index),
            "turn index of the last checkpoint the machine knows committed",
        ),
        Variable(
            "machine_turn_checkpoint",
            MapSort(so, BoolSort()),
            "the running turn has a checkpoint (reached or finished): its commit carries it",
        ),
        Variable(
            "session_checkpoint", b.turn_index, "turn index of the checkpoint the store holds"
        ),
        Variable("machine_qheld", MapSort(so, MapSort(sb, s.qcode)), "code under which b is held"),
        Variable("machine_iheld", MapSort(so, MapSort(si, s.icode)), "code under which i is held"),
        Variable("session_turns", IntSort(0, b.bounds.max_turns), "turns started in the session"),
    ]
    ghosts = [
        Variable("cycle_leased", MapSort(so, BoolSort()), "the cycle acquired a lease", True),
        Variable("cycle_reclaimed", MapSort(so, BoolSort()), "the cycle issued a reclaim", True),
        Variable("cycle_released", MapSort(so, BoolSort()), "the cycle issued a release", True),
        Variable("cycle_lost", MapSort(so, BoolSort()), "lease lost, not reacquired", True),
        Variable("granted_q", MapSort(so, MapSort(sb, s.qcode)), "codes granted this cycle", True),
        Variable("granted_i", MapSort(so, MapSort(si, s.icode)), "codes granted this cycle", True),
    ]
    flags = [Variable(name, BoolSort(), doc, ghost=True) for name, doc in MACHINE_FLAGS]
    return tuple(plain + ghosts + flags)


def _store_variables(b: MachineBuilder) -> tuple[Variable, ...]:
    from .kernel_model import _variables as store_variables

    return store_variables(b.s)


def _initial(b: MachineBuilder) -> dict[str, Value]:
    from .kernel_model import _initial as store_initial

    bounds = b.bounds
    owners, batches, inputs = range(bounds.owners), range(bounds.batches), range(bounds.inputs)
    store = store_initial(b.store_bounds, b.s)
    init: dict[str, Value] = {name: store[name] for name in STORE_VARIABLES}
    per_owner: dict[str, Value] = {
        "machine_phase": "Idle",
        "machine_awaiting": "",
        "machine_turn": -1,
        "machine_interrupted": False,
        "machine_outcome": "",
        "machine_checkpoint": "",
        "machine_observed": 0,
        "machine_committed_checkpoint": 0,
        "machine_turn_checkpoint": False,
        "cycle_leased": False,
        "cycle_reclaimed": False,
        "cycle_released": False,
        "cycle_lost": False,
    }
    for name, value in per_owner.items():
        init[name] = {o: value for o in owners}
    for name in ("machine_qheld", "granted_q"):
        init[name] = {o: {x: 0 for x in batches} for o in owners}
    for name in ("machine_iheld", "granted_i"):
        init[name] = {o: {x: 0 for x in inputs} for o in owners}
    init["batch_tick"] = {x: 0 for x in batches}
    init["input_tick"] = {x: 0 for x in inputs}
    init["session_turns"] = 0
    init["session_checkpoint"] = 0
    for name, _ in MACHINE_FLAGS:
        init[name] = False
    return init


DEFAULT_MACHINE_BOUNDS = MachineBounds()


def build_machine_model(
    bounds: MachineBounds = DEFAULT_MACHINE_BOUNDS, rules: tuple[Rule, ...] = RULES
) -> Model:
    """The turn machine composed with the store at ``bounds`` (see the module docstring)."""
    builder = MachineBuilder(bounds, rules)
    return Model(
        name="lash-kernel-machine",
        variables=_variables(builder),
        init=_initial(builder),
        actions=tuple(builder.actions()),
        invariants=tuple(builder.invariants()),
        monitors=tuple(builder.monitors()),
        bounds=bounds.as_dict(),
        doc=__doc__ or "",
    )


# --------------------------------------------------------------------------------------------
# Projection for machine traces (docs/machine-traces.md)

MACHINE_TRACE_VARIABLES: tuple[str, ...] = (
    "machine_phase",
    "machine_awaiting",
    "machine_turn",
    "machine_interrupted",
    "machine_qclaims",
    "machine_iclaims",
    "machine_outcome",
    "machine_committed_checkpoint",
    "session_turns",
)
HOST_AND_STORE_ACTIONS: tuple[str, ...] = (
    *HOST_EVENTS,
    "host_timer",
    "store_step",
    "store_fail",
)


def machine_trace_state(model: Model, state: FlatState) -> dict[str, Any]:
    """A flat state as the variables of docs/machine-traces.md (maps keyed by index)."""
    bounds = MachineBounds(**{k: int(v) for k, v in model.bounds.items()}).store_bounds()
    decoded = model.decode(state)
    result: dict[str, Any] = {name: decoded[name] for name in STORE_VARIABLES}
    result["batch_claim"] = {
        b: claim_id("qwc", c, bounds) for b, c in decoded["batch_claim"].items()
    }
    result["input_claim"] = {
        i: claim_id("tic", c, bounds) for i, c in decoded["input_claim"].items()
    }
    for name in ("machine_phase", "machine_awaiting", "machine_turn", "machine_interrupted"):
        result[name] = decoded[name]
    result["machine_outcome"] = decoded["machine_outcome"]
    result["machine_committed_checkpoint"] = decoded["machine_committed_checkpoint"]
    result["machine_qclaims"] = {
        o: sorted({claim_id("qwc", c, bounds) for c in rows.values() if c})
        for o, rows in decoded["machine_qheld"].items()
    }
    result["machine_iclaims"] = {
        o: sorted({claim_id("tic", c, bounds) for c in rows.values() if c})
        for o, rows in decoded["machine_iheld"].items()
    }
    result["session_turns"] = decoded["session_turns"]
    return result


def machine_trace_outcome(
    model: Model, action: str, outcome: tuple[str, tuple[tuple[str, Any], ...]]
) -> dict[str, Any]:
    """An outcome as docs/machine-traces.md: ``{tag, effects}`` for host events and store
    steps, the tag with the settings or the error variant for ``build_driver``, the store
    trace outcome for environment actions."""
    if action in HOST_AND_STORE_ACTIONS:
        tag, fields = outcome
        return {"tag": tag, "effects": list(dict(fields)["effects"])}
    if action in ("build_driver", "host_misfeed", "open_driver"):
        tag, fields = outcome
        return {"tag": tag, **dict(fields)}
    store_model = model.replace(
        bounds=MachineBounds(**{k: int(v) for k, v in model.bounds.items()})
        .store_bounds()
        .as_dict()
    )
    return trace_outcome(store_model, action, outcome)


# --------------------------------------------------------------------------------------------
# Lemmas: auxiliary invariants that make the composition's invariants inductive (z3check)

MACHINE_LEMMA_REASONS: dict[str, str] = {
    "lemma_awaiting_matches_phase": (
        "unhandled_reply: a phase only ever awaits the effects its incoming rows issue "
        "(awaitable_effects), so every reply finds a row"
    ),
    "lemma_cycle_ghosts_match_awaiting": (
        "phase_order, effect_after_loss: what the cycle ghosts say about the lease follows "
        "from the outstanding effect (a lease-using effect is awaited only under a lease the "
        "cycle acquired and did not release or lose); unsettled_claims: before a turn the "
        "machine holds nothing, while a command commit is outstanding only the command"
    ),
    "lemma_resting_phases": (
        "phase_order, unsettled_claims: in ActiveTurn the cycle holds its lease; Idle and "
        "Failed hold no lease, no claim and no granted claim"
    ),
    "lemma_interrupted_only_when_stopping": (
        "interrupted_took_work: only Interrupting and Committing carry the interrupt"
    ),
    "lemma_held_claims_were_granted": (
        "foreign_completion: a commit completes held rows, and every held code was granted "
        "to the cycle"
    ),
    "lemma_held_rows_not_restamped": (
        "lemma_held_claims_were_granted: the machine's own generation never claims a row it "
        "holds again, so a new grant never overwrites a held code"
    ),
    "lemma_granted_codes_minted": (
        "lemma_unheld_grants_unstamped: claim codes are fresh, so another generation's new "
        "claim never carries a code this cycle was granted"
    ),
    "lemma_granted_stamps_own_generation": (
        "lemma_held_rows_not_restamped with two owners: a lease-less hand-back by claim code "
        "never clears another generation's claim, because codes are stamped with the "
        "generation that was granted them"
    ),
    "lemma_crashed_owner_has_fresh_machine": (
        "current_fence_is_row_owner (the store model's crashed_owner_holds_nothing, which "
        "mentions the dropped owner claim memory): a restart starts from a fresh machine"
    ),
    "lemma_unheld_grants_unstamped": (
        "unsettled_claims: a granted claim the machine no longer holds was settled or handed "
        "back, so no row carries it"
    ),
}


def build_machine_lemmas(
    bounds: MachineBounds = DEFAULT_MACHINE_BOUNDS, rules: tuple[Rule, ...] = RULES
) -> tuple[Invariant, ...]:
    """The proof lemmas (``MACHINE_LEMMA_REASONS`` says which invariant each serves), plus
    the store model's own lemmas."""
    from .kernel_model import build_lemmas

    builder = MachineBuilder(bounds, rules)
    so, sb, si = builder.s.owner, builder.s.batch, builder.s.input
    awaitable = builder.awaitable

    def per_owner(body: Callable[[Expr], Expr]) -> Expr:
        return forall("qo", so, body)

    def awaiting_ok(p: Expr) -> Expr:
        return any_of(
            *[
                all_of(
                    machine_phase[p].eq(phase),
                    any_of(*[machine_awaiting[p].eq(e) for e in sorted(effects)]),
                )
                for phase, effects in awaitable.items()
                if effects
            ]
        )

    def ghosts_ok(p: Expr) -> Expr:
        clauses: list[Expr] = [cycle_lost[p].implies(~cycle_leased[p])]
        for effect in AWAITED_EFFECTS:
            kind = EFFECTS[effect]
            waiting = machine_awaiting[p].eq(effect)
            if kind.acquires_lease:
                facts = [owner_fence[p].eq(0), ~cycle_leased[p], ~cycle_released[p]]
                facts.append(
                    cycle_reclaimed[p] if effect == "ReclaimLease" else ~cycle_reclaimed[p]
                )
            else:
                facts = [
                    owner_fence[p].ne(0),
                    cycle_leased[p],
                    ~cycle_lost[p],
                    cycle_released[p] if kind.releases_lease else ~cycle_released[p],
                ]
            if effect in PRE_TURN_EFFECTS:
                facts.append(holds_nothing(p))
            if effect == "CommitSessionCommand":
                facts.append(holds_only_commands(p))
            clauses.append(waiting.implies(all_of(*facts)))
        return all_of(*clauses)

    def holds_nothing(p: Expr) -> Expr:
        return all_of(
            forall("qb", sb, lambda b: machine_qheld[p][b].eq(0)),
            forall("qi", si, lambda i: machine_iheld[p][i].eq(0)),
        )

    def holds_only_commands(p: Expr) -> Expr:
        return all_of(
            forall(
                "qb",
                sb,
                lambda b: (
                    machine_qheld[p][b].ne(0).implies(builder.k.work_class[b].eq("session_command"))
                ),
            ),
            forall("qi", si, lambda i: machine_iheld[p][i].eq(0)),
        )

    def nothing_held(p: Expr) -> Expr:
        return all_of(
            forall("qb", sb, lambda b: all_of(machine_qheld[p][b].eq(0), granted_q[p][b].eq(0))),
            forall("qi", si, lambda i: all_of(machine_iheld[p][i].eq(0), granted_i[p][i].eq(0))),
        )

    def resting_ok(p: Expr) -> Expr:
        return all_of(
            machine_phase[p]
            .eq("ActiveTurn")
            .implies(
                all_of(owner_fence[p].ne(0), cycle_leased[p], ~cycle_lost[p], ~cycle_released[p])
            ),
            _in(machine_phase[p], ("Idle", "Failed")).implies(
                all_of(owner_fence[p].eq(0), ~cycle_leased[p], nothing_held(p))
            ),
        )

    def held_granted(p: Expr) -> Expr:
        return all_of(
            forall(
                "qb",
                sb,
                lambda b: (
                    machine_qheld[p][b].ne(0).implies(granted_q[p][b].eq(machine_qheld[p][b]))
                ),
            ),
            forall(
                "qi",
                si,
                lambda i: (
                    machine_iheld[p][i].ne(0).implies(granted_i[p][i].eq(machine_iheld[p][i]))
                ),
            ),
        )

    def unheld_unstamped(p: Expr) -> Expr:
        return all_of(
            forall(
                "qb",
                sb,
                lambda b: all_of(
                    granted_q[p][b].ne(0), machine_qheld[p][b].ne(granted_q[p][b])
                ).implies(
                    ~all_of(batch_status[b].eq("queued"), batch_claim[b].eq(granted_q[p][b]))
                ),
            ),
            forall(
                "qi",
                si,
                lambda i: all_of(
                    granted_i[p][i].ne(0), machine_iheld[p][i].ne(granted_i[p][i])
                ).implies(input_claim[i].ne(granted_i[p][i])),
            ),
        )

    def held_not_superseded_by_own_generation(p: Expr) -> Expr:
        fence = owner_fence[p]

        def row_ok(held: Expr, claim: Expr, claim_gen: Expr) -> Expr:
            return held.ne(0).implies(
                all_of(
                    any_of(claim.eq(0), claim_gen >= fence),
                    claim_gen.eq(fence).implies(claim.eq(held)),
                    # while the generation is live nobody else can clear a held row
                    all_of(lease_live, lease_gen.eq(fence)).implies(
                        all_of(claim.eq(held), claim_gen.eq(fence))
                    ),
                )
            )

        return all_of(
            forall(
                "qb",
                sb,
                lambda b: row_ok(machine_qheld[p][b], batch_claim[b], batch_claim_gen[b]),
            ),
            forall(
                "qi",
                si,
                lambda i: row_ok(machine_iheld[p][i], input_claim[i], input_claim_gen[i]),
            ),
        )

    stride = bounds.max_claims_per_row + 1

    def minted(code: Expr, rows: IntSort, fencing: Var) -> Expr:
        # a granted code names a head row whose claim fencing token already reached it
        return code.eq(0) | exists(
            "qh",
            rows,
            lambda h: exists(
                "qf",
                builder.s.fencing,
                lambda f: all_of(code.eq(h * stride + f), f >= 1, f <= fencing[h]),
            ),
        )

    def granted_minted(p: Expr) -> Expr:
        return all_of(
            forall("qb", sb, lambda b: minted(granted_q[p][b], sb, batch_fencing)),
            forall("qi", si, lambda i: minted(granted_i[p][i], si, input_fencing)),
        )

    def granted_stamps_own_generation(p: Expr) -> Expr:
        fence = owner_fence[p]
        return all_of(
            forall(
                "qb",
                sb,
                lambda b: all_of(granted_q[p][b].ne(0), batch_claim[b].eq(granted_q[p][b])).implies(
                    batch_claim_gen[b].eq(fence)
                ),
            ),
            forall(
                "qi",
                si,
                lambda i: all_of(granted_i[p][i].ne(0), input_claim[i].eq(granted_i[p][i])).implies(
                    input_claim_gen[i].eq(fence)
                ),
            ),
        )

    def crashed_fresh(p: Expr) -> Expr:
        return (~owner_alive[p]).implies(
            all_of(
                owner_fence[p].eq(0),
                machine_phase[p].eq("Idle"),
                ~cycle_leased[p],
                ~cycle_lost[p],
                nothing_held(p),
            )
        )

    reference = "model/machine_model.py (proof lemma)"
    return (
        *build_lemmas(bounds.store_bounds()),
        Invariant(
            "lemma_awaiting_matches_phase",
            "A machine awaits only effects its phase can await.",
            reference,
            per_owner(awaiting_ok),
        ),
        Invariant(
            "lemma_cycle_ghosts_match_awaiting",
            "The cycle's lease ghosts agree with the outstanding effect.",
            reference,
            per_owner(ghosts_ok),
        ),
        Invariant(
            "lemma_resting_phases",
            "ActiveTurn holds the cycle's lease; Idle and Failed hold nothing.",
            reference,
            per_owner(resting_ok),
        ),
        Invariant(
            "lemma_interrupted_only_when_stopping",
            "Only Interrupting and Committing carry the interrupt.",
            reference,
            per_owner(
                lambda p: machine_interrupted[p].implies(
                    _in(machine_phase[p], ("Interrupting", "Committing"))
                )
            ),
        ),
        Invariant(
            "lemma_held_claims_were_granted",
            "Every claim the machine holds was granted to its cycle.",
            reference,
            per_owner(held_granted),
        ),
        Invariant(
            "lemma_held_rows_not_restamped",
            "A row the machine holds carries the held code while its generation is live; "
            "otherwise it is cleared, still carries it, or belongs to a newer generation.",
            reference,
            per_owner(held_not_superseded_by_own_generation),
        ),
        Invariant(
            "lemma_granted_codes_minted",
            "Every granted claim code was minted from its head row's claim fencing token.",
            reference,
            per_owner(granted_minted),
        ),
        Invariant(
            "lemma_granted_stamps_own_generation",
            "A row carrying a code granted to a cycle is pinned to that cycle's generation.",
            reference,
            per_owner(granted_stamps_own_generation),
        ),
        Invariant(
            "lemma_crashed_owner_has_fresh_machine",
            "A crashed owner's machine is the initial one and holds nothing.",
            reference,
            per_owner(crashed_fresh),
        ),
        Invariant(
            "lemma_unheld_grants_unstamped",
            "A granted claim the machine no longer holds is on no row.",
            reference,
            per_owner(unheld_unstamped),
        ),
    )
