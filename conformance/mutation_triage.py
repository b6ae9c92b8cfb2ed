"""Triage of the kernel mutants that survive the conformance suite.

Every surviving mutant of ``python -m lashspec.conformance.mutation`` is explained here, keyed
by what it changes rather than where (line numbers drift with every edit): the kernel file,
the function's qualified name, the mutation operator, the original snippet and the mutated
snippet (snippets are ``ast.unparse`` text with whitespace collapsed) and, where one function
holds identical snippets with different explanations, the occurrence (1 for the first from
the top of the function, 2 for the next...).  ``"*"`` in the operator and snippet fields
matches anything; such whole-function entries are reserved for functions the trace
vocabulary never calls.  ``tests/conformance/test_mutation.py`` fails on
an entry that no longer matches any mutant, so the table cannot go stale silently.

Categories:

* ``equivalent`` -- no behaviour observable through the store API changes;
* ``outside`` -- the change is observable, but only outside the abstract system the traces
  cover (see "Abstracted away" in :mod:`lashspec.model.kernel_model`); the unit tests under
  ``tests/`` are the net for these;
* ``gap`` -- the abstract system could observe the change but no generated trace does.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

ANY = "*"


class Category(StrEnum):
    EQUIVALENT = "equivalent"
    OUTSIDE = "outside"
    GAP = "gap"


@dataclass(frozen=True, slots=True)
class TriageKey:
    """Which mutants an entry explains; ``ANY`` fields match every value."""

    file: str
    function: str
    operator: str = ANY
    original: str = ANY
    mutated: str = ANY
    occurrence: int = 0  # 0: every occurrence; n: only the n-th identical mutant in the function

    def matches(
        self,
        file: str,
        function: str,
        operator: str,
        original: str,
        mutated: str,
        occurrence: int,
    ) -> bool:
        return (
            self.file == file
            and self.function == function
            and self.operator in (ANY, operator)
            and self.original in (ANY, original)
            and self.mutated in (ANY, mutated)
            and self.occurrence in (0, occurrence)
        )


@dataclass(frozen=True, slots=True)
class Triage:
    category: Category
    why: str


EQUIVALENT, OUTSIDE, GAP = Category.EQUIVALENT, Category.OUTSIDE, Category.GAP

# Shared explanations: several mutants have one reason.

_DIAGNOSTIC_READ = Triage(
    OUTSIDE,
    (
        "a read the trace projection does not use (the adapter observes through "
        "inspect_session); the persistence and bad-input tests read through it"
    ),
)

_VALIDATION = Triage(
    OUTSIDE,
    (
        "argument validation: the vocabulary makes only well-formed calls; "
        "tests/test_bad_inputs.py is the net for rejections"
    ),
)
_WIRE = Triage(
    OUTSIDE,
    (
        "wire strings: the adapter passes enum members, never strings or unknown values; "
        "tests/test_bad_inputs.py is the net"
    ),
)
_CAPS = Triage(
    OUTSIDE,
    (
        "caps never bind in the abstract system (max_batches/max_inputs equal the slot counts; "
        "with one batch slot the only batch is the command)"
    ),
)
_MAX0 = Triage(
    OUTSIDE,
    (
        "max == 0 is a cap value the vocabulary never passes; only it decides whether the fence "
        "is checked first"
    ),
)
_ZERO_EARLY = Triage(
    EQUIVALENT,
    (
        "the engine returns before this point when max is 0 or nothing is claimable, so the "
        "changed branch cannot be taken"
    ),
)
_ONE_JOIN = Triage(
    OUTSIDE,
    (
        "the catalogue has a single join batch (b2, the last slot), so a join run never has a "
        "follower; multi-batch runs are unit-tested"
    ),
)
_LAZY = Triage(
    OUTSIDE,
    (
        "how far the lazy classification reads shows only with a second join batch or a corrupt "
        "row behind a command, neither in the catalogue"
    ),
)
_ONE_ROW_QUEUE = Triage(
    OUTSIDE,
    (
        "queue claims hold one row with the catalogue (one join batch), so the head is also the "
        "last row"
    ),
)
_CORRUPT = Triage(
    OUTSIDE,
    (
        "only stored rows with mixed or empty payloads (another implementation's data) reach it; "
        "unit tests cover BackendFailure"
    ),
)
_CHECKPOINT = Triage(
    OUTSIDE,
    (
        "checkpoint contents are abstracted (traces commit an empty state); "
        "tests/test_bad_inputs.py covers non-JSON state"
    ),
)
_TIME = Triage(
    OUTSIDE,
    (
        "time is abstract: expire lapses any live lease, so how far a deadline moves is "
        "invisible; unit tests cover renew and re-entry"
    ),
)
_SESSIONS = Triage(
    OUTSIDE,
    "sessions other than session-0 are abstracted",
)
_TURN_STAMPS = Triage(
    OUTSIDE,
    "turn-commit stamps and their replay are abstracted",
)
_OUTBOX = Triage(
    OUTSIDE,
    "outbox batches (enqueued_queue_batches) are abstracted",
)
_HEAD_CAS = Triage(
    OUTSIDE,
    "head CAS is abstracted (expected_head_revision is never set)",
)
_DIAGNOSTICS = Triage(
    OUTSIDE,
    "AlreadyClaimed diagnostics are payload; traces record cancel outcome tags only",
)
_SOURCE_KEY_TARGET = Triage(
    OUTSIDE,
    "the vocabulary cancels by input id; source-key targets are abstracted",
)
_STALE_TOKEN = Triage(
    OUTSIDE,
    (
        "claim ids are unique, so only a stale or forged claim token tells or from and; the "
        "vocabulary's one stale token is commit_stale's queue completion"
    ),
)
_AVAILABLE_AT = Triage(
    OUTSIDE,
    "available_at is abstracted (always 0, so every row is ready)",
)
_NO_FENCE = Triage(
    OUTSIDE,
    (
        "fenced actions are enabled only while the owner holds a fence; tests/test_bad_inputs.py "
        "covers a missing fence"
    ),
)
_NEVER_LEASED = Triage(
    OUTSIDE,
    (
        "a fence exists only after an acquire wrote the lease row; tests/test_bad_inputs.py "
        "covers a session that never had a lease"
    ),
)
_OWN_OLD_FENCE = Triage(
    OUTSIDE,
    (
        "an owner never keeps an older fence of its own incarnation (acquire replaces it); unit "
        "tests cover stale same-owner fences"
    ),
)
_RECLAIM_EMPTY = Triage(
    OUTSIDE,
    (
        "reclaim needs an observed generation, so the vocabulary never reclaims a session without "
        "a lease row"
    ),
)
_CLOSE = Triage(
    OUTSIDE,
    "closing is backend plumbing (a no-op in memory), not an abstract action",
)
_CALLER_IDS = Triage(
    OUTSIDE,
    "caller-supplied input ids are abstracted (the kernel names inputs)",
)
_COUNTERS = Triage(
    OUTSIDE,
    "read/write transaction counters are instrumentation (transaction_counts), not store state",
)
_ROLLBACK = Triage(
    EQUIVALENT,
    (
        "the engine validates before it writes, so the undo snapshot never has anything to undo "
        "but the sequence counter, whose values are opaque"
    ),
)
_ONE_ELEMENT = Triage(
    EQUIVALENT,
    "the engine passes a one-element list, so [0] and [-1] are the same row",
)
_COMPARED_TO_ZERO = Triage(
    EQUIVALENT,
    "the engine only compares the result with 0",
)
_UNREACHABLE_RULE = Triage(
    EQUIVALENT,
    "the engine never calls the rule with no candidates or max 0, so this branch is dead",
)
_TABLE_ASSERT = Triage(
    EQUIVALENT,
    "every caller uses a transition in the table; the raise only guards against kernel bugs",
)
_OWNER_TOKEN = Triage(
    EQUIVALENT,
    "owner and lease token are written and cleared together, so one is None iff the other is",
)
_MESSAGE = Triage(
    OUTSIDE,
    (
        "the lease token embeds owner and incarnation, so the token check raises the same error; "
        "only a forged fence (another owner, the row's token) tells, as the unit tests do"
    ),
)
_TOKEN_GEN = Triage(
    OUTSIDE,
    (
        "the lease token embeds the generation, so only a forged fence (the row's token, another "
        "generation) reaches this check; the unit tests forge one"
    ),
)
_RELEASED_TIMES = Triage(
    OUTSIDE,
    (
        "a released row is never live whatever its timestamps; only raw row inspection (not in "
        "the abstract state) sees them"
    ),
)
_NO_CANDIDATES = Triage(
    EQUIVALENT,
    "with no candidates the prefix rule returns 0 anyway",
)
_LEN_ONE = Triage(
    EQUIVALENT,
    "classified has exactly one element where it is read, so [0] and [-1] agree",
)
_ONE_TARGET = Triage(
    EQUIVALENT,
    "a single target yields a single result",
)
_SEQ = Triage(
    EQUIVALENT,
    "sequence numbers are opaque ids; only their order is observable and it is kept",
)
_HEAD_CAS_EQ = Triage(
    OUTSIDE,
    "head CAS is abstracted: with expected_head_revision unset the condition is false either way",
)

TRIAGE: dict[TriageKey, Triage] = {
    # -- kernel/rules.py -----------------------------------------------------------------------
    TriageKey("kernel/rules.py", "exact_selection_is_valid"): Triage(
        OUTSIDE,
        "exact-by-ids claims are abstracted",
    ),
    TriageKey(
        "kernel/rules.py",
        "select_leading_session_command",
        "constant",
        "candidates[0]",
        "candidates[-1]",
    ): _ONE_ELEMENT,
    TriageKey(
        "kernel/rules.py",
        "select_leading_session_command",
        "constant",
        "return 1",
        "return 2",
    ): _COMPARED_TO_ZERO,
    TriageKey(
        "kernel/rules.py",
        "select_turn_work_claim_prefix",
        "boolop",
        "max_batches <= 0 or not candidates",
        "max_batches <= 0 and (not candidates)",
    ): _ZERO_EARLY,
    TriageKey(
        "kernel/rules.py",
        "select_turn_work_claim_prefix",
        "compare",
        "max_batches <= 0",
        "max_batches < 0",
    ): _ZERO_EARLY,
    TriageKey(
        "kernel/rules.py",
        "select_turn_work_claim_prefix",
        "constant",
        "max_batches <= 0",
        "max_batches <= 1",
    ): _CAPS,
    TriageKey(
        "kernel/rules.py",
        "select_turn_work_claim_prefix",
        "constant",
        "max_batches <= 0",
        "max_batches <= -1",
    ): _ZERO_EARLY,
    TriageKey(
        "kernel/rules.py",
        "select_turn_work_claim_prefix",
        "constant",
        "return 0",
        "return 1",
    ): _UNREACHABLE_RULE,
    TriageKey(
        "kernel/rules.py",
        "select_turn_work_claim_prefix",
        "constant",
        "return 0",
        "return -1",
    ): _UNREACHABLE_RULE,
    TriageKey(
        "kernel/rules.py",
        "select_turn_work_claim_prefix",
        "if_not",
        "head.slot_policy is SlotPolicy.EXCLUSIVE",
        "not head.slot_policy is SlotPolicy.EXCLUSIVE",
    ): _ONE_JOIN,
    TriageKey(
        "kernel/rules.py",
        "select_turn_work_claim_prefix",
        "compare",
        "head.slot_policy is SlotPolicy.EXCLUSIVE",
        "head.slot_policy is not SlotPolicy.EXCLUSIVE",
    ): _ONE_JOIN,
    TriageKey(
        "kernel/rules.py",
        "select_turn_work_claim_prefix",
        "constant",
        "taken = 1",
        "taken = 2",
    ): _ONE_JOIN,
    TriageKey(
        "kernel/rules.py",
        "select_turn_work_claim_prefix",
        "constant",
        "candidates[1:]",
        "candidates[2:]",
    ): _ONE_JOIN,
    TriageKey(
        "kernel/rules.py",
        "select_turn_work_claim_prefix",
        "constant",
        "candidates[1:]",
        "candidates[0:]",
    ): _ONE_JOIN,
    TriageKey(
        "kernel/rules.py",
        "select_turn_work_claim_prefix",
        "if_not",
        "taken >= max_batches",
        "not taken >= max_batches",
    ): _ONE_JOIN,
    TriageKey(
        "kernel/rules.py",
        "select_turn_work_claim_prefix",
        "compare",
        "taken >= max_batches",
        "taken > max_batches",
    ): _ONE_JOIN,
    TriageKey(
        "kernel/rules.py",
        "select_turn_work_claim_prefix",
        "if_not",
        (
            "follower.work_class is not QueuedWorkClass.TURN_WORK or follower.slot_policy is not "
            "SlotPolicy.JOIN or follower.deliv..."
        ),
        (
            "not (follower.work_class is not QueuedWorkClass.TURN_WORK or follower.slot_policy is "
            "not SlotPolicy.JOIN or follower...."
        ),
    ): _ONE_JOIN,
    TriageKey(
        "kernel/rules.py",
        "select_turn_work_claim_prefix",
        "boolop",
        (
            "follower.work_class is not QueuedWorkClass.TURN_WORK or follower.slot_policy is not "
            "SlotPolicy.JOIN or follower.deliv..."
        ),
        (
            "follower.work_class is not QueuedWorkClass.TURN_WORK and follower.slot_policy is not "
            "SlotPolicy.JOIN and (follower.de..."
        ),
    ): _ONE_JOIN,
    TriageKey(
        "kernel/rules.py",
        "select_turn_work_claim_prefix",
        "compare",
        "follower.work_class is not QueuedWorkClass.TURN_WORK",
        "follower.work_class is QueuedWorkClass.TURN_WORK",
    ): _ONE_JOIN,
    TriageKey(
        "kernel/rules.py",
        "select_turn_work_claim_prefix",
        "compare",
        "follower.slot_policy is not SlotPolicy.JOIN",
        "follower.slot_policy is SlotPolicy.JOIN",
    ): _ONE_JOIN,
    TriageKey(
        "kernel/rules.py",
        "select_turn_work_claim_prefix",
        "compare",
        "follower.delivery_policy is not head.delivery_policy",
        "follower.delivery_policy is head.delivery_policy",
    ): _ONE_JOIN,
    TriageKey(
        "kernel/rules.py",
        "select_turn_work_claim_prefix",
        "compare",
        "follower.merge_key != head.merge_key",
        "follower.merge_key == head.merge_key",
    ): _ONE_JOIN,
    TriageKey(
        "kernel/rules.py",
        "select_turn_work_claim_prefix",
        "add_one",
        "taken += 1",
        "taken += 0",
    ): _ONE_JOIN,
    TriageKey(
        "kernel/rules.py",
        "select_turn_work_claim_prefix",
        "constant",
        "taken += 1",
        "taken += 2",
    ): _ONE_JOIN,
    TriageKey(
        "kernel/rules.py",
        "next_input_state",
        "raise",
        (
            "raise AssertionError(f'turn input transition {trigger!r} from {state} is not in the "
            "table') from None"
        ),
        "pass",
    ): _TABLE_ASSERT,
    # -- kernel/engine.py ----------------------------------------------------------------------
    TriageKey("kernel/engine.py", "StoreEngine.load_session"): _DIAGNOSTIC_READ,
    TriageKey("kernel/engine.py", "StoreEngine.load_session.op"): _DIAGNOSTIC_READ,
    TriageKey("kernel/engine.py", "StoreEngine.inspect_lease_row"): _DIAGNOSTIC_READ,
    TriageKey("kernel/engine.py", "StoreEngine.load_session_execution_lease"): Triage(
        OUTSIDE,
        "not in the vocabulary: traces read the lease row itself",
    ),
    TriageKey("kernel/engine.py", "StoreEngine.load_session_execution_lease.op"): Triage(
        OUTSIDE,
        "not in the vocabulary: traces read the lease row itself",
    ),
    TriageKey("kernel/engine.py", "StoreEngine.session_fencing_token.op"): Triage(
        OUTSIDE,
        "not in the vocabulary: traces read the lease row itself",
    ),
    TriageKey("kernel/engine.py", "StoreEngine.claim_ready_queued_work_by_batch_ids"): Triage(
        OUTSIDE,
        "exact-by-ids claims are abstracted",
    ),
    TriageKey("kernel/engine.py", "StoreEngine.claim_ready_queued_work_by_batch_ids.op"): Triage(
        OUTSIDE,
        "exact-by-ids claims are abstracted",
    ),
    TriageKey("kernel/engine.py", "StoreEngine.list_pending_queued_work.op"): Triage(
        OUTSIDE,
        "listings are not in the vocabulary: traces inspect rows and claim columns",
    ),
    TriageKey("kernel/engine.py", "StoreEngine.list_pending_turn_inputs.op"): Triage(
        OUTSIDE,
        "listings are not in the vocabulary: traces inspect rows and claim columns",
    ),
    TriageKey("kernel/engine.py", "StoreEngine.get_pending_turn_input"): Triage(
        OUTSIDE,
        "not in the vocabulary: traces inspect rows directly",
    ),
    TriageKey("kernel/engine.py", "StoreEngine.get_pending_turn_input.op"): Triage(
        OUTSIDE,
        "not in the vocabulary: traces inspect rows directly",
    ),
    TriageKey("kernel/engine.py", "StoreEngine.claim_checkpoint_work"): Triage(
        OUTSIDE,
        "checkpoint-work claims are abstracted",
    ),
    TriageKey("kernel/engine.py", "StoreEngine.claim_checkpoint_work.probe"): Triage(
        OUTSIDE,
        "checkpoint-work claims are abstracted",
    ),
    TriageKey("kernel/engine.py", "StoreEngine.claim_checkpoint_work.op"): Triage(
        OUTSIDE,
        "checkpoint-work claims are abstracted",
    ),
    TriageKey(
        "kernel/engine.py",
        "_check_session_id",
        "boolop",
        "not isinstance(session_id, str) or not session_id.strip()",
        "not isinstance(session_id, str) and (not session_id.strip())",
    ): _VALIDATION,
    TriageKey(
        "kernel/engine.py",
        "_check_session_id",
        "raise",
        "raise InvalidRequest(f'{what} must be a non-empty string, got {session_id!r}')",
        "pass",
    ): _VALIDATION,
    TriageKey(
        "kernel/engine.py",
        "_check_non_negative",
        "boolop",
        "isinstance(value, bool) or not isinstance(value, int) or value < 0",
        "isinstance(value, bool) and (not isinstance(value, int)) and (value < 0)",
    ): _VALIDATION,
    TriageKey(
        "kernel/engine.py",
        "_check_non_negative",
        "constant",
        "value < 0",
        "value < -1",
    ): _VALIDATION,
    TriageKey(
        "kernel/engine.py",
        "_check_non_negative",
        "raise",
        "raise InvalidRequest(f'{what} must be an integer >= 0, got {value!r}')",
        "pass",
    ): _VALIDATION,
    TriageKey(
        "kernel/engine.py",
        "_candidate",
        "raise",
        (
            "raise BackendFailure(f'queued-work batch `{record.batch.batch_id}` has mixed or "
            "empty payload classes')"
        ),
        "pass",
    ): _CORRUPT,
    TriageKey(
        "kernel/engine.py",
        "_wire",
        "if_not",
        "isinstance(value, enum_type)",
        "not isinstance(value, enum_type)",
    ): _WIRE,
    TriageKey(
        "kernel/engine.py",
        "_wire",
        "if_not",
        "isinstance(value, str)",
        "not isinstance(value, str)",
    ): _WIRE,
    TriageKey(
        "kernel/engine.py",
        "_wire",
        "raise",
        "raise ValueError(value)",
        "pass",
    ): _WIRE,
    TriageKey(
        "kernel/engine.py",
        "_wire",
        "raise",
        (
            "raise InvalidRequest(f'unknown {enum_type.__name__} {value!r}; expected one of "
            "{allowed}') from None"
        ),
        "pass",
    ): _WIRE,
    TriageKey(
        "kernel/engine.py",
        "_plain_json_copy",
        "if_not",
        "value is None or isinstance(value, str | bool | int | float)",
        "not (value is None or isinstance(value, str | bool | int | float))",
    ): _CHECKPOINT,
    TriageKey(
        "kernel/engine.py",
        "_plain_json_copy",
        "boolop",
        "value is None or isinstance(value, str | bool | int | float)",
        "value is None and isinstance(value, str | bool | int | float)",
    ): _CHECKPOINT,
    TriageKey(
        "kernel/engine.py",
        "_plain_json_copy",
        "compare",
        "value is None",
        "value is not None",
    ): _CHECKPOINT,
    TriageKey(
        "kernel/engine.py",
        "_plain_json_copy",
        "if_not",
        "isinstance(value, list)",
        "not isinstance(value, list)",
    ): _CHECKPOINT,
    TriageKey(
        "kernel/engine.py",
        "_plain_json_copy",
        "if_not",
        "not isinstance(key, str)",
        "not not isinstance(key, str)",
    ): _CHECKPOINT,
    TriageKey(
        "kernel/engine.py",
        "_plain_json_copy",
        "not",
        "not isinstance(key, str)",
        "isinstance(key, str)",
    ): _CHECKPOINT,
    TriageKey(
        "kernel/engine.py",
        "_plain_json_copy",
        "raise",
        (
            "raise InvalidRequest(f'checkpoint {path} has the non-string key {key!r}; JSON "
            "objects need string keys')"
        ),
        "pass",
    ): _CHECKPOINT,
    TriageKey(
        "kernel/engine.py",
        "_plain_json_copy",
        "raise",
        (
            "raise InvalidRequest(f'checkpoint {path} holds a {type(value).__name__}, which is "
            "not plain JSON (use objects with st..."
        ),
        "pass",
    ): _CHECKPOINT,
    TriageKey(
        "kernel/engine.py",
        "StoreEngine.close",
        "call",
        "self._backend.close()",
        "pass",
    ): _CLOSE,
    TriageKey(
        "kernel/engine.py",
        "StoreEngine._validate_fence",
        "raise",
        "raise expired('no lease fence was presented')",
        "pass",
    ): _NO_FENCE,
    TriageKey(
        "kernel/engine.py",
        "StoreEngine._validate_fence",
        "raise",
        "raise expired(f'the fence belongs to session {fence.session_id!r}')",
        "pass",
    ): _SESSIONS,
    TriageKey(
        "kernel/engine.py",
        "StoreEngine._validate_fence",
        "raise",
        "raise expired('the session has never had a lease')",
        "pass",
    ): _NEVER_LEASED,
    TriageKey(
        "kernel/engine.py",
        "StoreEngine._validate_fence",
        "boolop",
        "row.owner is None or row.lease_token is None",
        "row.owner is None and row.lease_token is None",
    ): _OWNER_TOKEN,
    TriageKey(
        "kernel/engine.py",
        "StoreEngine._validate_fence",
        "raise",
        (
            "raise expired(f'the lease is held by "
            "{row.owner.owner_id!r}/{row.owner.incarnation_id!r}, not {fence.owner.owner_id!r..."
        ),
        "pass",
    ): _MESSAGE,
    TriageKey(
        "kernel/engine.py",
        "StoreEngine._validate_fence",
        "raise",
        "raise expired('the lease token does not match the live lease')",
        "pass",
    ): _OWN_OLD_FENCE,
    TriageKey(
        "kernel/engine.py",
        "StoreEngine._validate_fence",
        "raise",
        (
            "raise expired(f'fencing token {fence.fencing_token} is stale (live generation "
            "{row.fencing_token})')"
        ),
        "pass",
    ): _TOKEN_GEN,
    TriageKey(
        "kernel/engine.py",
        "StoreEngine.try_claim_session_execution_lease",
        "call",
        "_check_session_id(session_id)",
        "pass",
    ): _VALIDATION,
    TriageKey(
        "kernel/engine.py",
        "StoreEngine.try_claim_session_execution_lease",
        "call",
        "_check_non_negative(ttl_ms, 'ttl_ms')",
        "pass",
    ): _VALIDATION,
    TriageKey(
        "kernel/engine.py",
        "StoreEngine.try_claim_session_execution_lease.op",
        "call",
        "tx.put_lease(extended)",
        "pass",
    ): _TIME,
    TriageKey(
        "kernel/engine.py",
        "StoreEngine.reclaim_session_execution_lease",
        "call",
        "_check_session_id(session_id)",
        "pass",
    ): _VALIDATION,
    TriageKey(
        "kernel/engine.py",
        "StoreEngine.reclaim_session_execution_lease",
        "call",
        "_check_non_negative(ttl_ms, 'ttl_ms')",
        "pass",
    ): _VALIDATION,
    TriageKey(
        "kernel/engine.py",
        "StoreEngine.reclaim_session_execution_lease.op",
        "constant",
        "self._acquire(tx, session_id, claimant, 0, now, ttl_ms)",
        "self._acquire(tx, session_id, claimant, 1, now, ttl_ms)",
    ): _RECLAIM_EMPTY,
    TriageKey(
        "kernel/engine.py",
        "StoreEngine.reclaim_session_execution_lease.op",
        "constant",
        "self._acquire(tx, session_id, claimant, 0, now, ttl_ms)",
        "self._acquire(tx, session_id, claimant, -1, now, ttl_ms)",
    ): _RECLAIM_EMPTY,
    TriageKey(
        "kernel/engine.py",
        "StoreEngine.renew_session_execution_lease",
        "call",
        "_check_non_negative(ttl_ms, 'ttl_ms')",
        "pass",
    ): _VALIDATION,
    TriageKey(
        "kernel/engine.py",
        "StoreEngine.renew_session_execution_lease.op",
        "call",
        "tx.put_lease(renewed)",
        "pass",
    ): _TIME,
    TriageKey(
        "kernel/engine.py",
        "StoreEngine._release",
        "constant",
        "claimed_at_ms=0",
        "claimed_at_ms=1",
    ): _RELEASED_TIMES,
    TriageKey(
        "kernel/engine.py",
        "StoreEngine._release",
        "constant",
        "claimed_at_ms=0",
        "claimed_at_ms=-1",
    ): _RELEASED_TIMES,
    TriageKey(
        "kernel/engine.py",
        "StoreEngine._release",
        "constant",
        "expires_at_ms=0",
        "expires_at_ms=1",
    ): _RELEASED_TIMES,
    TriageKey(
        "kernel/engine.py",
        "StoreEngine._release",
        "constant",
        "expires_at_ms=0",
        "expires_at_ms=-1",
    ): _RELEASED_TIMES,
    TriageKey(
        "kernel/engine.py",
        "StoreEngine._check_draft",
        "call",
        "_check_session_id(draft.session_id, 'draft session id')",
        "pass",
    ): _VALIDATION,
    TriageKey(
        "kernel/engine.py",
        "StoreEngine._check_draft",
        "call",
        "_check_non_negative(draft.available_at_ms, 'available_at_ms')",
        "pass",
    ): _VALIDATION,
    TriageKey(
        "kernel/engine.py",
        "StoreEngine._check_draft",
        "if_not",
        "not draft.payloads",
        "not not draft.payloads",
    ): _VALIDATION,
    TriageKey(
        "kernel/engine.py",
        "StoreEngine._check_draft",
        "not",
        "not draft.payloads",
        "draft.payloads",
    ): _VALIDATION,
    TriageKey(
        "kernel/engine.py",
        "StoreEngine._check_draft",
        "raise",
        (
            "raise InvalidRequest(f'queued-work draft for session {draft.session_id!r} has "
            "{what}; a batch must hold one or more p..."
        ),
        "pass",
    ): _VALIDATION,
    TriageKey(
        "kernel/engine.py",
        "StoreEngine.enqueue_queued_work",
        "call",
        "self._check_draft(draft)",
        "pass",
    ): _VALIDATION,
    TriageKey(
        "kernel/engine.py",
        "StoreEngine._ready_claimable",
        "compare",
        "r.batch.available_at_ms <= now",
        "r.batch.available_at_ms < now",
    ): _AVAILABLE_AT,
    TriageKey(
        "kernel/engine.py",
        "StoreEngine._stamp_batches",
        "constant",
        "selected[0]",
        "selected[-1]",
    ): _ONE_ROW_QUEUE,
    TriageKey(
        "kernel/engine.py",
        "StoreEngine.claim_leading_ready_session_command",
        "call",
        "_check_session_id(session_id)",
        "pass",
    ): _VALIDATION,
    TriageKey(
        "kernel/engine.py",
        "StoreEngine._claim_turn_work",
        "boolop",
        "not candidates or max_batches == 0",
        "not candidates and max_batches == 0",
    ): _NO_CANDIDATES,
    TriageKey(
        "kernel/engine.py",
        "StoreEngine._claim_turn_work",
        "constant",
        "max_batches == 0",
        "max_batches == 1",
    ): _CAPS,
    TriageKey(
        "kernel/engine.py",
        "StoreEngine._claim_turn_work",
        "constant",
        "max_batches == 0",
        "max_batches == -1",
    ): _ZERO_EARLY,
    TriageKey(
        "kernel/engine.py",
        "StoreEngine._claim_turn_work",
        "if_not",
        "len(classified) == 1 and classified[0].work_class is not QueuedWorkClass.TURN_WORK",
        "not (len(classified) == 1 and classified[0].work_class is not QueuedWorkClass.TURN_WORK)",
    ): _LAZY,
    TriageKey(
        "kernel/engine.py",
        "StoreEngine._claim_turn_work",
        "boolop",
        "len(classified) == 1 and classified[0].work_class is not QueuedWorkClass.TURN_WORK",
        "len(classified) == 1 or classified[0].work_class is not QueuedWorkClass.TURN_WORK",
    ): _LAZY,
    TriageKey(
        "kernel/engine.py",
        "StoreEngine._claim_turn_work",
        "compare",
        "len(classified) == 1",
        "len(classified) != 1",
    ): _LAZY,
    TriageKey(
        "kernel/engine.py",
        "StoreEngine._claim_turn_work",
        "constant",
        "len(classified) == 1",
        "len(classified) == 2",
    ): _LAZY,
    TriageKey(
        "kernel/engine.py",
        "StoreEngine._claim_turn_work",
        "constant",
        "len(classified) == 1",
        "len(classified) == 0",
    ): _LAZY,
    TriageKey(
        "kernel/engine.py",
        "StoreEngine._claim_turn_work",
        "compare",
        "classified[0].work_class is not QueuedWorkClass.TURN_WORK",
        "classified[0].work_class is QueuedWorkClass.TURN_WORK",
    ): _LAZY,
    TriageKey(
        "kernel/engine.py",
        "StoreEngine._claim_turn_work",
        "constant",
        "classified[0]",
        "classified[-1]",
    ): _LEN_ONE,
    TriageKey(
        "kernel/engine.py",
        "StoreEngine.claim_ready_queued_work",
        "call",
        "_check_session_id(session_id)",
        "pass",
    ): _VALIDATION,
    TriageKey(
        "kernel/engine.py",
        "StoreEngine.claim_ready_queued_work",
        "call",
        "_check_non_negative(max_batches, 'max_batches')",
        "pass",
    ): _VALIDATION,
    TriageKey(
        "kernel/engine.py",
        "StoreEngine.claim_ready_queued_work",
        "constant",
        "max_batches == 0",
        "max_batches == -1",
    ): _MAX0,
    TriageKey(
        "kernel/engine.py",
        "StoreEngine.abandon_queued_work_claim.op",
        "boolop",
        "c.claim_id == claim.claim_id and c.claim_token == claim.lease_token",
        "c.claim_id == claim.claim_id or c.claim_token == claim.lease_token",
    ): _STALE_TOKEN,
    TriageKey(
        "kernel/engine.py",
        "StoreEngine.cancel_queued_work_batch",
        "call",
        "_check_session_id(session_id)",
        "pass",
    ): _VALIDATION,
    TriageKey(
        "kernel/engine.py",
        "StoreEngine.enqueue_pending_turn_input",
        "call",
        "_check_session_id(draft.input_id, 'caller-supplied input id')",
        "pass",
    ): _VALIDATION,
    TriageKey(
        "kernel/engine.py",
        "StoreEngine.enqueue_pending_turn_input",
        "raise",
        "raise InvalidRequest(f'unknown turn-input ingress {draft.ingress!r}')",
        "pass",
    ): _VALIDATION,
    TriageKey(
        "kernel/engine.py",
        "StoreEngine.enqueue_pending_turn_input.op",
        "raise",
        (
            "raise InvalidRequest(f'input id {input_id!r} is already used by another pending turn "
            "input')"
        ),
        "pass",
    ): _CALLER_IDS,
    TriageKey(
        "kernel/engine.py",
        "StoreEngine._selectable_inputs",
        "compare",
        "len(selected) >= max_inputs",
        "len(selected) > max_inputs",
    ): _CAPS,
    TriageKey(
        "kernel/engine.py",
        "StoreEngine.claim_next_turn_inputs",
        "call",
        "_check_session_id(session_id)",
        "pass",
    ): _VALIDATION,
    TriageKey(
        "kernel/engine.py",
        "StoreEngine.claim_next_turn_inputs",
        "call",
        "_check_non_negative(max_inputs, 'max_inputs')",
        "pass",
    ): _VALIDATION,
    TriageKey(
        "kernel/engine.py",
        "StoreEngine.claim_next_turn_inputs",
        "constant",
        "max_inputs == 0",
        "max_inputs == -1",
    ): _MAX0,
    TriageKey(
        "kernel/engine.py",
        "StoreEngine.claim_active_turn_inputs",
        "call",
        "_check_session_id(session_id)",
        "pass",
    ): _VALIDATION,
    TriageKey(
        "kernel/engine.py",
        "StoreEngine.claim_active_turn_inputs",
        "call",
        "_check_session_id(turn_id, 'turn id')",
        "pass",
    ): _VALIDATION,
    TriageKey(
        "kernel/engine.py",
        "StoreEngine.claim_active_turn_inputs",
        "call",
        "_check_non_negative(max_inputs, 'max_inputs')",
        "pass",
    ): _VALIDATION,
    TriageKey(
        "kernel/engine.py",
        "StoreEngine.claim_active_turn_inputs",
        "constant",
        "max_inputs == 0",
        "max_inputs == -1",
    ): _MAX0,
    TriageKey(
        "kernel/engine.py",
        "StoreEngine.abandon_turn_input_claim.op",
        "boolop",
        "c.claim_id == claim.claim_id and c.claim_token == claim.lease_token",
        "c.claim_id == claim.claim_id or c.claim_token == claim.lease_token",
    ): _STALE_TOKEN,
    TriageKey(
        "kernel/engine.py",
        "StoreEngine._cancel_row",
        "if_not",
        "c.claim_token is not None or row.state is TurnInputState.ACCEPTED",
        "not (c.claim_token is not None or row.state is TurnInputState.ACCEPTED)",
    ): _DIAGNOSTICS,
    TriageKey(
        "kernel/engine.py",
        "StoreEngine._cancel_row",
        "boolop",
        "c.claim_token is not None or row.state is TurnInputState.ACCEPTED",
        "c.claim_token is not None and row.state is TurnInputState.ACCEPTED",
    ): _DIAGNOSTICS,
    TriageKey(
        "kernel/engine.py",
        "StoreEngine._cancel_row",
        "compare",
        "c.claim_token is not None",
        "c.claim_token is None",
    ): _DIAGNOSTICS,
    TriageKey(
        "kernel/engine.py",
        "StoreEngine._cancel_row",
        "compare",
        "row.state is TurnInputState.ACCEPTED",
        "row.state is not TurnInputState.ACCEPTED",
    ): _DIAGNOSTICS,
    TriageKey(
        "kernel/engine.py",
        "StoreEngine._cancel_row",
        "if_not",
        "c.claim_token is not None",
        "not c.claim_token is not None",
    ): _DIAGNOSTICS,
    TriageKey(
        "kernel/engine.py",
        "StoreEngine._resolve",
        "return",
        "return tx.input_by_source_key(session_id, target.source_key)",
        "return None",
    ): _SOURCE_KEY_TARGET,
    TriageKey(
        "kernel/engine.py",
        "StoreEngine.cancel_pending_turn_inputs",
        "call",
        "_check_session_id(session_id)",
        "pass",
    ): _VALIDATION,
    TriageKey(
        "kernel/engine.py",
        "StoreEngine.cancel_pending_turn_input",
        "constant",
        "results[0]",
        "results[-1]",
    ): _ONE_TARGET,
    TriageKey(
        "kernel/engine.py",
        "StoreEngine.cancel_pending_turn_input_suffix",
        "call",
        "_check_session_id(session_id)",
        "pass",
    ): _VALIDATION,
    TriageKey(
        "kernel/engine.py",
        "StoreEngine.commit_runtime_state",
        "call",
        "_check_non_negative(commit.checkpoint.turn_index, 'checkpoint turn_index')",
        "pass",
    ): _VALIDATION,
    TriageKey(
        "kernel/engine.py",
        "StoreEngine.commit_runtime_state",
        "call",
        "self._check_draft(draft)",
        "pass",
    ): _OUTBOX,
    TriageKey(
        "kernel/engine.py",
        "StoreEngine.commit_runtime_state.op",
        "raise",
        "raise SessionBindingMismatch(head.session_id, session_id)",
        "pass",
    ): _SESSIONS,
    TriageKey(
        "kernel/engine.py",
        "StoreEngine.commit_runtime_state.op",
        "if_not",
        "draft.session_id != session_id",
        "not draft.session_id != session_id",
    ): _OUTBOX,
    TriageKey(
        "kernel/engine.py",
        "StoreEngine.commit_runtime_state.op",
        "compare",
        "draft.session_id != session_id",
        "draft.session_id == session_id",
    ): _OUTBOX,
    TriageKey(
        "kernel/engine.py",
        "StoreEngine.commit_runtime_state.op",
        "raise",
        "raise SessionBindingMismatch(session_id, draft.session_id)",
        "pass",
    ): _OUTBOX,
    TriageKey(
        "kernel/engine.py",
        "StoreEngine.commit_runtime_state.op",
        "if_not",
        "stamp.session_id != session_id",
        "not stamp.session_id != session_id",
    ): _TURN_STAMPS,
    TriageKey(
        "kernel/engine.py",
        "StoreEngine.commit_runtime_state.op",
        "compare",
        "stamp.session_id != session_id",
        "stamp.session_id == session_id",
    ): _TURN_STAMPS,
    TriageKey(
        "kernel/engine.py",
        "StoreEngine.commit_runtime_state.op",
        "raise",
        (
            "raise RuntimeTurnCommitConflict(stamp.session_id, stamp.turn_id, f'stamp is for "
            "another session than {session_id!r}')"
        ),
        "pass",
    ): _TURN_STAMPS,
    TriageKey(
        "kernel/engine.py",
        "StoreEngine.commit_runtime_state.op",
        "if_not",
        "recorded is not None",
        "not recorded is not None",
    ): _TURN_STAMPS,
    TriageKey(
        "kernel/engine.py",
        "StoreEngine.commit_runtime_state.op",
        "compare",
        "recorded is not None",
        "recorded is None",
    ): _TURN_STAMPS,
    TriageKey(
        "kernel/engine.py",
        "StoreEngine.commit_runtime_state.op",
        "if_not",
        "recorded.turn_commit_hash != stamp.turn_commit_hash",
        "not recorded.turn_commit_hash != stamp.turn_commit_hash",
    ): _TURN_STAMPS,
    TriageKey(
        "kernel/engine.py",
        "StoreEngine.commit_runtime_state.op",
        "compare",
        "recorded.turn_commit_hash != stamp.turn_commit_hash",
        "recorded.turn_commit_hash == stamp.turn_commit_hash",
    ): _TURN_STAMPS,
    TriageKey(
        "kernel/engine.py",
        "StoreEngine.commit_runtime_state.op",
        "raise",
        (
            "raise RuntimeTurnCommitConflict(session_id, stamp.turn_id, 'already committed with "
            "different content')"
        ),
        "pass",
    ): _TURN_STAMPS,
    TriageKey(
        "kernel/engine.py",
        "StoreEngine.commit_runtime_state.op",
        "if_not",
        "commit.release_session_execution_lease is not None",
        "not commit.release_session_execution_lease is not None",
    ): _TURN_STAMPS,
    TriageKey(
        "kernel/engine.py",
        "StoreEngine.commit_runtime_state.op",
        "compare",
        "commit.release_session_execution_lease is not None",
        "commit.release_session_execution_lease is None",
    ): _TURN_STAMPS,
    TriageKey(
        "kernel/engine.py",
        "StoreEngine.commit_runtime_state.op",
        "call",
        "self._release(tx, commit.release_session_execution_lease)",
        "pass",
    ): _TURN_STAMPS,
    TriageKey(
        "kernel/engine.py",
        "StoreEngine.commit_runtime_state.op",
        "compare",
        "expected != current",
        "expected == current",
    ): _HEAD_CAS_EQ,
    TriageKey(
        "kernel/engine.py",
        "StoreEngine.commit_runtime_state.op",
        "raise",
        "raise HeadRevisionConflict(expected, current)",
        "pass",
    ): _HEAD_CAS,
    TriageKey(
        "kernel/engine.py",
        "StoreEngine.commit_runtime_state.op",
        "boolop",
        (
            "r.claim.claim_id == input_completion.claim_id and r.claim.claim_token == "
            "input_completion.lease_token"
        ),
        (
            "r.claim.claim_id == input_completion.claim_id or r.claim.claim_token == "
            "input_completion.lease_token"
        ),
    ): _STALE_TOKEN,
    TriageKey(
        "kernel/engine.py",
        "StoreEngine.commit_runtime_state.op",
        "call",
        "tx.put_turn(TurnRecord(session_id, stamp.turn_id, stamp.turn_commit_hash, result))",
        "pass",
    ): _TURN_STAMPS,
    # -- kernel/memory.py ----------------------------------------------------------------------
    TriageKey("kernel/memory.py", "_MemoryTables.turn"): Triage(
        OUTSIDE,
        "turn-commit stamps and their replay are abstracted",
    ),
    TriageKey(
        "kernel/memory.py",
        "_MemoryTables.next_seq",
        "constant",
        "self._d.seq += 1",
        "self._d.seq += 2",
    ): _SEQ,
    TriageKey(
        "kernel/memory.py",
        "_MemoryBackend.__init__",
        "constant",
        "self.write_transactions = 0",
        "self.write_transactions = 1",
    ): _COUNTERS,
    TriageKey(
        "kernel/memory.py",
        "_MemoryBackend.__init__",
        "constant",
        "self.write_transactions = 0",
        "self.write_transactions = -1",
    ): _COUNTERS,
    TriageKey(
        "kernel/memory.py",
        "_MemoryBackend.__init__",
        "constant",
        "self.read_transactions = 0",
        "self.read_transactions = 1",
    ): _COUNTERS,
    TriageKey(
        "kernel/memory.py",
        "_MemoryBackend.__init__",
        "constant",
        "self.read_transactions = 0",
        "self.read_transactions = -1",
    ): _COUNTERS,
    TriageKey(
        "kernel/memory.py",
        "_MemoryTransaction.__enter__",
        "if_not",
        "self._write",
        "not self._write",
    ): Triage(
        OUTSIDE,
        (
            "swaps which counter counts and which transactions take the undo snapshot: the "
            "counters are instrumentation and the snapshot never has anything to undo"
        ),
    ),
    TriageKey(
        "kernel/memory.py",
        "_MemoryTransaction.__enter__",
        "add_one",
        "backend.write_transactions += 1",
        "backend.write_transactions += 0",
    ): _COUNTERS,
    TriageKey(
        "kernel/memory.py",
        "_MemoryTransaction.__enter__",
        "constant",
        "backend.write_transactions += 1",
        "backend.write_transactions += 2",
    ): _COUNTERS,
    TriageKey(
        "kernel/memory.py",
        "_MemoryTransaction.__enter__",
        "add_one",
        "backend.read_transactions += 1",
        "backend.read_transactions += 0",
    ): _COUNTERS,
    TriageKey(
        "kernel/memory.py",
        "_MemoryTransaction.__enter__",
        "constant",
        "backend.read_transactions += 1",
        "backend.read_transactions += 2",
    ): _COUNTERS,
    TriageKey(
        "kernel/memory.py",
        "_MemoryTransaction.__exit__",
        "compare",
        "self._before is not None",
        "self._before is None",
    ): _ROLLBACK,
    TriageKey(
        "kernel/memory.py",
        "_MemoryTransaction.__exit__",
        "call",
        "self._backend.lock.release()",
        "pass",
    ): Triage(
        OUTSIDE,
        (
            "the lock is re-entrant and the traces drive one thread; the tests with several "
            "threads (turn drivers, claim races) block on a lock never released"
        ),
    ),
}
