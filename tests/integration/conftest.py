"""Session fixtures: one real control plane (etcd + kube-apiserver built from Go modules) for all tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from kubernetes import client, config

from tests.fixtures.moto import MotoEc2
from tests.kube import ensure_namespace, grant_target, unique
from tests.operator_proc import OperatorProcess
from warmpool_dev.devcluster.cluster import DevCluster

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.integration


@pytest.fixture(scope="session")
def cluster() -> Iterator[DevCluster]:
    dev = DevCluster()
    dev.start()
    try:
        dev.install_crd(REPO / "crds" / "warmpoolpolicies.yaml", "warmpoolpolicies.warmpool.io")
        yield dev
    finally:
        dev.stop()


@pytest.fixture(scope="session")
def admin_api(cluster: DevCluster) -> client.ApiClient:
    assert cluster.state is not None
    return config.new_client_from_config(config_file=cluster.state.admin_kubeconfig)


@pytest.fixture(scope="session")
def operator_api(cluster: DevCluster) -> client.ApiClient:
    assert cluster.state is not None
    return config.new_client_from_config(config_file=cluster.state.operator_kubeconfig)


@pytest.fixture
def namespace(admin_api: client.ApiClient) -> str:
    """A namespace of its own per test (no namespace controller runs, so it is left behind; names are unique).
    Its aws-node is a policy target: the operator may get and patch it there (deploy/'s target Role)."""
    name = unique("t")
    ensure_namespace(client.CoreV1Api(admin_api), name)
    grant_target(admin_api, name)
    return name


@pytest.fixture
def run_operator(cluster: DevCluster, moto_ec2: MotoEc2) -> Iterator[OperatorProcess]:
    """`warmpool run` as its own ServiceAccount identity, with EC2 served by moto. Not started yet."""
    assert cluster.state is not None
    operator = OperatorProcess(
        cluster.state.operator_kubeconfig,
        env={"WARMPOOL_EC2_ENDPOINT_URL": moto_ec2.endpoint_url, "WARMPOOL_AWS_REGION": "us-east-1"},
    )
    try:
        yield operator
    finally:
        operator.stop()
        operator.log.unlink(missing_ok=True)
