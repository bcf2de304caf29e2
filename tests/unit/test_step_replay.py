"""The policy step logs each tick's pod history in its memory and, once the learning span of it is logged, takes
the IP targets from the replay chooser (planner/advice.py) instead of the histograms; before that the histogram
plan stands. Driven tick by tick as the operator and the simulator drive it."""

from __future__ import annotations

from tests.unit.test_planner_replay import churn
from tests.unit.test_step import CREATED, NAME, NOW, SUBNETS, target
from warmpool import step
from warmpool.api.v1alpha1 import Variable
from warmpool.aws.instance_table import FALLBACK_LIMITS
from warmpool.planner import advice
from warmpool.snapshot import ClusterSnapshot

LIMITS = {"m5.large": FALLBACK_LIMITS["m5.large"]}
TICK = 300.0  # every snapshot carries 900 s of history: enough to log each start and stop between two ticks
SPEC = {
    "churn": {"burstWindow": "10s", "halfLife": "1h"},
    "rollout": {"interval": "60s", "cooldown": "1h", "quietPeriod": "0s", "deadBand": 0, "deadBandRatio": 0},
}


def tick(memory: step.PolicyMemory | None, now: float, spec: dict[str, object] = SPEC) -> step.Pending:
    nodes = tuple(churn(f"n{i}", now, period=15.0) for i in range(3))
    policy = step.PolicyInput(NAME, "uid-1", 1, CREATED, spec, {})
    start = step.begin(policy, memory, now, history_since=NOW)
    assert isinstance(start, step.Started)
    observed = step.Observed(ClusterSnapshot(now=now, nodes=nodes), LIMITS, SUBNETS)
    return step.decide(start, observed, target(), [(CREATED, NAME)], now)


def test_the_step_takes_the_replays_targets_once_the_learning_span_is_logged_and_not_before() -> None:
    memory: step.PolicyMemory | None = None
    now = NOW + TICK
    while now < NOW + advice.MIN_HISTORY:
        pending = tick(memory, now)
        memory = pending.start.memory
        assert not any("replayed" in r for r in pending.rec.reasons.values()), now - NOW
        now += TICK
    assert memory is not None
    assert memory.replay.replays == 0

    pending = tick(memory, now + TICK)
    assert pending.start.memory is memory
    assert memory.replay.replays == 1
    assert memory.replay.log.span >= advice.MIN_HISTORY  # every tick's history was logged
    assert memory.replay.last is not None
    choice = memory.replay.last[2]
    assert choice.env is not None
    for v in (Variable.WARM_IP_TARGET, Variable.MINIMUM_IP_TARGET):
        assert pending.rec.values[v] == int(choice.env.get(v.value, "0"))
        assert "replayed" in pending.rec.reasons[v]


def test_a_churn_spec_change_keeps_the_logged_pod_history() -> None:
    first = tick(None, NOW + TICK)
    second = tick(first.start.memory, NOW + 2 * TICK, {**SPEC, "churn": {"burstWindow": "20s", "halfLife": "1h"}})
    assert second.start.memory is not first.start.memory  # fresh histograms for the new churn spec
    assert second.start.memory.replay is first.start.memory.replay
    assert second.start.memory.replay.log.span > 0
