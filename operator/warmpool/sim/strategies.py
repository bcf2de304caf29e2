"""Strategies beyond a fixed env: warmpool's own policy step in the loop, and the clairvoyant lower bound (the
hindsight baselines live in `warmpool.sim.baselines`)."""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Callable, Mapping
from typing import Any

from warmpool import step
from warmpool.api.v1alpha1 import WarmPoolPolicySpec, parse_duration, summarize
from warmpool.apply.daemonset import FIELD_MANAGER, DaemonSetView, EnvEntry
from warmpool.ipamd.limits import IPS_PER_PREFIX, InstanceLimits, IpMode
from warmpool.ipamd.version import MODELED_VERSION
from warmpool.sim.engine import (
    ClosedLoopStrategy,
    ClusterView,
    EngineConfig,
    RunResult,
    limits_for,
    settings_of,
)
from warmpool.sim.metrics import NodeFinal, StrategyMetrics
from warmpool.sim.trace import NodeAdd, NodeRemove, PodStart, PodStop, Trace
from warmpool.step.status import merge_patch

# The image the simulated aws-node runs: the VPC CNI version the pool model follows.
SIM_IMAGE = "602401143452.dkr.ecr.us-west-2.amazonaws.com/amazon-k8s-cni:v{}.{}.{}".format(*MODELED_VERSION)
SIM_POLICY = "warmpool-sim"


class PlannerStrategy(ClosedLoopStrategy):
    """warmpool itself: the operator's policy step (`warmpool.step`) on the simulated cluster, driven as the
    operator's handler drives it: the status it reports is what the next tick reads, warmpool owns the entries
    it wrote, and a write costs an aws-node rollout. The cluster starts on AWS's defaults, as a cluster does
    before warmpool is installed."""

    name = "warmpool"

    def __init__(self, spec: WarmPoolPolicySpec | None = None, image: str = SIM_IMAGE) -> None:
        self.spec = spec or WarmPoolPolicySpec()
        self.interval = parse_duration(self.spec.rollout.interval)
        self.lookback = step.lookback(self.spec)
        self.image = image
        self.memory: step.PolicyMemory | None = None
        self.status: dict[str, Any] = {}
        self.owned: set[str] = set()  # the env entries warmpool's field manager owns
        self.applied_at: float | None = None
        self.decisions: list[tuple[float, str, str]] = []  # (time, reason, values written or held)

    def decide(self, view: ClusterView) -> dict[str, str] | None:
        policy = step.PolicyInput(
            name=SIM_POLICY,
            generation=1,
            created="1970-01-01T00:00:00Z",
            spec=self.spec.model_dump(by_alias=True),
            status=self.status,
        )
        start = step.begin(policy, self.memory, view.now, history_since=0.0)
        self.memory = start.memory
        if isinstance(start, step.Finished):
            self._keep(start.result)
            self.decisions.append((view.now, str(start.result.reason or "not_due"), ""))
            return None
        target = self._target(view.env, view.rollout_in_progress)
        observed = step.Observed(view.snapshot, view.limits, view.subnets)
        pending = step.decide(start, observed, target, [(policy.created, policy.name)], view.now)
        new_env: dict[str, str] | None = None
        outcome: step.Applied | None = None
        if pending.write is not None:
            new_env = step.env_after(view.env, pending.write)
            self.owned = (self.owned - set(pending.write.release)) | {v.value for v in pending.write.values}
            self.applied_at = view.now
            outcome = step.Applied(self._target(new_env, True))
        result = step.report(pending, outcome)
        self._keep(result)
        self.decisions.append(
            (view.now, pending.reason.value, summarize(pending.write.values) if pending.write else "")
        )
        return new_env

    def _target(self, env: Mapping[str, str], rollout_in_progress: bool) -> DaemonSetView:
        return DaemonSetView(
            env={k: EnvEntry(v) for k, v in env.items()},
            owners={k: [FIELD_MANAGER] for k in self.owned if k in env},
            warmpool_applied_at=self.applied_at,
            rollout_in_progress=rollout_in_progress,
            rollout_message="",
            generation=1,
            container_found=True,
            image=self.image,
        )

    def _keep(self, result: step.StepResult) -> None:
        """What kopf does with the status patch: merged into the stored status the next tick reads."""
        if result.status:
            self.status = merge_patch(self.status, result.status)


# ----- clairvoyant lower bound -----


def clairvoyant(
    trace: Trace,
    mode: IpMode,
    config: EngineConfig | None = None,
    limits: Callable[[NodeAdd], InstanceLimits] = limits_for,
) -> RunResult:
    """Each node holds exactly the IPs its pods use plus one per pod start in the coming refill window (a
    pool check plus one EC2 assign), whole prefixes in prefix mode: no pod waits and no IP idles longer than
    it must. No real ipamd setting can do better. EC2 calls count every increase and decrease of a node's
    holding, an idealisation too (ipamd could batch them)."""
    cfg = config or EngineConfig()
    window = cfg.timing.pool_check + cfg.timing.assign_latency
    size = IPS_PER_PREFIX if mode is IpMode.PREFIX else 1
    end = trace.duration
    # (time, order, node, d_need, d_in_use): need = in use + starts within the coming window.
    changes: list[tuple[float, int, str, int, int]] = []
    added: dict[str, float] = {}
    running: dict[str, set[str]] = defaultdict(set)
    meta: dict[str, NodeAdd] = {}
    for e in trace.events:
        if isinstance(e, NodeAdd):
            added[e.node] = e.t
            meta[e.node] = e
        elif isinstance(e, PodStart):
            changes.append((max(e.t - window, added[e.node]), 0, e.node, 1, 0))
            changes.append((e.t, 1, e.node, 0, 1))
            running[e.node].add(e.pod)
        elif isinstance(e, PodStop):
            changes.append((e.t, 2, e.node, -1, -1))
            running[e.node].discard(e.pod)
        elif isinstance(e, NodeRemove):
            n = len(running.pop(e.node, ()))
            changes.append((e.t, 2, e.node, -n, -n))
    changes.sort(key=lambda c: (c[0], c[1]))
    need: dict[str, int] = defaultdict(int)
    use: dict[str, int] = defaultdict(int)
    held_total = use_total = peak = 0
    idle = 0.0
    last_t = 0.0
    series: list[tuple[float, int, int]] = []
    next_sample = 0.0
    calls = {
        "assign_ips" if size == 1 else "assign_prefixes": 0,
        "unassign_ips" if size == 1 else "unassign_prefixes": 0,
    }
    grow_key, shrink_key = list(calls)

    def held(n: int) -> int:
        return math.ceil(n / size) * size

    for t, _, node, d_need, d_use in changes:
        t = min(t, end)
        while next_sample <= t:
            series.append((next_sample, held_total, use_total))
            next_sample += cfg.sample_every
        idle += (held_total - use_total) * (t - last_t)
        last_t = t
        before = held(need[node])
        need[node] += d_need
        use[node] += d_use
        after = held(need[node])
        if after > before:
            calls[grow_key] += 1
        elif after < before:
            calls[shrink_key] += 1
        held_total += after - before
        use_total += d_use
        peak = max(peak, held_total)
    idle += (held_total - use_total) * max(0.0, end - last_t)
    while next_sample <= end:
        series.append((next_sample, held_total, use_total))
        next_sample += cfg.sample_every
    finals = []
    for name in sorted(running):
        add = meta[name]
        lim = limits(add)
        pods = len(running[name])
        ips = held(pods)
        finals.append(
            NodeFinal(
                node=name,
                instance_type=add.instance_type,
                enis=max(1, math.ceil(ips / lim.ips_per_eni(mode))),
                ips_held=ips,
                prefixes_held=ips // size if mode is IpMode.PREFIX else 0,
                pods=pods,
            )
        )
    metrics = StrategyMetrics(
        name="clairvoyant",
        settings=f"oracle: pods + starts in the next {window:g}s",
        idle_ip_hours=idle / 3600,
        peak_ips_held=peak,
        waited_pods=0,
        wait_seconds_total=0.0,
        wait_seconds_p99=0.0,
        ec2_calls=calls,
        rollouts=0,
        min_subnet_free_ips=None,
        nodes=finals,
        pod_starts=trace.pod_starts,
    )
    return RunResult(metrics, series)


def settings_label(env: Mapping[str, str]) -> str:
    return settings_of(env)
