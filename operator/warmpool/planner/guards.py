"""Whether a recommendation is worth a rollout now. Pure: every input, the time included, is an argument.

Every env change restarts aws-node on every node, so the checks run from the most basic to the most specific
and the first that holds gives the reason (one label value per decision for metrics):
paused -> no_change -> dead_band -> rollout_in_progress -> cooldown / daily_limit (which a rescue may pass) ->
holds_same -> not_quiet -> dry_run -> apply.
dry_run comes last on purpose: it then means "would have applied now", which is what a dry run should report.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from warmpool.api.v1alpha1 import Rollout, Variable, parse_duration, summarize
from warmpool.ipamd.env import go_atoi


class GuardReason(StrEnum):
    """Why a policy step writes or holds: one label value per decision for metrics, and the Applied condition's
    reason in CamelCase. The guards here give the first ten; the rest depend on the live objects."""

    APPLY = "apply"
    PAUSED = "paused"
    NO_CHANGE = "no_change"
    DEAD_BAND = "dead_band"
    HOLDS_SAME = "holds_same"  # every node would hold the same IPs and prefixes: the change buys nothing
    ROLLOUT_IN_PROGRESS = "rollout_in_progress"
    COOLDOWN = "cooldown"
    DAILY_LIMIT = "daily_limit"  # rollout.maxPerDay rollouts in the last 24 h, and pods are not starving
    NOT_QUIET = "not_quiet"
    DRY_RUN = "dry_run"
    # Refusals decided by the operator from live inputs the pure guards do not see.
    CONFLICT = "conflict"
    FOREIGN_OWNER = "foreign_owner"
    VALUE_FROM = "value_from"
    INPUTS_UNKNOWN = "inputs_unknown"
    LEARNING = "learning"
    TARGET_INVALID = "target_invalid"
    TARGET_UNREADABLE = "target_unreadable"
    UNSAFE = "unsafe"

    @property
    def camel(self) -> str:
        return self.value.title().replace("_", "")


DAY = 86400.0

# Variables for which ipamd reads an absent entry as a value: writing that value changes nothing on a node,
# so it is not worth a rollout by itself.
_UNSET_MEANS = {Variable.WARM_IP_TARGET: 0, Variable.MINIMUM_IP_TARGET: 0}


@dataclass(frozen=True, slots=True)
class Decision:
    apply: bool
    values: dict[Variable, int]  # what would be written: every recommended (managed) variable, or nothing
    reason: GuardReason
    message: str


def current_values(env: Mapping[str, str], managed: Iterable[Variable]) -> dict[Variable, int]:
    """The managed variables as ipamd reads them from the DaemonSet (Go's `strconv.Atoi`: " 5", "1_0" or a value
    beyond int64 are not numbers). Absent or invalid entries (ipamd would use its default) are left out, so
    `decide` sees them as unset and writes them."""
    out: dict[Variable, int] = {}
    for v in managed:
        raw = env.get(v.value)
        value = go_atoi(raw) if raw is not None else None
        if value is not None and value >= 0:
            out[v] = value
    return out


def _differs(value: int, current: Mapping[Variable, int], v: Variable) -> bool:
    return current.get(v, _UNSET_MEANS.get(v)) != value


def beyond_dead_band(new: int, old: int | None, rollout: Rollout) -> bool:
    """A change is worth a rollout when it reaches both the absolute and the relative band. An unset value is
    always worth writing: ipamd would otherwise run on its defaults."""
    if old is None:
        return True
    delta = abs(new - old)
    return delta > 0 and delta >= rollout.dead_band and delta >= rollout.dead_band_ratio * abs(old)


def rollouts_within_day(rollouts: Iterable[float], now: float) -> list[float]:
    """The counted rollouts of the 24 hours before `now`, oldest first."""
    return sorted(t for t in rollouts if now - DAY < t <= now)


def decide(
    recommended: Mapping[Variable, int],
    current: Mapping[Variable, int],
    rollout: Rollout,
    *,
    now: float,
    last_applied_time: float | None,
    quiet_since: float | None,
    dry_run: bool = False,
    paused: bool = False,
    rollout_in_progress: bool = False,
    urgent: bool = False,
    rescue: Mapping[Variable, int] | None = None,
    rollouts: Sequence[float] = (),
    holds_same: Callable[[Mapping[Variable, int]], bool] | None = None,
) -> Decision:
    """`current` holds the managed variables as set on the DaemonSet (absent = unset; see `current_values`).
    `quiet_since` is when churn last became low (None while it is high). `urgent` (the plan reports subnet
    pressure) lets a change that only lowers values skip the dead band and the cooldown, never the other
    guards: running a subnet dry blocks pods cluster-wide, while a rollout mid-burst hurts as much as ever.
    `rescue` (the plan reports that the targets in effect leave the measured demand uncovered, so pods wait for
    IPs now, and gives the values that cover it: WARM_IP_TARGET raised next to the minimum in effect, or the
    pool left to whole ENIs) lets those values skip the cooldown, never the dead band or the other guards: each
    hour at the old values makes pods wait, and a rescue only ever adds spare IPs up to the instance limits, so
    it cannot flap. The full recommendation waits for the cooldown.
    `rollouts`: when the counted changes were made (the first change warmpool ever makes is not counted); once
    `rollout.maxPerDay` of them fall within the last 24 hours, only a rescue or a subnet-pressure relief may
    roll aws-node again (pods wait, or are about to when the subnet runs dry).
    `holds_same(values)`: True when writing `values` would leave every node holding the same IPs and prefixes
    (prefix mode rounds to /28s; see `warmpool.planner.holding`): such a change is not worth a rollout, from
    whichever source the value came (histograms, replay, rescue)."""
    values = dict(recommended)
    changed = {v: n for v, n in values.items() if _differs(n, current, v)}
    relief = urgent and all(v in current and n < current[v] for v, n in changed.items())
    rescue_changes = {v: n for v, n in (rescue or {}).items() if _differs(n, current, v)}
    rescue_ok = (
        bool(rescue_changes)
        and all(v in current for v in rescue_changes)
        and any(beyond_dead_band(n, current[v], rollout) for v, n in rescue_changes.items())
    )

    def hold(reason: GuardReason, message: str) -> Decision:
        return Decision(False, values if reason is GuardReason.DRY_RUN else {}, reason, message)

    if paused:
        return hold(GuardReason.PAUSED, "the policy is paused")
    if not changed:
        return hold(GuardReason.NO_CHANGE, "the DaemonSet already has the recommended values")
    worth = [v for v, n in changed.items() if beyond_dead_band(n, current.get(v), rollout)]
    if not worth and not relief and not rescue_ok:
        return hold(
            GuardReason.DEAD_BAND,
            f"changes to {summarize(changed)} are within the dead band "
            f"({rollout.dead_band} or {rollout.dead_band_ratio:.0%})",
        )
    if rollout_in_progress:
        return hold(GuardReason.ROLLOUT_IN_PROGRESS, "an aws-node rollout is still in progress")
    cooldown = parse_duration(rollout.cooldown)
    in_cooldown = last_applied_time is not None and now - last_applied_time < cooldown
    recent = rollouts_within_day(rollouts, now)
    limited = len(recent) >= rollout.max_per_day and not relief
    if (in_cooldown and not relief) or (not worth and not relief) or limited:
        # Only the rescue may be written now: within the cooldown, past the day's rollouts, or while the
        # recommendation itself stays within the dead band.
        if not rescue_ok or rescue is None:
            if in_cooldown and not relief:
                assert last_applied_time is not None
                return hold(
                    GuardReason.COOLDOWN,
                    f"last change {now - last_applied_time:.0f}s ago, cooldown {rollout.cooldown}",
                )
            return hold(
                GuardReason.DAILY_LIMIT,
                f"{len(recent)} rollouts in the last 24h (rollout.maxPerDay {rollout.max_per_day}): the next may "
                f"come in {recent[-rollout.max_per_day] + DAY - now:.0f}s, sooner only if pods starve",
            )
        values = {v: n for v, n in rescue.items() if v in current or v in rescue_changes}
    if holds_same is not None and holds_same(values):
        return hold(GuardReason.HOLDS_SAME, f"{summarize(values)} would leave every node holding the same IPs")
    quiet_period = parse_duration(rollout.quiet_period)
    if quiet_since is None:
        return hold(GuardReason.NOT_QUIET, "churn is high now")
    if now - quiet_since < quiet_period:
        return hold(
            GuardReason.NOT_QUIET,
            f"churn has been low for {now - quiet_since:.0f}s, quiet period {rollout.quiet_period}",
        )
    # Once one variable moves beyond the band, all managed ones are written, so the DaemonSet lands on one
    # coherent recommendation rather than a mix of old and new values.
    if dry_run:
        return hold(GuardReason.DRY_RUN, f"dry run: would write {summarize(values)}")
    return Decision(True, values, GuardReason.APPLY, f"write {summarize(values)}")
