"""What the step remembers of one policy between calls: the learned churn, the sampled pod history the replay
chooser reads, when it rolled aws-node, the cadence, and which problems it has already reported (so each becomes
one Event, not one a minute). The caller keeps it and passes it back.

The status checkpoint (`PolicyMemory.to_checkpoint`) holds what must survive a restart: the churn tracker's
histograms at the top level (their own version), and beside them, each with a version of its own so an older
operator's checkpoint still loads, `rollouts` (the counted change times of the last day, for
rollout.maxPerDay) and `profile` (the daily and weekly demand profile, `warmpool.planner.profile`)."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from warmpool.api.v1alpha1 import Churn, parse_duration
from warmpool.planner import ChurnTracker
from warmpool.planner.profile import DemandProfile
from warmpool.planner.replay import ReplayPlanner

NODE_COUNT_SAMPLES = 120  # the scale-out detector looks back minutes, not hours
ROLLOUTS_VERSION = 1
MAX_ROLLOUTS_KEPT = 100  # rollout.maxPerDay is at most 96: more changes in a day never need remembering
DAY = 86400.0


@dataclass
class PolicyMemory:
    tracker: ChurnTracker
    churn: Churn  # the churn spec the tracker was built for; a change rebuilds it
    complete_since: float  # pod-start history is complete from here on (the observer's start)
    last_plan: float | None = None
    node_counts: deque[tuple[float, int]] = field(default_factory=lambda: deque(maxlen=NODE_COUNT_SAMPLES))
    reported: dict[str, str] = field(default_factory=dict)  # kind of Event -> the last message posted
    restarted_because: str | None = None  # why learning started over instead of resuming the checkpoint
    # Pod starts and stops of a sample of nodes: not in the checkpoint (a day of them would not fit the status),
    # so the replay chooser has its say a day after the operator starts.
    replay: ReplayPlanner = field(default_factory=ReplayPlanner)
    # When warmpool rolled aws-node, its first change left out (rollout.maxPerDay counts the ones after it).
    rollouts: list[float] = field(default_factory=list)
    # What the coming hours looked like the last time round, per instance type (checkpointed, so unlike the
    # replay log it is there right after a restart). Read-only for planners: `profile.expected(type, now,
    # now + cooldown)` (or `expected_for(types, ...)`) gives the busiest demand, IPs held, pods and starts per
    # node-hour of those hours, None until each of them has been seen; the step feeds it every tick.
    profile: DemandProfile = field(default_factory=lambda: DemandProfile(86400.0))

    def record_rollout(self, now: float) -> None:
        recent = [t for t in self.rollouts if now - DAY < t <= now]
        self.rollouts = [*recent[-(MAX_ROLLOUTS_KEPT - 1) :], now]

    def to_checkpoint(self) -> dict[str, Any]:
        """What the status keeps of this memory (JSON-safe; see the module doc)."""
        data = self.tracker.to_checkpoint()
        data["rollouts"] = {"version": ROLLOUTS_VERSION, "times": list(self.rollouts)}
        data["profile"] = self.profile.to_checkpoint()
        return data

    def report_once(self, kind: str, message: str | None) -> bool:
        """True when `message` differs from the last one of this kind (None clears it)."""
        if message is None:
            self.reported.pop(kind, None)
            return False
        if self.reported.get(kind) == message:
            return False
        self.reported[kind] = message
        return True


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def restore_tracker(checkpoint: Any, churn: Churn) -> tuple[ChurnTracker | None, str | None]:
    """The tracker a status checkpoint holds, or (None, why) when it cannot be trusted. The checkpoint is
    whatever the API server accepted (any JSON object), so every field is checked before use."""
    if not checkpoint:
        return None, None
    if not isinstance(checkpoint, Mapping):
        return None, f"status.checkpoint is a {type(checkpoint).__name__}, not an object"
    try:
        tracker = ChurnTracker.from_checkpoint(dict(checkpoint), churn)
    except (KeyError, TypeError, ValueError, AttributeError, OverflowError) as error:
        return None, f"status.checkpoint is unreadable ({type(error).__name__}: {error})"
    for name in ("started_at", "last_busy"):
        value = getattr(tracker, name)
        if value is not None and not _finite(value):
            return None, f"status.checkpoint has a bad {name}: {value!r}"
    for name in ("next_epoch", "last_density_epoch"):
        value = getattr(tracker, name)
        if value is not None and not isinstance(value, int):
            return None, f"status.checkpoint has a bad {name}: {value!r}"
    hists = (tracker.bursts, tracker.density, *tracker.demand.values())
    if not all(_finite(h.reference) and _finite(h.half_life) and h.half_life > 0 for h in hists):
        return None, "status.checkpoint has a histogram with a bad reference time or half-life"
    return tracker, None


def restore_rollouts(checkpoint: Any) -> tuple[list[float], str | None]:
    """The counted rollout times a checkpoint holds (none in one written before they were kept), or ([], why)."""
    if not isinstance(checkpoint, Mapping) or "rollouts" not in checkpoint:
        return [], None
    data = checkpoint["rollouts"]
    if not isinstance(data, Mapping) or data.get("version") != ROLLOUTS_VERSION:
        return [], f"status.checkpoint.rollouts is not a version {ROLLOUTS_VERSION} object"
    times = data.get("times")
    if not isinstance(times, list) or not all(_finite(t) for t in times) or len(times) > MAX_ROLLOUTS_KEPT:
        return [], f"status.checkpoint.rollouts.times is not a list of at most {MAX_ROLLOUTS_KEPT} times"
    return sorted(float(t) for t in times), None


def restore_profile(checkpoint: Any, half_life: float) -> tuple[DemandProfile, str | None]:
    """The demand profile a checkpoint holds (an empty one in a checkpoint written before profiles were kept),
    or (an empty one, why) when it cannot be trusted."""
    if not isinstance(checkpoint, Mapping) or "profile" not in checkpoint:
        return DemandProfile(half_life), None
    try:
        return DemandProfile.from_checkpoint(checkpoint["profile"], half_life), None
    except (ValueError, TypeError, OverflowError) as error:
        return DemandProfile(half_life), f"status.checkpoint.profile is unreadable ({error})"


def new_memory(
    status: Mapping[str, Any], churn: Churn, history_since: float, previous: PolicyMemory | None
) -> tuple[PolicyMemory, str | None]:
    """Memory for a policy seen for the first time since start (resumed from its checkpoint when it can be
    read; otherwise learning restarts and what was discarded is returned), or whose churn spec changed (fresh
    histograms; the pod history logged for the replay does not depend on the spec and is kept)."""
    checkpoint = status.get("checkpoint")
    tracker, problem = restore_tracker(checkpoint, churn) if previous is None else (None, None)
    memory = PolicyMemory(tracker=tracker or ChurnTracker(churn), churn=churn, complete_since=history_since)
    memory.restarted_because = problem
    half_life = parse_duration(churn.half_life)
    if previous is not None:
        # The profile's figures do not depend on the histograms: kept, fading with the new half-life.
        memory.profile = previous.profile
        memory.profile.half_life = half_life
        memory.last_plan, memory.node_counts, memory.reported, memory.replay, memory.rollouts = (
            previous.last_plan,
            previous.node_counts,
            previous.reported,
            previous.replay,
            previous.rollouts,
        )
        return memory, None
    # The rollout count survives a bad histogram checkpoint, and the other way round.
    memory.rollouts, rollouts_problem = restore_rollouts(checkpoint)
    memory.profile, profile_problem = restore_profile(checkpoint, half_life)
    problems = [f"{problem}: learning restarts from now"] if problem else []
    if rollouts_problem:
        problems.append(f"{rollouts_problem}: the day's rollout count starts over")
    if profile_problem:
        problems.append(f"{profile_problem}: the demand profile starts over")
    return memory, "; ".join(problems) or None
