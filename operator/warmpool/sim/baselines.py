"""Honest hindsight baselines: the best static setting for the whole cluster, per instance type and per node, and
the best static setting within an EC2 call budget.

"Best" is the fewest idle IP-hours among settings whose waited pods stay within a service level (the caller
passes it: AWS's default's waits plus one per thousand pod starts). The single-setting search is coarse to fine:
a coarse grid of whole-ENI/prefix targets and WARM_IP_TARGET x MINIMUM_IP_TARGET (minimums at each instance
type's typical pods per node and a little above), then rounds that fill the integer gaps around the best setting
found, one dimension at a time, until the best stops moving. Every run also records each node's idle IPs and
waits, so the per-type and per-node bests are chosen from the same runs (a Lagrangian split of the waits
allowance across groups) and then run for real as per-node env, which no DaemonSet can express: they bound what
one cluster-wide value could reach.

Small warm targets win in idle IPs by assigning and returning IPs one by one, at tens of EC2 calls per node-hour,
which EC2 would throttle on a large cluster. `best_static_in_budget` is the same search restricted to settings
whose EC2 calls per node-hour stay within a budget (the policy's `ec2CallsPerNodeHour`): its grid adds minimums
at each instance type's peak pods per node (a pool at its minimum makes no calls while pods stay below it).

Runs are independent, so they go to worker processes (forked, so the trace is not pickled per run).
The simulator models VPC CNI v1.12.0 or later: WARM_IP_TARGET above one ENI's worth is safe there (#1872).
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import statistics
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import Executor, Future, ProcessPoolExecutor
from dataclasses import dataclass

from warmpool.ipamd.env import MINIMUM_IP_TARGET, WARM_ENI_TARGET, WARM_IP_TARGET, WARM_PREFIX_TARGET, parse_env
from warmpool.ipamd.limits import IPS_PER_PREFIX, IpMode
from warmpool.ipamd.safety import unsafe_settings as _unsafe_settings
from warmpool.sim.engine import (
    EngineConfig,
    PerNodeStaticStrategy,
    RunResult,
    StaticStrategy,
    Strategy,
    limits_for,
    settings_of,
    simulate,
)
from warmpool.sim.trace import NodeAdd, NodeRemove, PodStart, PodStop, Trace

COARSE_WARM_IPS = (1, 2, 4, 8, 16)
COARSE_WARM_IPS_WITH_MINIMUM = 8
MINIMUM_STEPS_ABOVE_TYPICAL = (0, 4)
MAX_REFINE_ROUNDS = 4
# The in-budget grid: small warm targets over minimums at these quantiles of each type's per-node peak pods.
BUDGET_WARM_IPS = (1, 2, 4)
PEAK_QUANTILES = (0.9, 1.0)


def allowance(pod_starts: int) -> float:
    """Waits the service level tolerates on top of the default's: one per thousand pod starts."""
    return pod_starts / 1000


# ----- running strategies, in parallel -----


@dataclass(frozen=True, slots=True)
class _Work:
    trace: Trace
    mode: IpMode
    config: EngineConfig | None


_WORK: _Work | None = None


def _init_worker(work: _Work) -> None:
    global _WORK
    _WORK = work


def _run_in_worker(strategy: Strategy) -> RunResult:
    assert _WORK is not None
    return simulate(_WORK.trace, strategy, _WORK.mode, _WORK.config)


def default_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


class Runner:
    """Runs strategies over one trace, each at most once per settings label, on `jobs` worker processes."""

    def __init__(self, trace: Trace, mode: IpMode, config: EngineConfig | None = None, jobs: int = 1) -> None:
        self.trace, self.mode, self.config = trace, mode, config
        self.jobs = max(1, jobs)
        self._pool: Executor | None = None
        if self.jobs > 1:
            self._pool = ProcessPoolExecutor(
                self.jobs,
                mp_context=multiprocessing.get_context("fork"),
                initializer=_init_worker,
                initargs=(_Work(trace, mode, config),),
            )
        self.static_runs: dict[str, Future[RunResult]] = {}

    def submit(self, strategy: Strategy) -> Future[RunResult]:
        if self._pool is not None:
            return self._pool.submit(_run_in_worker, strategy)
        done: Future[RunResult] = Future()
        done.set_result(simulate(self.trace, strategy, self.mode, self.config))
        return done

    def static(self, env: Mapping[str, str] | None) -> Future[RunResult]:
        """A static setting's run (None = AWS's default), shared by everything that asks for the same label."""
        strategy = StaticStrategy(env)
        label = settings_of(strategy.initial_env(self.mode))
        if label not in self.static_runs:
            self.static_runs[label] = self.submit(strategy)
        return self.static_runs[label]

    def close(self, cancel: bool = False) -> None:
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=cancel)

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self.close(cancel=exc_type is not None)


# ----- the grid -----


def typical_pods_by_type(trace: Trace) -> dict[str, int]:
    """Per instance type, the median over its nodes of the time-averaged pods each node ran while present."""
    area: dict[str, float] = defaultdict(float)
    count: dict[str, int] = defaultdict(int)
    since: dict[str, float] = {}
    added: dict[str, float] = {}
    present: dict[str, float] = defaultdict(float)
    itype: dict[str, str] = {}
    for e in trace.events:
        if isinstance(e, NodeAdd):
            added[e.node] = since[e.node] = e.t
            itype[e.node] = e.instance_type
        elif isinstance(e, (PodStart, PodStop, NodeRemove)):
            area[e.node] += count[e.node] * (e.t - since[e.node])
            since[e.node] = e.t
            if isinstance(e, PodStart):
                count[e.node] += 1
            elif isinstance(e, PodStop):
                count[e.node] -= 1
            else:
                present[e.node] += e.t - added.pop(e.node)
                count[e.node] = 0
    for n, t0 in added.items():
        area[n] += count[n] * (trace.duration - since[n])
        present[n] += trace.duration - t0
    means: dict[str, list[float]] = defaultdict(list)
    for n, t in itype.items():
        if present[n] > 0:
            means[t].append(area[n] / present[n])
    return {t: round(statistics.median(v)) for t, v in sorted(means.items())}


def is_safe(env: Mapping[str, str], mode: IpMode) -> bool:
    return not _unsafe_settings(parse_env(env), mode, None)


def most_pod_ips(trace: Trace, mode: IpMode) -> int:
    """The most pod IPs any node of the trace can hold: a MINIMUM_IP_TARGET above it holds the same."""
    types = {e.instance_type: e for e in trace.events if isinstance(e, NodeAdd)}
    return max((limits_for(e).pod_ip_cap(limits_for(e).runs_mode(mode)) for e in types.values()), default=0)


def distinct_minimum(minimum: int, mode: IpMode, most: int) -> int:
    """The smallest MINIMUM_IP_TARGET that holds what `minimum` holds on every node: within the most pod IPs a
    node holds (`most`), in whole /28s in prefix mode."""
    return canonical_minimum(min(minimum, most), mode)


def canonical_minimum(minimum: int, mode: IpMode) -> int:
    """In prefix mode ipamd only ever uses MINIMUM_IP_TARGET rounded up to whole /28 prefixes."""
    return -(-minimum // IPS_PER_PREFIX) * IPS_PER_PREFIX if mode is IpMode.PREFIX else minimum


def ip_env(warm: int, minimum: int) -> dict[str, str]:
    env = {WARM_IP_TARGET: str(warm)}
    if minimum:
        env[MINIMUM_IP_TARGET] = str(minimum)
    return env


def coarse_grid(trace: Trace, mode: IpMode) -> list[dict[str, str]]:
    """Whole-ENI (or prefix) targets 1 and 2, and WARM_IP_TARGET x MINIMUM_IP_TARGET on a coarse lattice."""
    unit = WARM_PREFIX_TARGET if mode is IpMode.PREFIX else WARM_ENI_TARGET
    out: list[dict[str, str]] = [{unit: "1"}, {unit: "2"}]
    typicals = [t for t in typical_pods_by_type(trace).values() if t > 0]
    most = most_pod_ips(trace, mode)
    minimums = sorted(
        {0, *(distinct_minimum(t + d, mode, most) for t in typicals for d in MINIMUM_STEPS_ABOVE_TYPICAL)}
    )
    for w in COARSE_WARM_IPS:
        for m in minimums:
            if m and w > COARSE_WARM_IPS_WITH_MINIMUM:
                continue  # a minimum matters little once the warm target is that big: refinement gets there
            env = ip_env(w, m)
            if is_safe(env, mode):
                out.append(env)
    return out


def peak_pods_by_type(trace: Trace) -> dict[str, list[int]]:
    """Per instance type, the most pods each of its nodes ran at once, sorted."""
    count: dict[str, int] = defaultdict(int)
    peak: dict[str, int] = defaultdict(int)
    itype: dict[str, str] = {}
    for e in trace.events:
        if isinstance(e, NodeAdd):
            itype[e.node] = e.instance_type
            peak[e.node] = max(peak[e.node], 0)
        elif isinstance(e, PodStart):
            count[e.node] += 1
            peak[e.node] = max(peak[e.node], count[e.node])
        elif isinstance(e, PodStop):
            count[e.node] -= 1
        elif isinstance(e, NodeRemove):
            count[e.node] = 0
    out: dict[str, list[int]] = defaultdict(list)
    for n, t in itype.items():
        out[t].append(peak[n])
    return {t: sorted(v) for t, v in sorted(out.items())}


def budget_grid(trace: Trace, mode: IpMode) -> list[dict[str, str]]:
    """Small warm targets over minimums at each type's per-node peak pods (p90 and highest) plus the warm
    target: the settings that hold a pool at its minimum, where it makes no EC2 calls."""
    most = most_pod_ips(trace, mode)
    levels = set()
    for peaks in peak_pods_by_type(trace).values():
        levels |= {peaks[min(len(peaks) - 1, int(q * len(peaks)))] for q in PEAK_QUANTILES}
    out = []
    for w in BUDGET_WARM_IPS:
        for level in sorted(levels):
            env = ip_env(w, distinct_minimum(level + w, mode, most))
            if is_safe(env, mode):
                out.append(env)
    return out


def _ip_point(env: Mapping[str, str]) -> tuple[int, int] | None:
    """(WARM_IP_TARGET, MINIMUM_IP_TARGET) of an IP-target setting, else None."""
    if WARM_IP_TARGET not in env or set(env) - {WARM_IP_TARGET, MINIMUM_IP_TARGET}:
        return None
    return int(env[WARM_IP_TARGET]), int(env.get(MINIMUM_IP_TARGET, "0"))


def _spread(lo: int, hi: int, k: int) -> list[int]:
    """Up to k integers strictly between lo and hi, evenly spaced (a k-ary search step)."""
    inside = hi - lo - 1
    if inside <= 0:
        return []
    if inside <= k:
        return list(range(lo + 1, hi))
    return sorted({lo + round((i + 1) * (hi - lo) / (k + 1)) for i in range(k)} - {lo, hi})


def refinements(best: tuple[int, int], tried: Iterable[tuple[int, int]], k: int) -> list[tuple[int, int]]:
    """Untried points in the integer gaps next to `best`: WARM_IP_TARGET below it (same minimum), and
    MINIMUM_IP_TARGET either side of it (same warm target) up to the next minimum tried at any warm target,
    up to k per gap."""
    w, m = best
    seen = set(tried)
    lower_w = max((x for x, y in seen if y == m and x < w), default=0)
    out = [(x, m) for x in _spread(lower_w, w, k)]
    ms = sorted({y for _, y in seen})
    below = max((y for y in ms if y < m), default=None)
    above = min((y for y in ms if y > m), default=None)
    if below is not None:
        out += [(w, y) for y in _spread(below, m, k)]
    if above is not None or m > 0:
        out += [(w, y) for y in _spread(m, above if above is not None else m + 2 * k + 1, k)]
    return [p for p in out if p not in seen and p[0] >= 1]


# ----- choosing -----


def feasible_best(runs: Mapping[str, RunResult], max_waits: float, ec2_budget: float | None = None) -> RunResult:
    """Fewest idle IP-hours among runs within `max_waits` (and within `ec2_budget` EC2 calls per node-hour when
    given); if none is, the fewest EC2 calls among those within the waits, else the fewest waits."""
    ordered = [r for _, r in sorted(runs.items())]
    waits_ok = [r for r in ordered if r.metrics.waited_pods <= max_waits]
    ok = [r for r in waits_ok if ec2_budget is None or r.metrics.ec2_calls_per_node_hour <= ec2_budget]
    if ok:
        return min(ok, key=lambda r: (r.metrics.idle_ip_hours, r.metrics.waited_pods))
    if waits_ok:
        return min(waits_ok, key=lambda r: (r.metrics.ec2_calls_per_node_hour, r.metrics.idle_ip_hours))
    return min(ordered, key=lambda r: (r.metrics.waited_pods, r.metrics.idle_ip_hours))


def choose_per_group(options: Mapping[str, Mapping[str, tuple[float, int]]], max_waits: float) -> dict[str, str]:
    """For each group (a node or an instance type), one option (settings label) such that the waits summed
    over groups stay within `max_waits` with as few idle IP-seconds in total as this finds: the Lagrangian
    choice at the smallest price of a wait that keeps within the allowance, then the slack it leaves spent
    greedily on the biggest idle saving per extra wait."""
    groups = sorted(options)

    def pick(price: float) -> dict[str, str]:
        return {
            g: min(sorted(options[g].items()), key=lambda kv: (kv[1][0] + price * kv[1][1], kv[1][1]))[0]
            for g in groups
        }

    def waits(choice: Mapping[str, str]) -> int:
        return sum(options[g][choice[g]][1] for g in groups)

    fewest = {g: min(sorted(options[g].items()), key=lambda kv: (kv[1][1], kv[1][0]))[0] for g in groups}
    if waits(fewest) > max_waits:
        return fewest
    choice = pick(0.0)
    if waits(choice) > max_waits:
        lo, hi = 0.0, 1.0
        while waits(pick(hi)) > max_waits:
            hi *= 4
            if hi > 1e15:
                return fewest
        for _ in range(60):
            mid = (lo + hi) / 2
            if waits(pick(mid)) > max_waits:
                lo = mid
            else:
                hi = mid
        choice = pick(hi)
    slack = max_waits - waits(choice)
    while True:
        best: tuple[float, str, str] | None = None
        for g in groups:
            idle0, w0 = options[g][choice[g]]
            for label, (idle, w) in sorted(options[g].items()):
                extra = w - w0
                if idle < idle0 and extra <= slack:
                    gain = (idle0 - idle) / max(extra, 0.5)
                    if best is None or gain > best[0]:
                        best = (gain, g, label)
        if best is None:
            return choice
        _, g, label = best
        slack -= options[g][label][1] - options[g][choice[g]][1]
        choice[g] = label


# ----- the search -----


@dataclass(slots=True)
class Baselines:
    best_static: RunResult
    best_static_per_type: RunResult
    best_static_per_node: RunResult
    best_static_in_budget: RunResult | None  # None when no budget was given
    runs: dict[str, RunResult]  # every static setting run, by label


def start(runner: Runner, seeds: Sequence[Mapping[str, str]] = (), ec2_budget: float | None = None) -> None:
    """Queue the coarse grid (and `seeds`, e.g. the user's --static settings; the in-budget grid when a budget
    is given) before the service level is known, so the workers never idle."""
    for env in _first_grid(runner, seeds, ec2_budget):
        runner.static(env)


def _first_grid(
    runner: Runner, seeds: Sequence[Mapping[str, str]], ec2_budget: float | None
) -> list[Mapping[str, str]]:
    budget = budget_grid(runner.trace, runner.mode) if ec2_budget is not None else []
    return [*coarse_grid(runner.trace, runner.mode), *budget, *seeds]


def search(
    runner: Runner,
    max_waits: float,
    seeds: Sequence[Mapping[str, str]] = (),
    ec2_budget: float | None = None,
) -> Baselines:
    """The hindsight baselines over `runner`'s trace at the service level `max_waits`. `seeds` are settings to
    include (e.g. the user's --static ones); `ec2_budget` (EC2 calls per node-hour) adds `best_static_in_budget`."""
    mode = runner.mode
    start(runner, seeds, ec2_budget)
    envs: dict[str, dict[str, str]] = {}
    for env in _first_grid(runner, seeds, ec2_budget):
        envs[settings_of(StaticStrategy(env).initial_env(mode))] = dict(env)
    _refine(runner, envs, max_waits, None)
    in_budget = None
    if ec2_budget is not None:
        _refine(runner, envs, max_waits, ec2_budget)
    runs = {label: f.result() for label, f in runner.static_runs.items()}
    single = feasible_best(runs, max_waits)
    if ec2_budget is not None:
        in_budget = _renamed(feasible_best(runs, max_waits, ec2_budget), "best_static_in_budget")
    per_type, per_node = _per_group_strategies(runs, envs, max_waits, mode)
    futures = [(s, _uniform_run(s, runs) or runner.submit(s)) for s in (per_type, per_node)]
    results = []
    for strategy, future in futures:
        r = future.result()
        r = _renamed(r, strategy.name)
        r.metrics.settings = strategy.describe()
        results.append(r)
    best = _renamed(single, "best_static")
    return Baselines(best, results[0], results[1], in_budget, runs)


def _refine(runner: Runner, envs: dict[str, dict[str, str]], max_waits: float, ec2_budget: float | None) -> None:
    """Rounds that fill the integer gaps around the best IP-target setting found (within `ec2_budget` when
    given), until it stops moving."""
    mode = runner.mode
    most = most_pod_ips(runner.trace, mode)
    k = max(2, runner.jobs)
    last_best = None
    for _ in range(MAX_REFINE_ROUNDS):
        runs = {label: f.result() for label, f in runner.static_runs.items()}
        ip_runs = {label: r for label, r in runs.items() if label in envs and _ip_point(envs[label]) is not None}
        if not ip_runs:
            return
        best = feasible_best(ip_runs, max_waits, ec2_budget)
        if ec2_budget is not None and feasible_best(runs, max_waits, ec2_budget) is not best:
            return  # within the budget, whole ENIs or prefixes beat every IP-target setting (or none fits)
        point = _ip_point(envs[best.metrics.settings]) if best.metrics.settings in envs else None
        if point is None or point == last_best:
            return
        last_best = point
        tried = [p for p in (_ip_point(envs[label]) for label in ip_runs) if p is not None]
        new = sorted(
            {(w, distinct_minimum(m, mode, most)) for w, m in refinements(point, tried, k)} - set(tried),
        )
        new = [p for p in new if is_safe(ip_env(*p), mode)]
        if not new:
            return
        for w, m in new:
            env = ip_env(w, m)
            envs[settings_of(StaticStrategy(env).initial_env(mode))] = env
            runner.static(env)


def _uniform_run(strategy: PerNodeStaticStrategy, runs: Mapping[str, RunResult]) -> Future[RunResult] | None:
    """The run already made when every node got the same setting."""
    labels = {settings_of(env) for env in strategy.envs.values()}
    if len(labels) != 1:
        return None
    run = runs.get(labels.pop())
    if run is None:
        return None
    done: Future[RunResult] = Future()
    done.set_result(run)
    return done


def _renamed(run: RunResult, name: str) -> RunResult:
    return RunResult(dataclasses.replace(run.metrics, name=name), run.series, run.per_node)


def _per_group_strategies(
    runs: Mapping[str, RunResult], envs: Mapping[str, Mapping[str, str]], max_waits: float, mode: IpMode
) -> tuple[PerNodeStaticStrategy, PerNodeStaticStrategy]:
    labels = sorted(runs)
    env_of = {label: dict(envs[label]) if label in envs else _env_of_label(label) for label in labels}
    nodes = sorted({n for r in runs.values() for n in r.per_node})
    by_node: dict[str, dict[str, tuple[float, int]]] = {n: {} for n in nodes}
    by_type: dict[str, dict[str, tuple[float, int]]] = defaultdict(dict)
    type_of: dict[str, str] = {}
    for label in labels:
        sums: dict[str, list[float]] = defaultdict(lambda: [0.0, 0])
        for n, o in runs[label].per_node.items():
            by_node[n][label] = (o.idle_ip_seconds, o.waited_pods)
            type_of[n] = o.instance_type
            s = sums[o.instance_type]
            s[0] += o.idle_ip_seconds
            s[1] += o.waited_pods
        for t, (idle, waited) in sums.items():
            by_type[t][label] = (idle, int(waited))
    node_choice = choose_per_group(by_node, max_waits)
    type_choice = choose_per_group(by_type, max_waits)
    per_node = PerNodeStaticStrategy(
        "best_static_per_node", {n: env_of[label] for n, label in node_choice.items()}, None
    )
    per_type = PerNodeStaticStrategy("best_static_per_type", {n: env_of[type_choice[type_of[n]]] for n in nodes}, None)
    return per_type, per_node


def _env_of_label(label: str) -> dict[str, str]:
    return dict(item.split("=", 1) for item in label.split(",") if item)
