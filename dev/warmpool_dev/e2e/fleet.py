"""A small standing fleet for `warmpool dev-cluster up`: what an EKS cluster has that the bare control plane
lacks, so that a first `warmpool run` has something to plan from. It holds

- a moto EC2 server with one subnet and one instance per fake node (the nodes' providerIDs name them),
- the aws-node DaemonSet, shaped like EKS's,
- a handful of KWOK nodes with their instance type's real pod capacity, and bound pods on them,
- a stand-in for the DaemonSet controller that finishes aws-node rollouts,
- with `eks_addon`, the local EKS add-on endpoint, which applies aws-node as the vpc-cni managed add-on,
- an aws-node pod per node whose metrics endpoint is the project's ipamd model fed by that node's pods
  (`ipamd_models.py`), so `status.measured` has something to read (when this machine has a routable address,
  which the API server's pod proxy needs).

It runs as one detached process (`python -m warmpool_dev.e2e.fleet`) that starts KWOK as its child in its own
process group, writes what clients need (the EC2 endpoint) to a JSON file once everything is in place, and
stops everything on SIGTERM. `warmpool dev-cluster down` stops it by its process group.
"""

from __future__ import annotations

import argparse
import json
import signal
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from kubernetes import client, config

from warmpool_dev.e2e.ec2 import AWS_ENV, REGION, MotoEc2
from warmpool_dev.e2e.eks_addon import EksAddonEndpoint
from warmpool_dev.e2e.ipamd_models import IpamdModels
from warmpool_dev.e2e.kube import (
    AWS_NODE_ENV,
    aws_node_daemonset,
    container_env,
    mark_rollout_complete,
    node_body,
    pod_body,
)
from warmpool_dev.e2e.procs import ManagedProcess, kwok_process

DS_NAMESPACE = "kube-system"
EKS_CLUSTER = "dev"
WORKLOAD_NAMESPACE = "demo"


@dataclass(frozen=True)
class FleetSpec:
    nodes: int = 3
    pods_per_node: int = 4
    instance_type: str = "m5.large"
    zone: str = "us-east-1a"
    eks_addon: bool = False  # aws-node comes from a local EKS add-on endpoint (field manager eks)


@dataclass(frozen=True)
class FleetInfo:
    """Written to the ready file once the fleet is in place; the dev-cluster state keeps it."""

    ec2_endpoint_url: str
    region: str
    nodes: list[str]
    kwok_pid: int
    eks_endpoint_url: str = ""
    ipamd_metrics_port: int = 0  # the stand-in ipamd endpoints' port; 0 when they could not run here

    def client_env(self) -> dict[str, str]:
        """What `warmpool run` (and boto3 in a shell) need to reach the fleet's EC2 (and EKS) and nothing real."""
        env = {**AWS_ENV, "WARMPOOL_EC2_ENDPOINT_URL": self.ec2_endpoint_url, "WARMPOOL_AWS_REGION": self.region}
        if self.eks_endpoint_url:
            env.update(WARMPOOL_EKS_ENDPOINT_URL=self.eks_endpoint_url, WARMPOOL_EKS_CLUSTER_NAME=EKS_CLUSTER)
        if self.ipamd_metrics_port:
            env.update(WARMPOOL_IPAMD_METRICS_PORT=str(self.ipamd_metrics_port))
        return env


def populate(api: client.ApiClient, moto: MotoEc2, spec: FleetSpec) -> list[str]:
    """Create the EC2 side and the Kubernetes side of the fleet; returns the node names."""
    moto.create_network([spec.zone])
    instance_ids = moto.run_instances(spec.instance_type, spec.zone, spec.nodes) if spec.nodes else []
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)
    if not spec.eks_addon:  # else the add-on endpoint has applied it, as EKS would
        apps.create_namespaced_daemon_set(DS_NAMESPACE, aws_node_daemonset(DS_NAMESPACE))
    core.create_namespace({"metadata": {"name": WORKLOAD_NAMESPACE}})
    names = []
    for i, instance_id in enumerate(instance_ids):
        name = f"node-{i + 1}"
        core.create_node(node_body(name, spec.instance_type, spec.zone, instance_id))
        names.append(name)
    for name in names:
        for j in range(spec.pods_per_node):
            core.create_namespaced_pod(WORKLOAD_NAMESPACE, pod_body(f"app-{name}-{j + 1}", WORKLOAD_NAMESPACE, name))
    mark_rollout_complete(api, DS_NAMESPACE, len(names))
    return names


def finish_rollouts(
    api: client.ApiClient,
    nodes: int,
    stop: threading.Event,
    delay: float = 3.0,
    models: IpamdModels | None = None,
) -> None:
    """The DaemonSet controller's part: a changed aws-node template has rolled out `delay` seconds later (and
    the ipamd models restart with its env)."""
    apps = client.AppsV1Api(api)
    while not stop.wait(1.0):
        try:
            ds = apps.read_namespaced_daemon_set("aws-node", DS_NAMESPACE)
            if (ds.status.observed_generation or 0) < (ds.metadata.generation or 0) and not stop.wait(delay):
                mark_rollout_complete(api, DS_NAMESPACE, nodes)
                if models is not None:
                    models.restart(container_env(ds))
        except client.ApiException as error:
            print(f"rollout stand-in: {error.status} {error.reason}", file=sys.stderr, flush=True)
        except OSError as error:  # the API server going down first on `down` is expected
            print(f"rollout stand-in: {error}", file=sys.stderr, flush=True)


def serve(kubeconfig: str, bin_dir: Path, workdir: Path, ready_file: Path, spec: FleetSpec) -> None:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    cfg = client.Configuration()
    config.load_kube_config(config_file=kubeconfig, client_configuration=cfg)
    api = client.ApiClient(cfg)
    moto = MotoEc2()
    kwok: ManagedProcess | None = None
    addon: EksAddonEndpoint | None = None
    models: IpamdModels | None = None
    try:
        moto.start()
        kwok = kwok_process(bin_dir, kubeconfig, workdir).start()
        try:
            env = {e["name"]: e["value"] for e in AWS_NODE_ENV if "value" in e}
            models = IpamdModels(api, WORKLOAD_NAMESPACE, DS_NAMESPACE, env).start()
        except RuntimeError as error:  # no routable address: the fleet runs, status.measured says Missing
            print(f"no stand-in ipamd metrics: {error}", file=sys.stderr, flush=True)
        if spec.eks_addon:
            addon = EksAddonEndpoint(api, cluster=EKS_CLUSTER, region=REGION, namespace=DS_NAMESPACE).start()
        names = populate(api, moto, spec)
        info = FleetInfo(
            ec2_endpoint_url=moto.endpoint_url,
            region=REGION,
            nodes=names,
            kwok_pid=kwok.pid,
            eks_endpoint_url=addon.endpoint_url if addon else "",
            ipamd_metrics_port=models.port if models else 0,
        )
        tmp = ready_file.with_suffix(".tmp")
        tmp.write_text(json.dumps(asdict(info)))
        tmp.replace(ready_file)  # readers never see half a file
        finish_rollouts(api, len(names), stop, models=models)
    finally:
        if models is not None:
            models.stop()
        if addon is not None:
            addon.stop()
        if kwok is not None:
            kwok.stop()
        moto.stop()
        api.close()


def load_info(ready_file: Path) -> FleetInfo:
    return FleetInfo(**json.loads(ready_file.read_text()))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--bin-dir", required=True, type=Path)
    parser.add_argument("--workdir", required=True, type=Path)
    parser.add_argument("--ready-file", required=True, type=Path)
    parser.add_argument("--nodes", type=int, default=FleetSpec.nodes)
    parser.add_argument("--pods-per-node", type=int, default=FleetSpec.pods_per_node)
    parser.add_argument("--instance-type", default=FleetSpec.instance_type)
    parser.add_argument("--eks-addon", action="store_true")
    args = parser.parse_args(argv)
    spec = FleetSpec(
        nodes=args.nodes, pods_per_node=args.pods_per_node, instance_type=args.instance_type, eks_addon=args.eks_addon
    )
    serve(args.kubeconfig, args.bin_dir, args.workdir, args.ready_file, spec)


def spawn_args(state: Any, ready_file: Path, spec: FleetSpec) -> list[str]:
    """The command line of a detached fleet for a running dev cluster (`ClusterState`)."""
    return [
        sys.executable,
        "-m",
        "warmpool_dev.e2e.fleet",
        f"--kubeconfig={state.admin_kubeconfig}",
        f"--bin-dir={state.bin_dir}",
        f"--workdir={state.workdir}",
        f"--ready-file={ready_file}",
        f"--nodes={spec.nodes}",
        f"--pods-per-node={spec.pods_per_node}",
        f"--instance-type={spec.instance_type}",
        *(["--eks-addon"] if spec.eks_addon else []),
    ]


def start_detached(state: Any, spec: FleetSpec, timeout: float = 60.0) -> FleetInfo:
    """Start the fleet beside a running dev cluster and wait until it is in place. Records its pid (a process
    group of its own, KWOK inside) in `state.pids` and what clients need in `state.env`."""
    workdir = Path(state.workdir)
    ready_file = workdir / "fleet.json"
    with (workdir / "fleet.log").open("ab") as log:
        proc = subprocess.Popen(
            spawn_args(state, ready_file, spec),
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    state.pids["fleet"] = proc.pid
    deadline = time.monotonic() + timeout
    while not ready_file.exists():
        if proc.poll() is not None:
            tail = (workdir / "fleet.log").read_text(errors="replace")[-3000:]
            raise RuntimeError(f"the dev fleet exited with {proc.returncode}:\n{tail}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the dev fleet was not in place after {timeout:.0f}s (log: {workdir / 'fleet.log'})")
        time.sleep(0.2)
    info = load_info(ready_file)
    state.pids["kwok"] = info.kwok_pid  # stopped first, should the fleet itself not get to it
    state.env = info.client_env()
    return info


if __name__ == "__main__":
    main()
