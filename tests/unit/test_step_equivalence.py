"""Decision equivalence: one trace through the simulator's warmpool strategy, and the same observations through the
policy step driven the way the operator's handler drives it (policy and DaemonSet as the API server returns
them, JSON round trips, server-side apply bookkeeping in managedFields, the status as a merge patch). The two
must make the same decisions at the same times: the benchmark measures the operator's own decisions."""

from __future__ import annotations

import copy
import dataclasses
import json
from typing import Any

import pytest

from tests.kube import aws_node_daemonset
from warmpool import step
from warmpool.api.v1alpha1 import WarmPoolPolicySpec, summarize
from warmpool.apply.daemonset import view
from warmpool.ipamd.limits import IpMode
from warmpool.sim.engine import ClusterView, default_env, simulate
from warmpool.sim.scenarios import generate
from warmpool.sim.strategies import SIM_IMAGE, PlannerStrategy
from warmpool.sim.trace import SubnetFree
from warmpool.snapshot import ClusterSnapshot
from warmpool.step.status import merge_patch, timestamp

SPEC = {
    "churn": {"burstWindow": "30s", "halfLife": "2h"},
    "rollout": {"cooldown": "20m", "quietPeriod": "5m", "interval": "60s", "deadBand": 1, "deadBandRatio": 0.1},
}


class Recording(PlannerStrategy):
    """The simulator's strategy, keeping every view it was shown."""

    def __init__(self, spec: WarmPoolPolicySpec) -> None:
        super().__init__(spec)
        self.views: list[ClusterView] = []

    def decide(self, view: ClusterView) -> dict[str, str] | None:
        self.views.append(view)
        return super().decide(view)


class Handler:
    """`controller.reconcile.reconcile_policy` without its I/O: the API server's objects are dicts here."""

    def __init__(self, spec: dict[str, Any], mode: IpMode) -> None:
        self.policy: dict[str, Any] = {
            "apiVersion": "warmpool.io/v1alpha1",
            "kind": "WarmPoolPolicy",
            "metadata": {"name": "web", "uid": "u1", "generation": 1, "creationTimestamp": "2026-01-01T00:00:00Z"},
            "spec": spec,
        }
        env = [{"name": k, "value": v} for k, v in default_env(mode).items()]
        self.ds = aws_node_daemonset("kube-system", env=env)
        self.ds["spec"]["template"]["spec"]["containers"][0]["image"] = SIM_IMAGE
        self.ds["metadata"].update(generation=1, managedFields=[])
        self.memory: dict[str, step.PolicyMemory] = {}
        self.decisions: list[tuple[float, str, str]] = []

    def tick(self, seen: ClusterView) -> None:
        now = seen.now
        self._rollout_state(seen.rollout_in_progress)
        body = json.loads(json.dumps(self.policy))  # as read from the API server
        policy = step.PolicyInput.from_body(body)
        start = step.begin(policy, self.memory.get(policy.uid), now, history_since=0.0)
        if isinstance(start, step.Finished):
            if start.memory is not None:
                self.memory[policy.uid] = start.memory
            self._patch(start.result)
            self.decisions.append((now, str(start.result.reason or "not_due"), ""))
            return
        self.memory[policy.uid] = start.memory
        observed = step.Observed(seen.snapshot, seen.limits, seen.subnets)  # observing is not the step's job
        target = view(json.loads(json.dumps(self.ds)), "aws-node")
        peers = [(body["metadata"]["creationTimestamp"], body["metadata"]["name"])]
        pending = step.decide(start, observed, target, peers, now)
        outcome = self._apply(pending.write, now) if pending.write else None
        self._patch(step.report(pending, outcome))
        written = summarize(pending.write.values) if pending.write else ""
        self.decisions.append((now, pending.reason.value, written))

    def _rollout_state(self, in_progress: bool) -> None:
        desired = 3
        self.ds["status"] = {
            "observedGeneration": self.ds["metadata"]["generation"],
            "desiredNumberScheduled": desired,
            "updatedNumberScheduled": desired - 1 if in_progress else desired,
            "numberAvailable": desired,
        }

    def _apply(self, write: step.Write, now: float) -> step.Applied:
        """Server-side apply of the managed entries with field manager warmpool: ours replaced, released gone."""
        container = self.ds["spec"]["template"]["spec"]["containers"][0]
        owned = {n for n in _owned(self.ds)}
        names = {v.value for v in write.values}
        env = [e for e in container["env"] if e["name"] not in names and e["name"] not in (owned - names)]
        env += [{"name": v.value, "value": str(n)} for v, n in write.values.items()]
        container["env"] = env
        container_key = "k:" + json.dumps({"name": "aws-node"}, separators=(",", ":"))
        fields = {"k:" + json.dumps({"name": n}, separators=(",", ":")): {".": {}, "f:value": {}} for n in names}
        self.ds["metadata"]["managedFields"] = [
            {
                "manager": "warmpool",
                "operation": "Apply",
                "time": timestamp(now),
                "fieldsV1": {
                    "f:spec": {"f:template": {"f:spec": {"f:containers": {container_key: {"f:env": fields}}}}}
                },
            }
        ]
        self.ds["metadata"]["generation"] += 1
        self._rollout_state(True)
        return step.Applied(view(copy.deepcopy(self.ds), "aws-node"))

    def _patch(self, result: step.StepResult) -> None:
        if result.status:
            patch = json.loads(json.dumps(result.status))
            self.policy["status"] = merge_patch(self.policy.get("status") or {}, patch)


def _owned(ds: dict[str, Any]) -> set[str]:
    return {k for k, owners in view(ds, "aws-node").owners.items() if "warmpool" in owners}


@pytest.mark.parametrize(("scenario", "mode"), [("batch", IpMode.SECONDARY), ("diurnal", IpMode.PREFIX)])
def test_simulator_and_handler_make_the_same_decisions(scenario: str, mode: IpMode) -> None:
    trace = generate(scenario, seed=3, nodes=6, hours=3)
    spec = WarmPoolPolicySpec.model_validate(SPEC)
    strategy = Recording(spec)
    simulate(trace, strategy, mode)
    handler = Handler(SPEC, mode)
    for seen in strategy.views:
        # The env the handler's DaemonSet holds is the env the simulator runs on.
        assert view(handler.ds, "aws-node").plain_env() == seen.env
        handler.tick(seen)
    assert handler.decisions == strategy.decisions
    writes = [d for d in strategy.decisions if d[2]]
    reasons = {d[1] for d in strategy.decisions}
    assert len(writes) >= 2, strategy.decisions  # not a vacuous comparison: changes were made and held
    # (A change held by the cooldown is not always among them: within the cooldown the replay chooser keeps the
    # values in effect unless they starve the pods, and a rescue skips the cooldown.)
    assert {"apply", "not_quiet", "no_change"} <= reasons, reasons


def test_an_operator_that_first_saw_an_empty_selection_holds_where_the_simulator_changes() -> None:
    """The e2e harness's old divergence, without KWOK: the simulator's warmpool only ever sees the cluster the
    trace starts with. An operator whose first look found none of those nodes yet counts their arrival as a
    scale-out and holds for the node-count look-back, so the e2e harness creates them before the operator starts
    (`ChurnDriver.seed`); from the same first look, the step decides as the simulator does."""
    spec = WarmPoolPolicySpec.model_validate(
        {
            "manage": [{"name": "WARM_IP_TARGET", "min": 1}, {"name": "MINIMUM_IP_TARGET"}],
            "churn": {"burstWindow": "2s"},
            "rollout": {"interval": "10s", "cooldown": "1h", "quietPeriod": "30s"},
        }
    )
    played = generate("scale-out", seed=1, nodes=10, new_nodes=10)
    # At the e2e test's 60x, run on for 6 minutes as the operator does after the churn ends.
    events = [e.model_copy(update={"t": e.t / 60}) for e in played.events]
    subnet = next(e for e in events if isinstance(e, SubnetFree))
    trace = dataclasses.replace(played, events=[*events, subnet.model_copy(update={"t": 360.0})])
    simulator = Recording(spec)
    simulate(trace, simulator, IpMode.SECONDARY)
    changes = [t for t, _, written in simulator.decisions if written]
    assert changes, simulator.decisions
    assert changes[0] < 300  # after the scale-in, within the look-back of the empty first look

    def replayed(first: ClusterView | None) -> list[tuple[float, str, str]]:
        operator = PlannerStrategy(spec)
        if first is not None:
            operator.decide(first)
        for seen in simulator.views:
            operator.decide(seen)
        return operator.decisions[1:] if first is not None else operator.decisions

    opening = simulator.views[0]
    empty = dataclasses.replace(opening, now=opening.now - 12, snapshot=ClusterSnapshot(now=opening.now - 12))
    assert replayed(None) == simulator.decisions
    held = dict((t, why) for t, why, _ in replayed(empty))
    assert held[changes[0]] == "not_quiet"
