"""The local control plane itself: starts in seconds, serves with RBAC, and leaves nothing behind."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from warmpool_dev.devcluster import binaries
from warmpool_dev.devcluster.cluster import ClusterState, DevCluster

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

    up = warmpool("up")
    assert up.returncode == 0, up.stderr
    state = ClusterState.load(tmp_path / "warmpool" / "dev-cluster" / "state.json")
    try:
        exports = warmpool("env").stdout
        assert f"export KUBECONFIG={state.admin_kubeconfig}" in exports
        crd = subprocess.run(
            [state.kubectl, f"--kubeconfig={state.admin_kubeconfig}", "get", "crd", "warmpoolpolicies.warmpool.io"],
            capture_output=True,
            text=True,
        )
        assert crd.returncode == 0, crd.stderr
        assert warmpool("up").returncode != 0  # one at a time
    finally:
        down = warmpool("down")
    assert down.returncode == 0
    assert not any(_alive(pid) for pid in state.pids.values())
    assert not Path(state.workdir).exists()
    assert warmpool("env").returncode != 0
