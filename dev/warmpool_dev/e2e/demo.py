"""`warmpool demo`: the whole loop on a laptop in a few minutes. Starts the local control plane (built from Go
modules on first use), moto EC2, KWOK, the aws-node DaemonSet and the operator with its own RBAC identity,
replays a churn scenario onto fake EKS nodes, prints the policy like `kubectl get wpp -w` until the operator
has retuned aws-node, compares with the simulator, and tears everything down."""

from __future__ import annotations

import time

import click

from warmpool.sim.scenarios import SCENARIOS, generate
from warmpool_dev.e2e.harness import KwokEnv, e2e_policy_spec
from warmpool_dev.e2e.scenario import Row, predict, run_scenario


@click.command()
@click.option("--scenario", type=click.Choice(sorted(SCENARIOS)), default="scale-out", show_default=True)
@click.option("--seed", type=int, default=1, show_default=True)
@click.option("--nodes", type=int, default=10, show_default=True, help="Nodes of the scenario's base fleet.")
@click.option("--speed", type=float, default=60.0, show_default=True, help="Trace seconds per wall second.")
@click.option("--quiet-period", default="30s", show_default=True, help="The policy's rollout.quietPeriod.")
@click.option("--timeout", type=float, default=900.0, show_default=True, help="Give up after this many seconds.")
def demo(scenario: str, seed: int, nodes: int, speed: float, quiet_period: str, timeout: float) -> None:
    """Run warmpool end to end against KWOK fake nodes under a replayed churn scenario (takes ~7 minutes)."""
    trace = generate(scenario, seed=seed, nodes=nodes)
    spec = e2e_policy_spec(quiet_period=quiet_period)
    click.echo(
        f"scenario {scenario} (seed {seed}): {len(trace.node_names)} nodes, {trace.pod_starts} pod starts over "
        f"{trace.duration / 3600:.1f} h, replayed at {speed:g}x ({trace.duration / speed:.0f} s)"
    )
    click.echo("the operator needs churn to stay low for 5 min after nodes join plus the quiet period before it acts")
    started = time.monotonic()
    with KwokEnv(log=lambda m: click.echo(f"-- {m}")) as env:
        click.echo(f"{'TIME':>7s}  {'NODES/PODS':<21s}{'APPLIED':<47s}{'RECOMMENDED':<51s}WHY")

        def show(row: Row) -> None:
            click.echo(row.line())

        result = run_scenario(env, trace, spec, speed, settle=10.0, timeout=timeout, on_row=show, log=click.echo)
        if not result.change_times:
            raise click.ClickException(f"the operator made no change within {timeout:.0f}s")
        click.echo(
            f"operator changed aws-node once, {result.change_times[0]:.0f}s into the replay: "
            f"{result.final_status.get('appliedSummary')} (DaemonSet generation {result.generations[0]} -> "
            f"{result.generations[1]})"
        )
        for when, settings in predict(result.realized, spec):
            click.echo(f"the simulator, on the same played trace and policy, changes at {when:.0f}s to {settings}")
        click.echo("-- stopping the operator, KWOK, moto and the control plane ...")
    click.echo(f"done in {time.monotonic() - started:.0f}s; nothing left running")
