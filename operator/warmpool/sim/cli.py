"""`warmpool simulate`: compare warmpool with static settings and the bounds on one trace."""

from __future__ import annotations

import json
from pathlib import Path

import click
import yaml

from warmpool.api.v1alpha1 import WarmPoolPolicy, WarmPoolPolicySpec
from warmpool.ipamd.limits import IpMode
from warmpool.sim.engine import RunResult, StaticStrategy
from warmpool.sim.engine import simulate as run_strategy
from warmpool.sim.report import format_table, plot, report_json
from warmpool.sim.scenarios import SCENARIOS, generate
from warmpool.sim.strategies import PlannerStrategy, best_static, clairvoyant
from warmpool.sim.trace import Trace, TraceError, read_trace

DEFAULT_SCENARIO = "batch"


def load_policy(path: str) -> WarmPoolPolicySpec:
    """A WarmPoolPolicy manifest, or just its spec, from YAML."""
    data = yaml.safe_load(Path(path).read_text())
    if not isinstance(data, dict):
        raise click.BadParameter(f"{path}: not a YAML mapping", param_hint="--policy")
    if "spec" in data or "kind" in data:
        return WarmPoolPolicy.model_validate(data).spec
    return WarmPoolPolicySpec.model_validate(data)


def run_all(trace: Trace, mode: IpMode, spec: WarmPoolPolicySpec, statics: tuple[str, ...]) -> dict[str, RunResult]:
    results: dict[str, RunResult] = {}
    results["warmpool"] = run_strategy(trace, PlannerStrategy(spec), mode)
    results["default"] = run_strategy(trace, StaticStrategy(), mode)
    for text in statics:
        strategy = StaticStrategy(text)
        results[strategy.name] = run_strategy(trace, strategy, mode)
    # Hindsight's best at warmpool's service level: as few idle IPs as possible with no more pods waiting.
    results["best_static"], _ = best_static(trace, mode, results["warmpool"].metrics.waited_pods)
    results["clairvoyant"] = clairvoyant(trace, mode)
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
def simulate(
    scenario: str | None,
    trace_file: str | None,
    policy: str | None,
    mode: str,
    statics: tuple[str, ...],
    as_json: bool,
    plot_file: str | None,
    seed: int,
) -> None:
    """Replay pod churn through a model of ipamd under warmpool, AWS's default, static settings, the best
    static setting in hindsight and a clairvoyant lower bound; print what each costs."""
    if scenario and trace_file:
        raise click.UsageError("give --scenario or --trace, not both")
    try:
        trace = read_trace(trace_file) if trace_file else generate(scenario or DEFAULT_SCENARIO, seed)
    except TraceError as exc:
        raise click.ClickException(f"{trace_file}: {exc}") from None
    spec = load_policy(policy) if policy else WarmPoolPolicySpec()
    ip_mode = IpMode(mode)
    try:
        results = run_all(trace, ip_mode, spec, statics)
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
