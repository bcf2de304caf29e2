"""One pure policy step, shared by the operator's handler and the simulator's warmpool strategy.

    start = begin(policy, memory, now, history_since=...)      # cadence, spec, paused, learning memory
    pending = decide(start, observed, target, peers, now)       # plan, every guard, the last safety check
    result = report(pending, outcome)                           # status, conditions, Events after the write

No kopf, kubernetes or boto3 here: every input, the clock included, is an argument; the caller does the I/O
(reads the cluster and EC2, writes `pending.write`, posts `result.events`, patches `result.status`).
"""

from warmpool.step.core import begin, decide, lookback, report
from warmpool.step.memory import PolicyMemory
from warmpool.step.model import (
    Applied,
    ApplyRefused,
    Event,
    Finished,
    Observed,
    Pending,
    PolicyInput,
    Reason,
    Started,
    StepResult,
    TargetUnreadable,
    Write,
    WriteRoute,
)
from warmpool.step.target import conflict_winner, env_after

__all__ = [
    "Applied",
    "ApplyRefused",
    "Event",
    "Finished",
    "Observed",
    "Pending",
    "PolicyInput",
    "PolicyMemory",
    "Reason",
    "Started",
    "StepResult",
    "TargetUnreadable",
    "Write",
    "WriteRoute",
    "begin",
    "conflict_winner",
    "decide",
    "env_after",
    "lookback",
    "report",
]
