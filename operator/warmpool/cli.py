"""The `warmpool` command line: run the operator, print the CRD, run a local control plane, simulate."""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path
from typing import Any

import click

from warmpool.api.crd import render_crd_yaml
from warmpool.sim.cli import simulate


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.version_option(package_name="warmpool-operator")
def main() -> None:
    """warmpool keeps the AWS VPC CNI's warm IP pools right-sized from observed churn."""


@main.command()
@click.option("--kubeconfig", type=click.Path(dir_okay=False), help="Kubeconfig; in-cluster config when unset.")
@click.option("--peering", help="kopf peering name for hot standby (leader election); standalone when unset.")
@click.option("--liveness-port", type=int, help="Port of the /healthz liveness endpoint (0 disables).")
@click.option("--metrics-port", type=int, help="Port of the Prometheus /metrics endpoint (0 disables).")
@click.option("--log-format", type=click.Choice(["text", "json"]), help="Log line format.")
@click.option("--log-level", type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"]), help="Log level.")
@click.option("--ec2-endpoint-url", help="Override the EC2 endpoint (for tests against moto).")
def run(**flags: Any) -> None:
    """Run the operator (cluster-wide). Flags override WARMPOOL_* environment variables."""
    from warmpool.runner import run_operator
    from warmpool.settings import Settings

    overrides = {k: v for k, v in flags.items() if v is not None}
    settings = Settings(**overrides)
    run_operator(settings)


@main.command()
def crd() -> None:
    """Print the WarmPoolPolicy CustomResourceDefinition (generated from the API models)."""
    click.echo(render_crd_yaml(), nl=False)


def _state_file() -> Path:
    root = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "warmpool" / "dev-cluster"
    root.mkdir(parents=True, exist_ok=True)
    return root / "state.json"


@main.group("dev-cluster")
def dev_cluster() -> None:
    """A real etcd + kube-apiserver on loopback, built from Go modules (for demos and tests)."""
    try:
        import warmpool_dev  # noqa: F401
    except ImportError as error:
        raise click.ClickException(
            "`warmpool dev-cluster` needs the development harness, which is not part of the operator's package: "
            "from a checkout, run `make setup` (or `pip install -e dev/`)"
        ) from error


@dev_cluster.command("up")
@click.option("--install-crd/--no-install-crd", default=True, help="Apply the WarmPoolPolicy CRD.")
@click.option(
    "--nodes",
    type=click.IntRange(min=0),
    default=3,
    show_default=True,
    help="KWOK fake nodes, each with an EC2 instance in a moto server, plus the aws-node DaemonSet (0: none "
    "of that, only the control plane).",
)
@click.option("--pods-per-node", type=click.IntRange(min=0), default=4, show_default=True)
@click.option("--instance-type", default="m5.large", show_default=True)
@click.option(
    "--eks-addon", is_flag=True, help="aws-node as the EKS managed add-on, with a local EKS add-on API endpoint."
)
def dev_cluster_up(install_crd: bool, nodes: int, pods_per_node: int, instance_type: str, eks_addon: bool) -> None:
    """Build (once) and start the control plane in the background, with a small fleet; print how to use it."""
    from warmpool_dev.devcluster.cluster import ClusterState, DevCluster, free_port, stop_detached
    from warmpool_dev.e2e.fleet import FleetSpec, start_detached

    state_file = _state_file()
    if state_file.exists():
        state = ClusterState.load(state_file)
        raise click.ClickException(f"a dev cluster is already up ({state.server}); run `warmpool dev-cluster down`")
    cluster = DevCluster(keep_workdir=True)
    state = cluster.start(detach=True)
    try:
        if install_crd:
            crd_file = Path(state.workdir) / "crd.yaml"
            crd_file.write_text(render_crd_yaml())
            cluster.install_crd(crd_file, "warmpoolpolicies.warmpool.io")
        if nodes:
            spec = FleetSpec(nodes=nodes, pods_per_node=pods_per_node, instance_type=instance_type, eks_addon=eks_addon)
            info = start_detached(state, spec)
            click.echo(
                f"{nodes} KWOK nodes ({instance_type}, {pods_per_node} pods each), aws-node, EC2 at "
                f"{info.ec2_endpoint_url}" + (f", EKS add-on API at {info.eks_endpoint_url}" if eks_addon else ""),
                err=True,
            )
    except BaseException:
        stop_detached(state)
        raise
    # Ports of their own for `warmpool run`, so a local run does not collide with 8080/9090 already in use.
    state.env.update(WARMPOOL_LIVENESS_PORT=str(free_port()), WARMPOOL_METRICS_PORT=str(free_port()))
    state.save(state_file)
    click.echo(f"dev cluster up at {state.server}", err=True)
    _print_env(state)


@dev_cluster.command("env")
def dev_cluster_env() -> None:
    """Print shell exports (KUBECONFIG, PATH with kubectl) for the running dev cluster."""
    from warmpool_dev.devcluster.cluster import ClusterState

    state_file = _state_file()
    if not state_file.exists():
        raise click.ClickException("no dev cluster is up; run `warmpool dev-cluster up`")
    _print_env(ClusterState.load(state_file))


@dev_cluster.command("down")
def dev_cluster_down() -> None:
    """Stop the dev cluster and delete its data."""
    from warmpool_dev.devcluster.cluster import ClusterState, stop_detached

    state_file = _state_file()
    if not state_file.exists():
        click.echo("no dev cluster is up", err=True)
        return
    stop_detached(ClusterState.load(state_file))
    state_file.unlink()
    click.echo("dev cluster stopped", err=True)


def _print_env(state: Any) -> None:
    click.echo(f"export KUBECONFIG={state.admin_kubeconfig}")
    click.echo(f"export WARMPOOL_OPERATOR_KUBECONFIG={state.operator_kubeconfig}")
    click.echo(f'export PATH="{state.bin_dir}:$PATH"')
    for name, value in sorted(state.env.items()):  # the dev fleet's EC2 endpoint and dummy credentials
        click.echo(f"export {name}={shlex.quote(value)}")


main.add_command(simulate)


def _dev_harness_missing(name: str) -> click.Command:
    @click.command(name, context_settings={"ignore_unknown_options": True, "allow_extra_args": True})
    def missing() -> None:
        """(development only: needs the warmpool-dev harness from a checkout)"""
        raise click.ClickException(
            f"`warmpool {name}` needs the development harness, which is not part of the operator's package: "
            "from a checkout, run `make setup` (or `pip install -e dev/`)"
        )

    return missing


try:  # the demo lives in the dev-only harness (dev/warmpool_dev), present in a checkout after `make setup`
    from warmpool_dev.e2e.demo import demo
except ImportError:
    demo = _dev_harness_missing("demo")
main.add_command(demo)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
