"""Every effect the turn machine emits must describe itself as the machine model does.

The kernel's effect classes carry their kind as class attributes: a store effect or a host
notification, whether an answer is awaited (``replies``), which event answers a backend
failure, and the lease flags ``uses_lease``, ``releases_lease`` and ``acquires_lease``.  The
driver reads some of them at run time; hosts and ``docs/turn-machine.md`` (generated from the
rule table) read the rest.  A machine trace's outcome names the effects only, so a wrong flag
would pass every trace.  With the replay's cross-check on (``check_reads``), the machine
adapter compares each emitted effect's attributes with :data:`~lashspec.model.machine_model.
EFFECTS` (the table the model's phase-order rule is written with) and raises
:class:`EffectKindDisagrees`, which a replay reports as an error at that step.
"""

from __future__ import annotations

from ..kernel.machine import Effect, StoreEffect
from ..model.machine_model import EFFECTS


class EffectKindDisagrees(AssertionError):
    """An emitted effect's class attributes contradict the model's effect table."""


def check_effect_kind(effect: Effect | type[Effect]) -> None:
    """Raise :class:`EffectKindDisagrees` unless the kind of ``effect`` (an emitted effect or
    an effect class) is the model's."""
    effect_type: type[Effect] = effect if isinstance(effect, type) else type(effect)
    name = effect_type.__name__
    kind = EFFECTS.get(name)
    if kind is None:
        raise EffectKindDisagrees(f"{name}: the machine model has no such effect")
    replies = tuple(reply.__name__ for reply in effect_type.replies)
    is_store = issubclass(effect_type, StoreEffect)
    flags = (False, False, False)
    if issubclass(effect_type, StoreEffect):
        flags = (effect_type.uses_lease, effect_type.releases_lease, effect_type.acquires_lease)
    observed = {
        "store": is_store,
        "awaited": bool(replies),
        "uses_lease": flags[0],
        "releases_lease": flags[1],
        "acquires_lease": flags[2],
    }
    expected = {field: getattr(kind, field) for field in observed}
    wrong = [
        f"{f}={observed[f]} (model: {expected[f]})" for f in observed if observed[f] != expected[f]
    ]
    if kind.failure_reply and kind.failure_reply not in replies:
        wrong.append(f"replies {list(replies)} lack the failure reply {kind.failure_reply}")
    if wrong:
        raise EffectKindDisagrees(f"{name}: " + "; ".join(wrong))
