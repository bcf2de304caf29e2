"""`warmpool simulate`: compare warmpool with static settings and the bounds on one trace."""

from __future__ import annotations

import json
from pathlib import Path

import click
import yaml

from warmpool.api.v1alpha1 import WarmPoolPolicy, WarmPoolPolicySpec
from warmpool.ipamd.env import parse_settings
from warmpool.ipamd.limits import IpMode
from warmpool.sim import baselines
from warmpool.sim.engine import EngineConfig, RunResult, StaticStrategy
from warmpool.sim.report import format_table, plot, report_json
from warmpool.sim.scenarios import SCENARIOS, generate
from warmpool.sim.strategies import PlannerStrategy, clairvoyant
from warmpool.sim.trace import Trace, TraceError, read_trace

DEFAULT_SCENARIO = "batch"
DAY = 86400.0


def load_policy(path: str) -> WarmPoolPolicySpec:
    """A WarmPoolPolicy manifest, or just its spec, from YAML."""
    data = yaml.safe_load(Path(path).read_text())
    if not isinstance(data, dict):
        raise click.BadParameter(f"{path}: not a YAML mapping", param_hint="--policy")
    if "spec" in data or "kind" in data:
        return WarmPoolPolicy.model_validate(data).spec
    return WarmPoolPolicySpec.model_validate(data)


def run_all(
    trace: Trace, mode: IpMode, spec: WarmPoolPolicySpec, statics: tuple[str, ...], jobs: int = 1, seed: int = 1
) -> dict[str, RunResult]:
    """warmpool, the default, the user's static settings and the hindsight baselines, on `jobs` processes.
    The baselines meet the default's service level: its waits plus one per thousand pod starts."""
    config = EngineConfig(seed=seed, split_at=DAY if trace.duration > DAY else None)
    with baselines.Runner(trace, mode, config, jobs) as runner:
        warmpool = runner.submit(PlannerStrategy(spec))  # the longest run goes first
        default = runner.static(None)
        user = {StaticStrategy(text).name: runner.static(parse_settings(text)) for text in statics}
        baselines.start(runner)
        oracle = clairvoyant(trace, mode, config)
        reference = default.result().metrics
        found = baselines.search(
            runner,
            reference.waited_pods + baselines.allowance(trace.pod_starts),
            [parse_settings(text) for text in statics],
        )
        results: dict[str, RunResult] = {"warmpool": warmpool.result(), "default": default.result()}
        results.update((name, future.result()) for name, future in user.items())
    results["best_static"] = found.best_static
    results["best_static_per_type"] = found.best_static_per_type
    results["best_static_per_node"] = found.best_static_per_node
    oracle.metrics.node_hours = reference.node_hours
    results["clairvoyant"] = oracle
    return results


@click.command("simulate")
@click.option(
    "--scenario", type=click.Choice(sorted(SCENARIOS)), help=f"Generated scenario (default {DEFAULT_SCENARIO})."
)
@click.option("--trace", "trace_file", type=click.Path(exists=True, dir_okay=False), help="A JSON Lines churn trace.")
@click.option("--policy", type=click.Path(exists=True, dir_okay=False), help="WarmPoolPolicy YAML for warmpool.")
@click.option("--mode", type=click.Choice([m.value for m in IpMode]), default="secondary", show_default=True)
@click.option(
    "--static", "statics", multiple=True, help="Extra static setting, e.g. 'WARM_IP_TARGET=2,MINIMUM_IP_TARGET=5'."
)
@click.option("--json", "as_json", is_flag=True, help="Print the JSON report instead of the table.")
@click.option("--plot", "plot_file", type=click.Path(dir_okay=False), help="Write a PNG of IPs held vs in use.")
@click.option("--seed", type=int, default=1, show_default=True, help="Seed of the generated scenario.")
@click.option("--nodes", type=click.IntRange(min=1), help="Nodes of the generated scenario (its default if unset).")
@click.option("--hours", type=click.FloatRange(min=0, min_open=True), help="Hours of the generated scenario.")
@click.option(
    "--jobs",
    type=click.IntRange(min=1),
    default=baselines.default_jobs(),
    show_default="CPUs available",
    help="Worker processes: the strategies are independent runs.",
)
def simulate(
    scenario: str | None,
    trace_file: str | None,
    policy: str | None,
    mode: str,
    statics: tuple[str, ...],
    as_json: bool,
    plot_file: str | None,
    seed: int,
    nodes: int | None,
    hours: float | None,
    jobs: int,
) -> None:
    """Replay pod churn through a model of ipamd under warmpool, AWS's default, static settings, the best
    static setting in hindsight and a clairvoyant lower bound; print what each costs."""
    if scenario and trace_file:
        raise click.UsageError("give --scenario or --trace, not both")
    try:
        sizes = {k: v for k, v in (("nodes", nodes), ("hours", hours)) if v is not None}
        if trace_file and sizes:
            raise click.UsageError("--nodes and --hours size a generated scenario, not a --trace")
        trace = read_trace(trace_file) if trace_file else generate(scenario or DEFAULT_SCENARIO, seed, **sizes)
    except TraceError as exc:
        raise click.ClickException(f"{trace_file}: {exc}") from None
    spec = load_policy(policy) if policy else WarmPoolPolicySpec()
    ip_mode = IpMode(mode)
    try:
        results = run_all(trace, ip_mode, spec, statics, jobs, seed)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(report_json(trace, ip_mode, results), indent=2))
    else:
        click.echo(format_table(trace, ip_mode, results))
    if plot_file:
        plot(results, plot_file, title=f"{trace.meta.get('scenario', 'trace')} ({ip_mode.value} mode)")
        if not as_json:
            click.echo(f"plot written to {plot_file}")
