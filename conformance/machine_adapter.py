"""Apply the machine-trace actions of docs/machine-traces.md to our turn machine and store.

:class:`MachineAdapter` runs one :class:`~lashspec.kernel.machine.TurnMachine` per owner (each
inside a :class:`~lashspec.kernel.driver.TurnDriver`) against one store, in *micro-steps*:
every event reaches the machine through the driver's own effect loop
(:meth:`TurnDriver.feed`, through the driver's host helpers ``start``, ``reach_checkpoint``,
``finish_turn``, ``interrupt``, ``reset`` and its renewal timer ``renew_if_due``), but the one
store effect a machine waits for stays outstanding until the trace says ``store_step`` (the
driver's own loop performs it and feeds the reply) or ``store_fail`` (the call fails with a
backend error).  Effects that
expect no answer (``ReleaseLease``, ``AbandonClaims``) run at once, through the driver.  So
the trace, not the adapter, decides how the owners' store calls interleave with each other
and with the environment.

The world (store, manual clock, fake process table, owner identities, slot catalogues, claim
names) and the environment actions are those of
:class:`~lashspec.conformance.kernel_adapter.KernelAdapter`, which this adapter drives for
them; the store projection in :meth:`MachineAdapter.observe` is its projection too.  Nothing
here decides semantics: the machine decides what to do, the driver maps store results and
errors to reply events and decides when a renewal is due, the store decides what happens.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any, cast

from ..kernel.clock import ManualClock
from ..kernel.driver import TurnDriver
from ..kernel.errors import (
    BackendFailure,
    LeaseTimingsError,
    MachineLimitsError,
    TurnMachineError,
)
from ..kernel.machine import (
    AcquireLease,
    CheckpointReached,
    CheckpointWorkClaimed,
    CommandClaimed,
    CommitFailed,
    Effect,
    Event,
    HostEffect,
    InputsClaimed,
    Interrupt,
    LeaseAcquired,
    LeaseRenewed,
    ReclaimLease,
    RenewDue,
    RenewLease,
    Reset,
    Start,
    StoreEffect,
    StoreFailed,
    TurnFinished,
    TurnMachine,
    TurnWorkClaimed,
)
from ..kernel.store import Store
from ..kernel.types import (
    CheckpointKind,
    LeaseTimings,
    NextTurnMode,
    QueuedWorkClaim,
    SessionExecutionLease,
    TurnInputClaim,
)
from .effect_kinds import check_effect_kind
from .kernel_adapter import (
    SESSION,
    TTL_MS,
    BadActionParams,
    KernelAdapter,
    StoreFactory,
    UnknownAction,
    identity,
    memory_store_factory,
    name_input_claim,
    name_queue_claim,
)

#: Systems a trace can describe (``#meta.lashspec.system``); traces without it are store traces.
SYSTEMS = ("store", "machine")

#: Environment actions: the store-trace actions of the same name (docs/trace-format.md §3).
ENVIRONMENT_ACTIONS = frozenset(
    {"enqueue_batch", "enqueue_input", "cancel_batch", "cancel_input", "expire", "crash", "restart"}
)

#: Host actions and the event each feeds to the owner's machine.
HOST_ACTIONS = frozenset(
    {
        "host_start",
        "host_checkpoint",
        "host_finish",
        "host_interrupt",
        "host_renew_due",
        "host_reset",
    }
)

#: Each driver's timings are ``LeaseTimings.from_ttl(TTL_MS)``: the renew interval is a third
#: of the TTL, as lash derives it (``LeaseTimings::from_ttl``).
RENEW_INTERVAL_MS = TTL_MS // 3

#: ``host_timer``'s instants, as offsets from when the store granted or last renewed the
#: lease (docs/machine-traces.md): just before the renew interval has passed, exactly when it
#: has, and the last instant of the lease's TTL (a timer that fires late).
TIMER_OFFSETS_MS: dict[str, int] = {
    "early": RENEW_INTERVAL_MS - 1,
    "due": RENEW_INTERVAL_MS,
    "late": TTL_MS - 1,
}

#: ``build_driver``'s configurations (docs/machine-traces.md): TTL, renew interval, max
#: inputs, max batches, each None when the host leaves it at its default; a TTL without a
#: renew interval is built with ``LeaseTimings.from_ttl``.
DRIVER_CONFIGS: dict[str, tuple[int | None, int | None, int | None, int | None]] = {
    "defaults": (None, None, None, None),
    "smallest": (3, 1, 1, 1),
    "ttl_only": (30_001, None, None, None),
    "ttl_only_too_small": (2, None, None, None),
    "ttl_zero": (0, 10_000, None, None),
    "ttl_one": (1, 1, None, None),
    "renew_zero": (30_000, 0, None, None),
    "ttl_below_three_renewals": (29_999, 10_000, None, None),
    "ttl_above_three_renewals": (30_001, 10_000, None, None),
    "no_inputs": (None, None, 0, None),
    "no_batches": (None, None, None, 0),
    "no_inputs_no_batches": (None, None, 0, 0),
}

#: ``host_misfeed``'s picks (docs/machine-traces.md): how the fed reply is wrong.
MISFEEDS = ("unawaited", "session_before", "session_after", "generation_below", "generation_above")

#: ``open_driver``'s session ids: the trace's, or one sorting just before or after it.
DRIVER_SESSIONS: dict[str, str] = {
    "own": SESSION,
    "id_before": SESSION[:-1],
    "id_after": f"{SESSION}-other",
}

#: Variables of the store-trace vocabulary that machine traces leave out (claims live in the
#: machines instead, see ``machine_qclaims``/``machine_iclaims``).
STORE_OWNER_MEMORY = ("owner_qclaim", "owner_qclaim_rows", "owner_iclaim", "owner_iclaim_rows")


class ActionNotEnabled(BadActionParams):
    """The action is well-formed but not enabled now (the machine does not accept the event,
    nothing is outstanding, the owner is dead): a refusal, as for KernelAdapter."""


class UnsupportedSystem(ValueError):
    """A trace asks for a system (``#meta.lashspec.system``) the target does not serve."""


def trace_system(meta: Mapping[str, Any]) -> str:
    """The system a trace's ``#meta.lashspec`` (Trace.meta) describes; store when absent."""
    system = meta.get("system", "store")
    return system if isinstance(system, str) else repr(system)


class _FailingStore:
    """A store whose every call fails with a backend error and changes nothing.

    ``store_fail`` puts it under the driver for one call, so the driver's own error mapping
    (not the adapter) turns the failure into the reply event.
    """

    def __getattr__(self, name: str) -> Any:
        def fail(*args: Any, **kwargs: Any) -> Any:
            raise BackendFailure(f"injected backend failure in {name} (store_fail)")

        return fail


class _TimerClock:
    """The clock a driver reads for its renewal decision: the store's clock, except while a
    ``host_timer`` step holds it at the timer's instant."""

    def __init__(self, store_clock: ManualClock) -> None:
        self._store_clock = store_clock
        self.instant: int | None = None

    def now_ms(self) -> int:
        return self._store_clock.now_ms() if self.instant is None else self.instant


class _Reissue(Event):
    """Not a machine event: the marker :class:`_ReissuingMachine` answers with the
    outstanding effect."""


_REISSUE = _Reissue()


class _ReissuingMachine:
    """Stands in for a driver's machine during one ``store_step``: it answers the marker
    event with the machine's outstanding effect, as though the machine had just issued it,
    and passes every other event and attribute to the machine itself.  So the driver's own
    loop performs the effect and feeds its reply to the machine (a run-to-completion step
    of :meth:`TurnDriver.feed`), which then runs until the machine waits again."""

    def __init__(self, machine: TurnMachine, effect: StoreEffect) -> None:
        self._machine = machine
        self._effect = effect

    def handle(self, event: Event) -> list[Effect]:
        if event is _REISSUE:
            return [self._effect]
        return self._machine.handle(event)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._machine, name)


class _TraceDriver(TurnDriver):
    """A :class:`TurnDriver` whose effect loop leaves an awaited store effect outstanding
    (for the trace's ``store_step``/``store_fail``) instead of performing it at once; effects
    that expect no answer it performs as the driver does.  ``store_step`` hands the
    outstanding effect back to the driver's loop (:meth:`run_outstanding`), which performs
    it and feeds the reply itself."""

    outstanding: StoreEffect | None = None
    #: the reply the driver's last performed awaited effect produced
    performed_reply: Event | None = None
    #: the next awaited effect is performed (by a store that fails, when ``"fail"``)
    _perform_next: str = ""

    def execute(self, effect: StoreEffect) -> Event | None:
        if not effect.replies:
            return super().execute(effect)
        if not self._perform_next:
            self.outstanding = effect
            return None
        healthy, fail = self.store, self._perform_next == "fail"
        self._perform_next = ""
        if fail:
            self.store = cast(Store, _FailingStore())
        try:
            self.performed_reply = super().execute(effect)
        finally:
            self.store = healthy
        return self.performed_reply

    def run_outstanding(self, *, fail: bool) -> list[HostEffect]:
        """Let the driver's loop perform the outstanding effect and feed its reply; under
        ``fail`` that one store call fails with a backend error and changes nothing."""
        effect, self.outstanding = self.outstanding, None
        assert effect is not None
        machine = self.machine
        self.machine = cast(TurnMachine, _ReissuingMachine(machine, effect))
        self._perform_next, self.performed_reply = ("fail" if fail else "perform"), None
        handled = len(self.log)
        try:
            return self.feed(_REISSUE)
        finally:
            self.machine, self._perform_next = machine, ""
            # the marker is no event of the machine's: the log keeps what the machine handled
            if len(self.log) > handled and self.log[handled][0] is _REISSUE:
                del self.log[handled]


class MachineAdapter:
    """Runs machine-trace actions against our turn machines and a fresh store."""

    def __init__(
        self,
        store_factory: StoreFactory = memory_store_factory,
        machine_class: type[TurnMachine] = TurnMachine,
        *,
        check_reads: bool = False,
    ) -> None:
        self._env = KernelAdapter(store_factory, check_reads=check_reads)
        #: tests swap in deliberately broken machines to see replay catch them
        self._machine_class = machine_class
        self._drivers: list[_TraceDriver | None] = []
        #: per owner, when the store granted or last renewed the lease its machine holds
        self._granted_at: list[int] = []
        #: per owner, the clock its driver reads for the renewal decision
        self._timers: dict[int, _TimerClock] = {}
        self._session_turns = 0
        self._bounds: dict[str, int] = {}

    # -- lifecycle ------------------------------------------------------------------------

    def reset(self, bounds: Mapping[str, int]) -> None:
        self._env.reset(bounds)
        self._bounds = {k: int(v) for k, v in bounds.items()}
        owners = len(self._env.world.owners)
        self._drivers = [self._new_driver(o) for o in range(owners)]
        self._granted_at = [0] * owners
        self._session_turns = 0

    def close(self) -> None:
        self._env.close()
        self._drivers, self._granted_at = [], []

    def _new_driver(self, o: int) -> _TraceDriver:
        world = self._env.world
        owner = identity(o, world.owners[o].incarnation)
        self._timers[o] = timer = _TimerClock(world.clock)
        max_inputs, max_batches = self._bounds.get("inputs", 2), self._bounds.get("batches", 2)
        timings = LeaseTimings.from_ttl(TTL_MS)
        driver = _TraceDriver(
            world.store,
            SESSION,
            owner,
            clock=timer,
            liveness=world.processes,
            timings=timings,
            max_inputs=max_inputs,
            max_batches=max_batches,
        )
        if self._machine_class is not TurnMachine:
            driver.machine = self._machine_class(
                SESSION,
                owner,
                timings=timings,
                checkpoint=driver.machine.committed_checkpoint,
                max_inputs=max_inputs,
                max_batches=max_batches,
            )
        return driver

    def machine(self, o: int) -> TurnMachine | None:
        """Owner o's machine; None while o is crashed."""
        driver = self._drivers[o]
        return driver.machine if driver is not None else None

    # -- actions ---------------------------------------------------------------------------

    def apply(self, action: str, picks: Mapping[str, Any]) -> dict[str, Any]:
        """Run one action; return its outcome record (docs/machine-traces.md, "Outcome")."""
        if action in ENVIRONMENT_ACTIONS:
            return self._environment(action, picks)
        if action in HOST_ACTIONS:
            o, driver = self._live_owner(picks)
            return self._host_event(o, driver, self._host_event_for(action, o, driver, picks))
        if action == "host_timer":
            return self._host_timer(*self._live_owner(picks), picks)
        if action == "build_driver":
            return self._build_driver(picks)
        if action == "host_misfeed":
            return self._misfeed(*self._live_owner(picks), picks)
        if action == "open_driver":
            return self._open_driver(picks)
        if action == "store_step":
            return self._store_step(*self._live_owner(picks), fail=False)
        if action == "store_fail":
            return self._store_step(*self._live_owner(picks), fail=True)
        raise UnknownAction(f"unknown machine-trace action {action!r}")

    def _owner_index(self, picks: Mapping[str, Any]) -> int:
        value = picks.get("o")
        if isinstance(value, bool) or not isinstance(value, int):
            raise BadActionParams(f"parameter 'o' must be an integer, got {value!r}")
        if not 0 <= value < len(self._drivers):
            raise BadActionParams(
                f"parameter 'o'={value} is out of range 0..{len(self._drivers) - 1}"
            )
        return value

    def _live_owner(self, picks: Mapping[str, Any]) -> tuple[int, _TraceDriver]:
        o = self._owner_index(picks)
        driver = self._drivers[o]
        if driver is None:
            raise ActionNotEnabled(f"owner {o} is crashed: it has no machine")
        return o, driver

    def _environment(self, action: str, picks: Mapping[str, Any]) -> dict[str, Any]:
        if action == "crash":
            o = self._live_owner(picks)[0]
            outcome = self._env.apply(action, picks)
            self._drivers[o] = None
            return outcome
        if action == "restart":
            o = self._owner_index(picks)
            if self._drivers[o] is not None:
                raise ActionNotEnabled(f"owner {o} is alive: only a crashed owner restarts")
            outcome = self._env.apply(action, picks)
            self._drivers[o] = self._new_driver(o)
            return outcome
        if action in ("enqueue_batch", "enqueue_input"):
            # every enqueue strictly later than the last, so enqueue order is time order
            self._env.world.clock.advance(1)
        return self._env.apply(action, picks)

    def _host_event_for(
        self, action: str, o: int, driver: TurnDriver, picks: Mapping[str, Any]
    ) -> Event:
        turn_index = self._turn_number(driver.machine)
        if action == "host_start":
            return Start(f"turn-{self._session_turns}")
        if action == "host_checkpoint":
            kind = picks.get("checkpoint")
            if kind not in ("after_work", "before_completion"):
                raise BadActionParams(
                    f"checkpoint must be after_work|before_completion, got {kind!r}"
                )
            return CheckpointReached(max(turn_index, 0), CheckpointKind(kind))
        if action == "host_finish":
            return TurnFinished(max(turn_index, 0))
        if action == "host_interrupt":
            return Interrupt()
        if action == "host_renew_due":
            return RenewDue()
        return Reset()

    def _host_event(self, o: int, driver: _TraceDriver, event: Event) -> dict[str, Any]:
        machine = driver.machine
        if not machine.accepts(type(event)):
            raise ActionNotEnabled(
                f"owner {o}'s machine in {machine.state.value} does not accept "
                f"{type(event).__name__}"
            )
        outcome = self._through_driver(o, driver, event, lambda: self._feed_host(driver, event))
        if isinstance(event, Start):
            self._session_turns += 1
        return outcome

    @staticmethod
    def _feed_host(driver: _TraceDriver, event: Event) -> list[HostEffect]:
        """Feed a host event through the driver's host helper for it."""
        match event:
            case Start():
                return driver.start(event.turn_id)
            case CheckpointReached():
                return driver.reach_checkpoint(event.turn_index, event.kind)
            case TurnFinished():
                return driver.finish_turn(event.turn_index)
            case Interrupt():
                return driver.interrupt()
            case Reset():
                return driver.reset()
        return driver.feed(event)

    def _host_timer(self, o: int, driver: _TraceDriver, picks: Mapping[str, Any]) -> dict[str, Any]:
        at = picks.get("at")
        if not isinstance(at, str) or at not in TIMER_OFFSETS_MS:
            raise BadActionParams(f"at must be early|due|late, got {at!r}")
        if driver.lease is None:
            raise ActionNotEnabled(f"owner {o}'s machine holds no lease: no renewal timer runs")
        # the driver reads the timer's instant from the clock it was built with; the store's
        # clock does not move
        timer = self._timers[o]
        timer.instant = self._granted_at[o] + TIMER_OFFSETS_MS[at]
        try:
            return self._through_driver(o, driver, RenewDue(), driver.renew_if_due)
        finally:
            timer.instant = None

    def _build_driver(self, picks: Mapping[str, Any]) -> dict[str, Any]:
        """Build a driver (owner 0's identity, the trace's store) with the named configuration
        and report what it got; the driver is dropped, so nothing changes."""
        name = picks.get("config")
        if not isinstance(name, str) or name not in DRIVER_CONFIGS:
            raise BadActionParams(
                f"config must be one of {', '.join(DRIVER_CONFIGS)}, got {name!r}"
            )
        if self._session_turns:
            raise ActionNotEnabled("build_driver is taken before the session's first turn")
        ttl, renew, max_inputs, max_batches = DRIVER_CONFIGS[name]
        limits: dict[str, Any] = {
            key: value
            for key, value in (("max_inputs", max_inputs), ("max_batches", max_batches))
            if value is not None
        }
        world = self._env.world
        try:
            timings = None
            if ttl is not None:
                timings = LeaseTimings.from_ttl(ttl) if renew is None else LeaseTimings(ttl, renew)
            owner = identity(0, world.owners[0].incarnation)
            driver = TurnDriver(world.store, SESSION, owner, timings=timings, **limits)
        except (LeaseTimingsError, MachineLimitsError) as error:
            return {"tag": "DriverRefused", "error": error.variant}
        machine = driver.machine
        return {
            "tag": "DriverBuilt",
            "ttl_ms": machine.timings.ttl_ms,
            "renew_interval_ms": driver.timings.renew_interval_ms,
            "max_inputs": machine.max_inputs,
            "max_batches": machine.max_batches,
        }

    def _open_driver(self, picks: Mapping[str, Any]) -> dict[str, Any]:
        """Open a driver over the trace's store for the named session id (owner 0's identity;
        the host names every argument) and report the checkpoint it starts from; the
        driver is dropped, so nothing changes."""
        name = picks.get("session")
        if not isinstance(name, str) or name not in DRIVER_SESSIONS:
            raise BadActionParams(f"session must be one of {', '.join(DRIVER_SESSIONS)}")
        world = self._env.world
        driver = TurnDriver(
            store=world.store,
            session_id=DRIVER_SESSIONS[name],
            owner=identity(0, world.owners[0].incarnation),
        )
        checkpoint = driver.machine.committed_checkpoint
        return {"tag": "DriverOpened", "committed_checkpoint": checkpoint.turn_index}

    def _misfeed(self, o: int, driver: _TraceDriver, picks: Mapping[str, Any]) -> dict[str, Any]:
        """Feed o's machine, through its driver, a reply the store did not give (see
        :meth:`_misfed_reply`); the machine must refuse it and change nothing."""
        kind = picks.get("reply")
        if not isinstance(kind, str) or kind not in MISFEEDS:
            raise BadActionParams(f"reply must be one of {', '.join(MISFEEDS)}, got {kind!r}")
        effect = driver.outstanding
        if effect is None:
            raise ActionNotEnabled(f"owner {o}'s machine has no store operation outstanding")
        reply = self._misfed_reply(driver, effect, kind)
        accepts = driver.machine.accepts(type(reply))
        handled = len(driver.log)
        try:
            driver.feed(reply)
        except TurnMachineError:
            return {"tag": "ReplyRefused", "reply": type(reply).__name__, "accepts": accepts}
        first, effects = driver.log[handled]  # the machine took it: report what it did
        return self._outcome(first, list(effects))

    @staticmethod
    def _misfed_reply(driver: _TraceDriver, effect: StoreEffect, kind: str) -> Event:
        """The reply ``host_misfeed(kind)`` feeds while ``effect`` is outstanding
        (docs/machine-traces.md): a backend-failure reply of the other kind of call, or the
        awaited reply carrying a lease or claim of another session id or lease generation."""
        if kind == "unawaited":
            error = BackendFailure("a reply the store never gave (host_misfeed)")
            return CommitFailed(error) if StoreFailed in effect.replies else StoreFailed(error)
        own = driver.session_id
        session = {"session_before": own[:-1], "session_after": f"{own}-other"}.get(kind, own)
        held = driver.lease
        if isinstance(effect, AcquireLease | ReclaimLease) and session != own:
            token = f"misfed-lease-{driver.owner.owner_id}"
            lease = SessionExecutionLease(session, driver.owner, token, 1, 0, TTL_MS)
            return LeaseAcquired(lease)
        if held is None:
            raise ActionNotEnabled(f"{type(effect).__name__}'s reply carries no {kind}")
        generation = held.fencing_token + {"generation_below": -1, "generation_above": 1}.get(
            kind, 0
        )
        if isinstance(effect, RenewLease):
            return LeaseRenewed(replace(held, session_id=session, fencing_token=generation))
        work = QueuedWorkClaim(
            session, "misfed-claim", driver.owner, held.lease_token, 1, generation, ()
        )
        inputs = TurnInputClaim(
            session, "misfed-claim", driver.owner, held.lease_token, 1, generation,
            NextTurnMode(), (),
        )  # fmt: skip
        match effect.replies[0].__name__:
            case "CommandClaimed":
                return CommandClaimed(work)
            case "InputsClaimed":
                return InputsClaimed(inputs)
            case "TurnWorkClaimed":
                return TurnWorkClaimed(work)
            case "CheckpointWorkClaimed":
                # the foreign claim in one position only: the other is checked too
                if session != own:
                    return CheckpointWorkClaimed(inputs, None)
                return CheckpointWorkClaimed(None, work)
        raise ActionNotEnabled(f"{type(effect).__name__}'s reply carries no {kind}")

    def _store_step(self, o: int, driver: _TraceDriver, *, fail: bool) -> dict[str, Any]:
        effect = driver.outstanding
        if effect is None:
            raise ActionNotEnabled(f"owner {o}'s machine has no store operation outstanding")
        outcome = self._through_driver(
            o, driver, _REISSUE, lambda: driver.run_outstanding(fail=fail)
        )
        reply = driver.performed_reply
        if reply is None:
            raise AssertionError(f"{type(effect).__name__} expects an answer and got none")
        self._name_claims(reply)
        if isinstance(reply, LeaseAcquired | LeaseRenewed):
            self._granted_at[o] = self._env.world.clock.now_ms()
        return outcome

    def _through_driver(
        self,
        o: int,
        driver: _TraceDriver,
        event: Event,
        run: Callable[[], list[HostEffect]],
    ) -> dict[str, Any]:
        """Run the driver's loop; the outcome is what its log says the machine handled
        (``NotDue`` when the driver fed nothing: its timer found no renewal due)."""
        handled = len(driver.log)
        try:
            run()
        except TurnMachineError as error:
            raise ActionNotEnabled(f"owner {o}'s machine rejected the event: {error}") from None
        if self._env.check_reads:  # the cross-check also compares each effect's kind
            for _, emitted in driver.log[handled:]:
                for effect in emitted:
                    check_effect_kind(effect)
        if len(driver.log) == handled:
            return {"tag": "NotDue" if isinstance(event, RenewDue) else "", "effects": []}
        first, effects = driver.log[handled]
        return self._outcome(first, list(effects))

    def _name_claims(self, reply: Event) -> None:
        """Give the claims a reply carries their abstract ids, so rows project by name."""
        claims: tuple[QueuedWorkClaim | TurnInputClaim | None, ...] = ()
        if isinstance(reply, CommandClaimed | InputsClaimed | TurnWorkClaimed):
            claims = (reply.claim,)
        elif isinstance(reply, CheckpointWorkClaimed):
            claims = (reply.inputs, reply.work)
        for claim in claims:
            if isinstance(claim, QueuedWorkClaim):
                name_queue_claim(self._env.world, claim)
            elif isinstance(claim, TurnInputClaim):
                name_input_claim(self._env.world, claim)

    @staticmethod
    def _outcome(event: Event, effects: list[Effect]) -> dict[str, Any]:
        return {"tag": type(event).__name__, "effects": [type(e).__name__ for e in effects]}

    @staticmethod
    def _turn_number(machine: TurnMachine) -> int:
        if machine.turn_id is None:
            return -1
        return int(machine.turn_id.removeprefix("turn-"))

    # -- projection ------------------------------------------------------------------------

    def observe(self) -> dict[str, Any]:
        """The state variables of docs/machine-traces.md ("State variables")."""
        state = self._env.observe_store()
        owners = self._env.world.owners
        state["owner_alive"] = {o: memory.alive for o, memory in enumerate(owners)}
        state["owner_inc"] = {o: memory.incarnation for o, memory in enumerate(owners)}
        fence, phase, awaiting, turn, interrupted, qclaims, iclaims, outcome, committed = (
            {}, {}, {}, {}, {}, {}, {}, {}, {}
        )  # fmt: skip
        names = self._env.world.claim_names
        for o in range(len(owners)):
            driver = self._drivers[o]
            machine = (
                driver.machine
                if driver is not None
                else TurnMachine(SESSION, identity(o, owners[o].incarnation))
            )
            lease = driver.lease if driver is not None else None  # the lease the machine holds
            fence[o] = lease.fencing_token if lease is not None else 0
            # a live owner's machine is read through its driver's host-facing properties
            phase[o] = (driver.state if driver is not None else machine.state).value
            awaiting[o] = machine.awaiting.__name__ if machine.awaiting is not None else ""
            turn[o] = self._turn_number(machine)
            interrupted[o] = machine.interrupted
            command = (machine.command_claim,) if machine.command_claim is not None else ()
            qclaims[o] = sorted(
                names.get(c.claim_id, "") for c in (*command, *machine.queue_claims)
            )
            iclaims[o] = sorted(names.get(c.claim_id, "") for c in machine.input_claims)
            last = driver.last_outcome if driver is not None else machine.last_outcome
            outcome[o] = last.value if last is not None else ""
            committed[o] = machine.committed_checkpoint.turn_index
        state.update(
            owner_fence=fence,
            machine_phase=phase,
            machine_awaiting=awaiting,
            machine_turn=turn,
            machine_interrupted=interrupted,
            machine_qclaims=qclaims,
            machine_iclaims=iclaims,
            machine_outcome=outcome,
            machine_committed_checkpoint=committed,
            session_turns=self._session_turns,
        )
        return state


class KernelSystems(KernelAdapter):
    """Our kernel for both systems on one kind of store: store traces through the
    KernelAdapter it is, machine traces through a :class:`MachineAdapter`.

    :func:`~lashspec.conformance.replay.replay_trace` calls :meth:`reset_system` with the
    trace's system; a plain :meth:`reset` means a store trace.
    """

    def __init__(
        self, store_factory: StoreFactory = memory_store_factory, *, check_reads: bool = False
    ) -> None:
        super().__init__(store_factory, check_reads=check_reads)
        self._machines = MachineAdapter(store_factory, check_reads=check_reads)
        self._system = "store"

    def reset_system(self, bounds: Mapping[str, int], system: str) -> None:
        if system not in SYSTEMS:
            raise UnsupportedSystem(
                f"system {system!r} is not served; expected one of {', '.join(SYSTEMS)}"
            )
        self.close()
        if system == "machine":
            self._machines.reset(bounds)
        else:
            super().reset(bounds)
        self._system = system

    def reset(self, bounds: Mapping[str, int]) -> None:
        self.reset_system(bounds, "store")

    def apply(self, action: str, picks: Mapping[str, Any]) -> dict[str, Any]:
        if self._system == "machine":
            return self._machines.apply(action, picks)
        return super().apply(action, picks)

    def observe(self) -> dict[str, Any]:
        if self._system == "machine":
            return self._machines.observe()
        return super().observe()

    def close(self) -> None:
        super().close()
        self._machines.close()
