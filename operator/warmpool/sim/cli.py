"""`warmpool simulate`: compare warmpool with static settings and the bounds on one trace."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import IO, Any

import click

from warmpool.api.manifest import PolicyFileError, read_policy
from warmpool.api.v1alpha1 import WarmPoolPolicySpec
from warmpool.aws.instance_table import FALLBACK_LIMITS
from warmpool.ipamd.env import TARGET_NAMES, go_atoi
from warmpool.ipamd.limits import IpMode
from warmpool.sim import baselines
from warmpool.sim.engine import EngineConfig, RunResult, StaticStrategy
from warmpool.sim.report import format_table, plot, report_json
from warmpool.sim.scenarios import SCENARIOS, generate
from warmpool.sim.strategies import PlannerStrategy, clairvoyant
from warmpool.sim.trace import HORIZON_SECONDS, MAX_NODES_PRESENT, Trace, TraceError, read_trace

DEFAULT_SCENARIO = "batch"
DAY = 86400.0


class InputError(click.ClickException):
    """Bad input: one line `WHERE: what is wrong` on stderr (WHERE is FILE:LINE or the option) and exit code 2,
    click's code for bad usage."""

    exit_code = 2

    def show(self, file: IO[Any] | None = None) -> None:
        click.echo(self.format_message(), file=file, err=file is None)


def parse_static(text: str) -> dict[str, str]:
    """'WARM_IP_TARGET=2,MINIMUM_IP_TARGET=5' -> env entries, each one of the four targets, once, with a value
    ipamd reads as written (Go's strconv.Atoi) and is not negative. Raises ValueError saying what to type."""
    example = "e.g. 'WARM_IP_TARGET=2,MINIMUM_IP_TARGET=5'"
    if ";" in text:
        raise ValueError(f"{text!r}: separate settings with ',' not ';' ({example})")
    if not text.strip():
        raise ValueError(f"empty: give NAME=VALUE pairs separated by ',' ({example})")
    env: dict[str, str] = {}
    for part in text.split(","):
        name, sep, value = part.strip().partition("=")
        if not part.strip():
            raise ValueError(f"{text!r}: an empty setting between commas ({example})")
        if not sep or name not in TARGET_NAMES:
            raise ValueError(f"{part.strip()!r}: expected NAME=VALUE with NAME one of {', '.join(TARGET_NAMES)}")
        if name in env:
            raise ValueError(f"{name} is given twice")
        number = go_atoi(value)
        shown = value if len(value) <= 40 else value[:37] + "..."
        if value == "":
            raise ValueError(f"{name} has no value: give a whole number (e.g. {name}=2)")
        if number is None and value.lstrip("+-").isdigit() and value.isascii():
            raise ValueError(
                f"{name}={shown}: above Go's int64 maximum 9223372036854775807; ipamd would silently use its "
                "default (e.g. 2)"
            )
        if number is None:
            raise ValueError(
                f"{name}={shown!r}: not a whole decimal number, which is all ipamd reads; it would silently use "
                f"its default (e.g. {name}=2)"
            )
        if number < 0:
            raise ValueError(f"{name}={value}: negative; ipamd would silently use its default (e.g. {name}=2)")
        env[name] = value
    return env


def load_policy(path: str) -> WarmPoolPolicySpec:
    """The spec of a WarmPoolPolicy manifest, validated as the API server would; InputError names the line."""
    try:
        return read_policy(path)
    except PolicyFileError as exc:
        raise InputError(f"{path}:{exc.line}: {exc.reason}") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None


def load_trace(path: str) -> Trace:
    try:
        return read_trace(path, instance_types=FALLBACK_LIMITS)
    except TraceError as exc:
        raise InputError(f"{path}:{exc.line}: {exc.reason}") from None
    except OSError as exc:
        raise InputError(f"{path}: cannot read: {exc.strerror or exc}") from None


def run_all(
    trace: Trace,
    mode: IpMode,
    spec: WarmPoolPolicySpec,
    statics: tuple[dict[str, str], ...],
    jobs: int = 1,
    seed: int = 1,
) -> dict[str, RunResult]:
    """warmpool, the default, the user's static settings and the hindsight baselines, on `jobs` processes.
    The baselines meet the default's service level: its waits plus one per thousand pod starts."""
    config = EngineConfig(seed=seed, split_at=DAY if trace.duration > DAY else None)
    with baselines.Runner(trace, mode, config, jobs) as runner:
        warmpool = runner.submit(PlannerStrategy(spec))  # the longest run goes first
        default = runner.static(None)
        user = {StaticStrategy(env).name: runner.static(env) for env in statics}
        budget = spec.churn.ec2_calls_per_node_hour
        baselines.start(runner, ec2_budget=budget)
        oracle = clairvoyant(trace, mode, config)
        reference = default.result().metrics
        found = baselines.search(
            runner,
            reference.waited_pods + baselines.allowance(trace.pod_starts),
            [dict(env) for env in statics],
            ec2_budget=budget,
        )
        results: dict[str, RunResult] = {"warmpool": warmpool.result(), "default": default.result()}
        results.update((name, future.result()) for name, future in user.items())
    results["best_static"] = found.best_static
    results["best_static_per_type"] = found.best_static_per_type
    results["best_static_per_node"] = found.best_static_per_node
    if found.best_static_in_budget is not None:
        results["best_static_in_budget"] = found.best_static_in_budget
    oracle.metrics.node_hours = reference.node_hours
    results["clairvoyant"] = oracle
    return results


def _statics(texts: tuple[str, ...]) -> tuple[dict[str, str], ...]:
    parsed: list[dict[str, str]] = []
    for text in texts:
        try:
            env = parse_static(text)
        except ValueError as exc:
            raise InputError(f"--static: {exc}") from None
        if env in parsed:
            raise InputError(f"--static: {text!r} is given twice")
        parsed.append(env)
    return tuple(parsed)


@click.command("simulate")
@click.option(
    "--scenario", type=click.Choice(sorted(SCENARIOS)), help=f"Generated scenario (default {DEFAULT_SCENARIO})."
)
@click.option("--trace", "trace_file", type=click.Path(dir_okay=False), help="A JSON Lines churn trace.")
@click.option("--policy", type=click.Path(dir_okay=False), help="WarmPoolPolicy manifest (YAML) for warmpool.")
@click.option("--mode", type=click.Choice([m.value for m in IpMode]), default="secondary", show_default=True)
@click.option(
    "--static", "statics", multiple=True, help="Extra static setting, e.g. 'WARM_IP_TARGET=2,MINIMUM_IP_TARGET=5'."
)
@click.option("--json", "as_json", is_flag=True, help="Print the JSON report instead of the table.")
@click.option("--plot", "plot_file", type=click.Path(dir_okay=False), help="Write a PNG of IPs held vs in use.")
@click.option("--seed", type=int, default=1, show_default=True, help="Seed of the generated scenario.")
@click.option(
    "--nodes",
    type=click.IntRange(min=1, max=MAX_NODES_PRESENT),
    help="Nodes of the generated scenario (its default if unset).",
)
@click.option(
    "--hours",
    type=click.FloatRange(min=0, min_open=True, max=HORIZON_SECONDS / 3600),
    help="Hours of the generated scenario (at most 30 days).",
)
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
    static setting in hindsight and a clairvoyant lower bound; print what each costs.

    Bad input (a trace or policy line, a --static string) is reported as one line, FILE:LINE: what is wrong,
    with exit code 2."""
    if scenario and trace_file:
        raise click.UsageError("give --scenario or --trace, not both")
    sizes = {k: v for k, v in (("nodes", nodes), ("hours", hours)) if v is not None}
    if trace_file and sizes:
        raise click.UsageError("--nodes and --hours size a generated scenario, not a --trace")
    if hours is not None and not math.isfinite(hours):  # click's range lets NaN through
        raise InputError(f"--hours: {hours} is not a number of hours (e.g. 24)")
    # Everything the user gave is checked before the (long) simulation starts.
    static_envs = _statics(statics)
    if plot_file and not Path(plot_file).resolve().parent.is_dir():
        raise InputError(f"--plot: cannot write {plot_file}: no such directory")
    spec = load_policy(policy) if policy else WarmPoolPolicySpec()
    trace = load_trace(trace_file) if trace_file else generate(scenario or DEFAULT_SCENARIO, seed, **sizes)
    ip_mode = IpMode(mode)
    try:
        results = run_all(trace, ip_mode, spec, static_envs, jobs, seed)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(report_json(trace, ip_mode, results), indent=2))
    else:
        click.echo(format_table(trace, ip_mode, results))
    if plot_file:
        try:
            plot(results, plot_file, title=f"{trace.meta.get('scenario', 'trace')} ({ip_mode.value} mode)")
        except OSError as exc:
            raise InputError(f"--plot: cannot write {plot_file}: {exc.strerror or exc}") from None
        if not as_json:
            click.echo(f"plot written to {plot_file}")
