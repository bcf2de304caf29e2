"""The local control plane itself: starts in seconds, serves with RBAC, and leaves nothing behind."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import boto3
import pytest

from tests.kube import wait_for
from warmpool.measured.exposition import parse_ipamd_metrics
from warmpool_dev.devcluster import binaries
from warmpool_dev.devcluster.cluster import ClusterState, DevCluster
from warmpool_dev.e2e.ipamd_metrics import routable_host_ip

pytestmark = pytest.mark.integration


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it is gone for our purpose once reaped or defunct.
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().split()[2] != "Z"


def test_cluster_stops_without_orphans_or_leftovers() -> None:
    dev = DevCluster()
    state = dev.start()
    workdir = Path(state.workdir)
    assert workdir.is_dir()
    assert dev.kubectl("get", "--raw", "/readyz").stdout.strip() == "ok"
    # RBAC is on: the operator identity may not do what the admin may.
    assert dev.kubectl("auth", "can-i", "create", "namespaces", operator=True, check=False).stdout.strip() == "no"
    assert dev.kubectl("auth", "can-i", "create", "namespaces").stdout.strip() == "yes"
    pids = dict(state.pids)
    dev.stop()
    assert not any(_alive(pid) for pid in pids.values()), pids
    assert not workdir.exists()


def test_cli_up_env_down(tmp_path: Path) -> None:
    # A cache home of its own for the state file; the already built binaries are passed in, not rebuilt.
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path), "WARMPOOL_CONTROL_PLANE_BIN": str(binaries.bin_dir())}

    def warmpool(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "warmpool.cli", "dev-cluster", *args], env=env, capture_output=True, text=True
        )

    up = warmpool("up", "--nodes=2", "--pods-per-node=3", "--eks-addon")
    assert up.returncode == 0, up.stderr
    state = ClusterState.load(tmp_path / "warmpool" / "dev-cluster" / "state.json")
    try:
        exports = warmpool("env").stdout
        assert f"export KUBECONFIG={state.admin_kubeconfig}" in exports
        endpoint = re.search(r"^export WARMPOOL_EC2_ENDPOINT_URL=(\S+)$", exports, re.M)
        assert endpoint, exports

        def kubectl(*args: str) -> str:
            done = subprocess.run(
                [state.kubectl, f"--kubeconfig={state.admin_kubeconfig}", *args], capture_output=True, text=True
            )
            assert done.returncode == 0, done.stderr
            return done.stdout

        kubectl("get", "crd", "warmpoolpolicies.warmpool.io")
        assert kubectl("get", "daemonset", "-n", "kube-system", "aws-node", "-o", "name") == "daemonset.apps/aws-node\n"
        nodes = json.loads(kubectl("get", "nodes", "-o", "json"))["items"]
        pods = json.loads(kubectl("get", "pods", "-n", "demo", "-o", "json"))["items"]
        assert len(nodes) == 2
        assert sorted(p["spec"]["nodeName"] for p in pods) == sorted(
            n["metadata"]["name"] for n in nodes for _ in range(3)
        )
        # Each node's aws-node pod answers ipamd's metrics (the project's model) through the API server.
        port = re.search(r"^export WARMPOOL_IPAMD_METRICS_PORT=(\d+)$", exports, re.M)
        if routable_host_ip() is not None:
            assert port, exports
            for n in nodes:
                name = n["metadata"]["name"]
                path = f"/api/v1/namespaces/kube-system/pods/aws-node-{name}:{port.group(1)}/proxy/metrics"
                metrics = wait_for(lambda p=path: _get_raw(kubectl, p), f"ipamd metrics of {name}", timeout=30)
                assert parse_ipamd_metrics(metrics).assigned_ips == 3
        # Each node's providerID names an instance the dev EC2 endpoint knows, in a subnet of the node's zone.
        ec2 = boto3.client(
            "ec2",
            endpoint_url=endpoint.group(1),
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        ids = [n["spec"]["providerID"].rsplit("/", 1)[1] for n in nodes]
        found = ec2.describe_instances(InstanceIds=ids)["Reservations"]
        instances = [i for r in found for i in r["Instances"]]
        assert sorted(i["InstanceId"] for i in instances) == sorted(ids)
        assert {i["InstanceType"] for i in instances} == {"m5.large"}
        # With --eks-addon, aws-node is the managed add-on's (field manager eks) and its API answers.
        eks_url = re.search(r"^export WARMPOOL_EKS_ENDPOINT_URL=(\S+)$", exports, re.M)
        assert eks_url, exports
        assert "export WARMPOOL_EKS_CLUSTER_NAME=dev" in exports
        ds = json.loads(
            kubectl("get", "daemonset", "-n", "kube-system", "aws-node", "-o", "json", "--show-managed-fields")
        )
        assert "eks" in {m["manager"] for m in ds["metadata"]["managedFields"]}
        addon = boto3.client(
            "eks",
            endpoint_url=eks_url.group(1),
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        ).describe_addon(clusterName="dev", addonName="vpc-cni")["addon"]
        assert addon["status"] == "ACTIVE"
        assert warmpool("up").returncode != 0  # one at a time
    finally:
        down = warmpool("down")
    assert down.returncode == 0
    assert {"etcd", "kube-apiserver", "fleet", "kwok"} <= set(state.pids)
    assert not any(_alive(pid) for pid in state.pids.values())
    assert not Path(state.workdir).exists()
    assert warmpool("env").returncode != 0


def _get_raw(kubectl: Callable[..., str], path: str) -> str | None:
    try:
        return kubectl("get", "--raw", path)
    except AssertionError:  # not there yet: the aws-node pods come shortly after the nodes
        return None
