"""Hindsight baselines: the finer best-static search, per-type and per-node bests, the split of a multi-day
run, EC2 calls per node-hour, and parallel runs that give the same answers as one process."""

from __future__ import annotations

import json

from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from warmpool.cli import main as warmpool_cli
from warmpool.ipamd.env import MINIMUM_IP_TARGET, WARM_IP_TARGET
from warmpool.ipamd.limits import IpMode
from warmpool.sim import baselines
from warmpool.sim.baselines import (
    Runner,
    _spread,
    allowance,
    budget_grid,
    choose_per_group,
    coarse_grid,
    feasible_best,
    peak_pods_by_type,
    refinements,
    typical_pods_by_type,
)
from warmpool.sim.engine import EngineConfig, PerNodeStaticStrategy, RunResult, StaticStrategy, simulate
from warmpool.sim.metrics import StrategyMetrics
from warmpool.sim.scenarios import generate
from warmpool.sim.trace import NodeAdd, PodStart, PodStop


def test_spread_fills_small_gaps_and_samples_big_ones() -> None:
    assert _spread(4, 8, 5) == [5, 6, 7]
    assert _spread(4, 5, 3) == []
    picked = _spread(0, 100, 3)
    assert len(picked) == 3
    assert all(0 < x < 100 for x in picked)


def test_refinements_look_below_the_warm_target_and_around_the_minimum() -> None:
    tried = [(1, 0), (2, 0), (4, 0), (8, 0), (4, 20), (8, 20)]
    got = refinements((8, 0), tried, 3)
    assert {(5, 0), (6, 0), (7, 0)} <= set(got)  # between 4 (too few, or costlier) and 8
    assert all(w == 8 for w, m in got if m != 0)
    assert any(0 < m < 20 for _, m in got)
    assert not set(got) & set(tried)


def test_coarse_grid_uses_each_types_typical_density() -> None:
    trace = generate("mixed", 1, nodes=8, hours=0.5)
    typical = typical_pods_by_type(trace)
    assert len(typical) == 4
    minimums = {int(env.get(MINIMUM_IP_TARGET, "0")) for env in coarse_grid(trace, IpMode.SECONDARY)}
    assert set(typical.values()) <= minimums
    # In prefix mode a minimum counts in whole /28s: only multiples of 16 are distinct settings.
    prefix_minimums = {int(env.get(MINIMUM_IP_TARGET, "0")) for env in coarse_grid(trace, IpMode.PREFIX)}
    assert all(m % 16 == 0 for m in prefix_minimums)


def test_prefix_minimum_rounds_to_whole_prefixes() -> None:
    trace = generate("steady", 1, nodes=3, hours=0.5)
    runs = [
        simulate(trace, StaticStrategy({WARM_IP_TARGET: "2", MINIMUM_IP_TARGET: m}), IpMode.PREFIX).metrics
        for m in ("17", "32")
    ]
    assert runs[0].idle_ip_hours == runs[1].idle_ip_hours
    assert runs[0].waited_pods == runs[1].waited_pods


def test_choose_per_group_spends_the_allowance_where_it_saves_most() -> None:
    options = {
        "a": {"lean": (10.0, 5), "fat": (100.0, 0)},
        "b": {"lean": (10.0, 1), "fat": (20.0, 0)},
    }
    assert choose_per_group(options, 5) == {"a": "lean", "b": "fat"}
    assert choose_per_group(options, 6) == {"a": "lean", "b": "lean"}
    assert choose_per_group(options, 0) == {"a": "fat", "b": "fat"}


group_options = st.dictionaries(
    st.sampled_from("abcdef"),
    st.dictionaries(
        st.sampled_from(["x", "y", "z", "w"]), st.tuples(st.floats(0, 1000), st.integers(0, 20)), min_size=1
    ),
    min_size=1,
)


@settings(max_examples=200, deadline=None)
@given(options=group_options, budget=st.integers(0, 60))
def test_choose_per_group_keeps_within_budget_and_beats_any_uniform_choice(
    options: dict[str, dict[str, tuple[float, int]]], budget: int
) -> None:
    choice = choose_per_group(options, budget)
    waits = sum(options[g][choice[g]][1] for g in options)
    fewest = sum(min(w for _, w in opts.values()) for opts in options.values())
    if fewest > budget:
        assert waits == fewest
        return
    assert waits <= budget
    idle = sum(options[g][choice[g]][0] for g in options)
    common = set.intersection(*(set(opts) for opts in options.values()))
    for label in common:
        if sum(options[g][label][1] for g in options) <= budget:
            assert idle <= sum(options[g][label][0] for g in options) + 1e-6


def test_per_node_env_boots_each_node_with_its_own_setting() -> None:
    trace = generate("mixed", 1, nodes=4, hours=0.5)
    names = [e.node for e in trace.events if isinstance(e, NodeAdd)]
    strategy = PerNodeStaticStrategy("p", {names[0]: {WARM_IP_TARGET: "1"}}, None)
    mixed = simulate(trace, strategy, IpMode.SECONDARY)
    low = simulate(trace, StaticStrategy({WARM_IP_TARGET: "1"}), IpMode.SECONDARY)
    default = simulate(trace, StaticStrategy(), IpMode.SECONDARY)
    # Nodes are independent (seeded per node, subnets far from full): each keeps its own setting's outcome.
    assert mixed.per_node[names[0]] == low.per_node[names[0]]
    assert all(mixed.per_node[n] == default.per_node[n] for n in names[1:])
    assert sum(o.idle_ip_seconds for o in mixed.per_node.values()) / 3600 == mixed.metrics.idle_ip_hours


def test_baselines_order_and_service_level() -> None:
    """Per node <= per type <= one setting in idle IPs, all within the waits allowed."""
    trace = generate("mixed", 1, nodes=8, hours=1.0)
    with Runner(trace, IpMode.SECONDARY) as runner:
        default = runner.static(None).result().metrics
        limit = default.waited_pods + allowance(trace.pod_starts)
        found = baselines.search(runner, limit)
    single, per_type, per_node = found.best_static, found.best_static_per_type, found.best_static_per_node
    for run in (single, per_type, per_node):
        assert run.metrics.waited_pods <= limit
    assert per_node.metrics.idle_ip_hours <= per_type.metrics.idle_ip_hours + 1e-9
    assert per_type.metrics.idle_ip_hours <= single.metrics.idle_ip_hours + 1e-9
    assert single.metrics.idle_ip_hours <= default.idle_ip_hours
    # The fine search went past the coarse grid.
    assert len(found.runs) > len(coarse_grid(trace, IpMode.SECONDARY))
    assert min(r.metrics.idle_ip_hours for r in found.runs.values() if r.metrics.waited_pods <= limit) == (
        single.metrics.idle_ip_hours
    )


def test_multi_day_runs_report_the_first_day_and_the_rest() -> None:
    trace = generate("diurnal-3d", 1, nodes=2, hours=2.0, days=3)
    m = simulate(trace, StaticStrategy(), IpMode.SECONDARY, EngineConfig(split_at=7200.0)).metrics
    first, rest = m.periods["first"], m.periods["rest"]
    assert first.end == 7200.0
    assert rest.end == trace.duration
    assert first.pod_starts + rest.pod_starts == m.pod_starts
    assert abs(first.idle_ip_hours + rest.idle_ip_hours - m.idle_ip_hours) < 1e-6
    assert first.waited_pods + rest.waited_pods == m.waited_pods
    assert abs(first.node_hours - 2 * 2.0) < 1e-9
    assert abs(m.node_hours - 2 * trace.duration / 3600) < 1e-9
    assert m.ec2_calls_per_node_hour == m.ec2_calls_total / m.node_hours


def test_cli_json_has_every_strategy_and_parallel_runs_agree() -> None:
    args = ["simulate", "--scenario", "mixed", "--nodes", "4", "--hours", "0.5", "--json"]
    one = CliRunner().invoke(warmpool_cli, [*args, "--jobs", "1"])
    two = CliRunner().invoke(warmpool_cli, [*args, "--jobs", "2"])
    assert one.exit_code == 0, one.output
    assert two.exit_code == 0, two.output
    assert json.loads(one.output) == json.loads(two.output)
    strategies = json.loads(one.output)["strategies"]
    names = ("best_static", "best_static_per_type", "best_static_per_node", "best_static_in_budget", "clairvoyant")
    for name in ("warmpool", "default", *names):
        assert "ec2_calls_per_node_hour" in strategies[name]
        assert strategies[name]["node_hours"] > 0
    assert set(strategies["best_static_per_node"]) == set(strategies["default"])


def _run(label: str, idle: float, waited: int, calls: int, node_hours: float = 10.0) -> RunResult:
    metrics = StrategyMetrics(label, label, idle, 0, waited, 0.0, 0.0, {"assign_ips": calls}, 0, None, [])
    metrics.node_hours = node_hours
    return RunResult(metrics, [])


def test_feasible_best_within_an_ec2_budget() -> None:
    runs = {
        "cheap": _run("cheap", 10.0, 1, 500),  # 50 calls a node-hour
        "mid": _run("mid", 20.0, 1, 30),  # 3 a node-hour
        "waits": _run("waits", 5.0, 9, 0),
        "default": _run("default", 40.0, 0, 10),
    }
    assert feasible_best(runs, 2).metrics.name == "cheap"
    assert feasible_best(runs, 2, ec2_budget=3.6).metrics.name == "mid"
    # Nothing within the budget: the fewest calls among the runs within the waits.
    assert feasible_best(runs, 2, ec2_budget=0.5).metrics.name == "default"


def test_peak_pods_and_the_budget_grid_hold_a_pool_at_its_minimum() -> None:
    trace = generate("diurnal", 1, nodes=6, hours=1.0)
    peaks = peak_pods_by_type(trace)
    running: dict[str, int] = {}
    highest: dict[str, int] = {}
    for e in trace.events:
        if isinstance(e, PodStart):
            running[e.node] = running.get(e.node, 0) + 1
            highest[e.node] = max(highest.get(e.node, 0), running[e.node])
        elif isinstance(e, PodStop):
            running[e.node] -= 1
    assert peaks == {"m5.large": sorted(highest.values())}
    grid = budget_grid(trace, IpMode.SECONDARY)
    assert grid
    for env in grid:
        w, m = int(env[WARM_IP_TARGET]), int(env[MINIMUM_IP_TARGET])
        assert w in baselines.BUDGET_WARM_IPS
        # The minimum leaves the warm target free at a node's peak (up to all the pod IPs a node holds).
        assert m in {min(p + w, baselines.most_pod_ips(trace, IpMode.SECONDARY)) for p in peaks["m5.large"]}
    assert all(int(env[MINIMUM_IP_TARGET]) % 16 == 0 for env in budget_grid(trace, IpMode.PREFIX))


def test_best_static_in_budget_keeps_the_budget_and_the_service_level() -> None:
    trace = generate("steady", 1, nodes=6, hours=1.0)
    budget = 3.6
    with Runner(trace, IpMode.SECONDARY) as runner:
        default = runner.static(None).result().metrics
        limit = default.waited_pods + allowance(trace.pod_starts)
        found = baselines.search(runner, limit, ec2_budget=budget)
    best = found.best_static_in_budget
    assert best is not None
    assert best.metrics.name == "best_static_in_budget"
    assert best.metrics.waited_pods <= limit
    assert best.metrics.ec2_calls_per_node_hour <= max(budget, default.ec2_calls_per_node_hour)
    assert best.metrics.idle_ip_hours >= found.best_static.metrics.idle_ip_hours - 1e-9
    within = [
        r.metrics.idle_ip_hours
        for r in found.runs.values()
        if r.metrics.waited_pods <= limit and r.metrics.ec2_calls_per_node_hour <= budget
    ]
    assert best.metrics.idle_ip_hours == min(within)
    # Without a budget, no such baseline.
    with Runner(trace, IpMode.SECONDARY) as runner:
        assert baselines.search(runner, limit).best_static_in_budget is None
