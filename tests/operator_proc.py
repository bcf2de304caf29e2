"""Runs `warmpool run` as a real subprocess against the test control plane, with the operator's own RBAC."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from pathlib import Path

from warmpool_dev.devcluster.cluster import free_port


class OperatorProcess:
    def __init__(self, kubeconfig: str, env: dict[str, str] | None = None) -> None:
        self.kubeconfig = kubeconfig
        self.env = env or {}
        self.liveness_port = free_port()
        self.metrics_port = free_port()
        self.log = Path(tempfile.mkstemp(prefix="warmpool-operator-", suffix=".log")[1])
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> OperatorProcess:
        env = {**os.environ, **self.env, "PYTHONUNBUFFERED": "1"}
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "warmpool.cli",
                    "run",
                    f"--kubeconfig={self.kubeconfig}",
                    f"--liveness-port={self.liveness_port}",
                    f"--metrics-port={self.metrics_port}",
                    "--log-level=DEBUG",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=env,
            )
        return self

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30) -> int:
        if self.proc is None:
            return 0
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        code = self.proc.returncode
        self.proc = None
        return code

    def logs(self) -> str:
        return self.log.read_text(errors="replace")

    def __enter__(self) -> OperatorProcess:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
        self.log.unlink(missing_ok=True)
