"""The planner: pure functions from observed churn to ipamd targets, and the guards on rolling them out.

A loop (the operator's timer or the simulator) calls, with its own `now`:
    tracker.observe(snapshot); stats = tracker.stats(spec.churn.burst_quantile, now)
    rec = plan(spec, snapshot, limits, subnets, current_env, stats)
    decision = decide(rec.values, current_values(env, rec.values), spec.rollout, now=now, ...)
"""

from warmpool.planner.churn import ChurnStats, ChurnTracker, QuietConfig, max_starts_in_window
from warmpool.planner.guards import Decision, GuardReason, current_values, decide
from warmpool.planner.history import DecayingHistogram
from warmpool.planner.plan import PlanCondition, Recommendation, SubnetBudget, effective_mode, plan

__all__ = [
    "ChurnStats",
    "ChurnTracker",
    "DecayingHistogram",
    "Decision",
    "GuardReason",
    "PlanCondition",
    "QuietConfig",
    "Recommendation",
    "SubnetBudget",
    "current_values",
    "decide",
    "effective_mode",
    "max_starts_in_window",
    "plan",
]
