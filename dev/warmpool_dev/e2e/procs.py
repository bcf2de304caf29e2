"""Child processes of an e2e run (KWOK, the operator): each in its own session, logged to a file, stopped by pid."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from warmpool_dev.devcluster import binaries
from warmpool_dev.devcluster.cluster import free_port

KWOK_STAGES = Path("deploy/kwok/stages.yaml")


class ManagedProcess:
    def __init__(self, name: str, args: Sequence[str], log: Path, env: Mapping[str, str] | None = None) -> None:
        self.name = name
        self.args = list(args)
        self.log = log
        self.env = dict(env or {})
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.proc is not None, f"{self.name} is not running"
        return self.proc.pid

    def start(self) -> ManagedProcess:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                self.args,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env={**os.environ, **self.env},
                start_new_session=True,  # Ctrl-C in the terminal reaches us, and we stop the children in order
            )
        return self

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 20.0) -> int | None:
        proc, self.proc = self.proc, None
        if proc is None:
            return None
        if proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)
        return proc.returncode

    def tail(self, chars: int = 3000) -> str:
        return self.log.read_text(errors="replace")[-chars:] if self.log.exists() else ""


def kwok_process(bin_dir: Path, kubeconfig: str, workdir: Path) -> ManagedProcess:
    """KWOK managing only the nodes the churn driver labels, with the Stages from deploy/kwok."""
    from warmpool_dev.e2e.kube import KWOK_LABEL

    return ManagedProcess(
        "kwok",
        [
            str(bin_dir / "kwok"),
            f"--kubeconfig={kubeconfig}",
            "--manage-all-nodes=false",
            f"--manage-nodes-with-label-selector={KWOK_LABEL}=true",
            f"--config={binaries.repo_root() / KWOK_STAGES}",
            "--cidr=10.64.0.0/10",  # room for 30,000 pod IPs in the scale benchmark
            "--node-lease-duration-seconds=0",  # no Lease objects: no controller-manager would read them
        ],
        workdir / "kwok.log",
    )


def operator_process(kubeconfig: str, ec2_env: Mapping[str, str], workdir: Path) -> ManagedProcess:
    """`warmpool run` as its own ServiceAccount identity (the RBAC from deploy/), EC2 from moto."""
    return ManagedProcess(
        "operator",
        [
            sys.executable,
            "-m",
            "warmpool.cli",
            "run",
            f"--kubeconfig={kubeconfig}",
            f"--liveness-port={free_port()}",
            f"--metrics-port={free_port()}",
        ],
        workdir / "operator.log",
        env={**ec2_env, "PYTHONUNBUFFERED": "1"},
    )
