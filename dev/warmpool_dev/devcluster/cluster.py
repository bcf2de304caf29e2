"""A real etcd + kube-apiserver on loopback, for tests and the local demo.

No controller-manager or scheduler runs: tests create bound pods and write DaemonSet status themselves, which
is exactly the control they need. RBAC is on, and two static-token users exist: `admin` (system:masters) and
the operator's own ServiceAccount identity, bound only by deploy/kustomize/base/rbac.yaml and held by its
admission-policy.yaml, so the shipped RBAC and admission policies are exercised for real.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

import yaml

from warmpool_dev.devcluster import binaries
from warmpool_dev.devcluster.pki import Pki, create_pki

OPERATOR_NAMESPACE = "kube-system"
OPERATOR_SERVICE_ACCOUNT = "warmpool-operator"
OPERATOR_USER = f"system:serviceaccount:{OPERATOR_NAMESPACE}:{OPERATOR_SERVICE_ACCOUNT}"
RBAC_MANIFEST = Path("deploy/kustomize/base/rbac.yaml")
ADMISSION_MANIFEST = Path("deploy/kustomize/base/admission-policy.yaml")
CRD_MANIFEST = Path("crds/warmpoolpolicies.yaml")


class ClusterStartError(RuntimeError):
    pass


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class ClusterState:
    """Everything needed to use or stop a running dev cluster; saved as JSON by `warmpool dev-cluster up`."""

    workdir: str
    server: str
    etcd_url: str
    admin_kubeconfig: str
    operator_kubeconfig: str
    admin_token: str
    operator_token: str
    ca_file: str
    bin_dir: str
    pids: dict[str, int] = field(default_factory=dict)  # in start order; stopped in reverse
    env: dict[str, str] = field(default_factory=dict)  # what clients of extras (the dev fleet's EC2) need

    @property
    def kubectl(self) -> str:
        return str(Path(self.bin_dir) / "kubectl")

    def save(self, path: Path) -> None:
        path.write_text(json.dumps(asdict(self), indent=2))

    @classmethod
    def load(cls, path: Path) -> ClusterState:
        return cls(**json.loads(path.read_text()))


def _kubeconfig(server: str, ca_file: str, user: str, token: str) -> str:
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "warmpool-dev", "cluster": {"server": server, "certificate-authority": ca_file}}],
        "users": [{"name": user, "user": {"token": token}}],
        "contexts": [{"name": "warmpool-dev", "context": {"cluster": "warmpool-dev", "user": user}}],
        "current-context": "warmpool-dev",
    }
    return yaml.safe_dump(config)


class DevCluster:
    """Starts etcd and kube-apiserver; `stop()` ends both and removes the work directory."""

    def __init__(self, workdir: Path | None = None, bin_dir: Path | None = None, keep_workdir: bool = False):
        self._own_workdir = workdir is None
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="warmpool-dev-"))
        self.bin_dir = bin_dir
        self.keep_workdir = keep_workdir
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self.state: ClusterState | None = None

    # ----- lifecycle -----

    def start(self, detach: bool = False, timeout: float = 90.0) -> ClusterState:
        bin_dir = self.bin_dir or binaries.bin_dir()
        self.workdir.mkdir(parents=True, exist_ok=True)
        pki = create_pki(self.workdir)
        etcd_port, peer_port, api_port = free_port(), free_port(), free_port()
        etcd_url = f"http://127.0.0.1:{etcd_port}"
        admin_token, operator_token = secrets.token_hex(16), secrets.token_hex(16)
        tokens = self.workdir / "tokens.csv"
        tokens.write_text(
            f'{admin_token},admin,admin-uid,"system:masters"\n'
            f'{operator_token},{OPERATOR_USER},warmpool-operator-uid,"system:serviceaccounts,'
            f'system:serviceaccounts:{OPERATOR_NAMESPACE}"\n'
        )
        tokens.chmod(0o600)
        server = f"https://127.0.0.1:{api_port}"

        self._spawn(
            "etcd",
            [
                str(bin_dir / "etcd"),
                "--name=warmpool-dev",
                f"--data-dir={self.workdir / 'etcd'}",
                f"--listen-client-urls={etcd_url}",
                f"--advertise-client-urls={etcd_url}",
                f"--listen-peer-urls=http://127.0.0.1:{peer_port}",
                f"--initial-advertise-peer-urls=http://127.0.0.1:{peer_port}",
                f"--initial-cluster=warmpool-dev=http://127.0.0.1:{peer_port}",
                "--unsafe-no-fsync=true",  # a throw-away store: durability buys nothing, fsync costs seconds
                "--log-level=warn",
                "--quota-backend-bytes=4294967296",
            ],
            detach,
        )
        self._wait_http(f"{etcd_url}/health", timeout, name="etcd")
        self._spawn("kube-apiserver", self.apiserver_args(bin_dir, pki, etcd_url, api_port, tokens), detach)

        self.state = ClusterState(
            workdir=str(self.workdir),
            server=server,
            etcd_url=etcd_url,
            admin_kubeconfig=str(self.workdir / "admin.kubeconfig"),
            operator_kubeconfig=str(self.workdir / "operator.kubeconfig"),
            admin_token=admin_token,
            operator_token=operator_token,
            ca_file=str(pki.ca_cert),
            bin_dir=str(bin_dir),
            pids={name: proc.pid for name, proc in self._procs.items()},
        )
        Path(self.state.admin_kubeconfig).write_text(_kubeconfig(server, str(pki.ca_cert), "admin", admin_token))
        Path(self.state.operator_kubeconfig).write_text(
            _kubeconfig(server, str(pki.ca_cert), OPERATOR_USER, operator_token)
        )
        try:
            self._wait_ready(timeout)
            self._install_rbac()
        except Exception:
            self.stop()
            raise
        return self.state

    @staticmethod
    def apiserver_args(bin_dir: Path, pki: Pki, etcd_url: str, port: int, tokens: Path) -> list[str]:
        return [
            str(bin_dir / "kube-apiserver"),
            f"--etcd-servers={etcd_url}",
            "--bind-address=127.0.0.1",
            "--advertise-address=127.0.0.1",
            f"--secure-port={port}",
            f"--tls-cert-file={pki.serving_cert}",
            f"--tls-private-key-file={pki.serving_key}",
            f"--token-auth-file={tokens}",
            "--authorization-mode=RBAC",
            "--anonymous-auth=false",
            "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
            f"--service-account-key-file={pki.sa_public_key}",
            f"--service-account-signing-key-file={pki.sa_private_key}",
            "--service-cluster-ip-range=10.96.0.0/16",
            "--allow-privileged=true",
            # No controller-manager creates the "default" ServiceAccounts pods would need.
            "--disable-admission-plugins=ServiceAccount",
            "--enable-priority-and-fairness=false",
            "--profiling=false",
            f"--cert-dir={pki.ca_cert.parent}",
            "--v=0",
        ]

    def stop_apiserver(self) -> list[str]:
        """Stop kube-apiserver (etcd keeps the data); returns its arguments for `start_apiserver`."""
        args = [str(a) for a in self._procs["kube-apiserver"].args]  # type: ignore[union-attr]
        self._terminate("kube-apiserver")
        return args

    def start_apiserver(self, args: list[str], timeout: float = 90.0) -> None:
        self._spawn("kube-apiserver", args, detach=False)
        assert self.state is not None
        self.state.pids["kube-apiserver"] = self._procs["kube-apiserver"].pid
        port = next(a.split("=", 1)[1] for a in args if a.startswith("--secure-port="))
        self._wait_ready(timeout, server=f"https://127.0.0.1:{port}")

    def stop(self) -> None:
        for name in ("kube-apiserver", "etcd"):
            self._terminate(name)
        if self.state is not None:
            for pid in self.state.pids.values():
                _kill_pid(pid)
        if self._own_workdir and not self.keep_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> ClusterState:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ----- helpers -----

    def _spawn(self, name: str, args: list[str], detach: bool) -> None:
        log = open(self.workdir / f"{name}.log", "ab")  # noqa: SIM115 - owned by the child process
        self._procs[name] = subprocess.Popen(
            args,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,  # detached runs survive the CLI; Ctrl-C of a test run does not hit them
        )
        log.close()

    def _terminate(self, name: str) -> None:
        proc = self._procs.pop(name, None)
        if proc is None or proc.poll() is not None:
            return
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)

    def _check_alive(self) -> None:
        for name, proc in self._procs.items():
            if proc.poll() is not None:
                tail = (self.workdir / f"{name}.log").read_text(errors="replace")[-3000:]
                raise ClusterStartError(f"{name} exited with {proc.returncode}:\n{tail}")

    def _wait_http(self, url: str, timeout: float, name: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self._check_alive()
            with contextlib.suppress(OSError), urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
            time.sleep(0.2)
        raise ClusterStartError(f"{name} not healthy at {url} after {timeout:.0f}s")

    def _wait_ready(self, timeout: float, server: str | None = None) -> None:
        assert self.state is not None
        context = ssl.create_default_context(cafile=self.state.ca_file)
        request = urllib.request.Request(
            f"{server or self.state.server}/readyz", headers={"Authorization": f"Bearer {self.state.admin_token}"}
        )
        deadline = time.monotonic() + timeout
        last_error = ""
        while time.monotonic() < deadline:
            self._check_alive()
            try:
                with urllib.request.urlopen(request, timeout=3, context=context) as response:
                    if response.status == 200:
                        return
            except urllib.error.HTTPError as error:
                last_error = f"HTTP {error.code}"
            except OSError as error:
                last_error = str(error)
            time.sleep(0.25)
        raise ClusterStartError(f"kube-apiserver not ready after {timeout:.0f}s: {last_error}")

    def _install_rbac(self) -> None:
        """Apply the operator's ServiceAccount, RBAC and admission policies from deploy/, as a user would."""
        assert self.state is not None
        files = [f"--filename={binaries.repo_root() / manifest}" for manifest in (RBAC_MANIFEST, ADMISSION_MANIFEST)]
        self.kubectl("apply", "--server-side", "--field-manager=warmpool-dev", *files)

    def install_crd(self, manifest: Path, name: str, timeout: float = 60.0) -> None:
        """Apply a CRD and wait until it is Established (served), so tests can create objects at once."""
        self.kubectl("apply", "--server-side", "--field-manager=warmpool-dev", "-f", str(manifest))
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            # check=False: until the API server writes the first conditions, the filter has nothing to read.
            established = self.kubectl(
                "get",
                "crd",
                name,
                "-o",
                'jsonpath={.status.conditions[?(@.type=="Established")].status}',
                check=False,
            ).stdout
            if established == "True":
                return
            time.sleep(0.2)
        raise ClusterStartError(f"CRD {name} not established after {timeout:.0f}s")

    def kubectl(self, *args: str, operator: bool = False, check: bool = True) -> subprocess.CompletedProcess[str]:
        assert self.state is not None
        kubeconfig = self.state.operator_kubeconfig if operator else self.state.admin_kubeconfig
        return run_kubectl(self.state, *args, kubeconfig=kubeconfig, check=check)


def run_kubectl(
    state: ClusterState, *args: str, kubeconfig: str | None = None, check: bool = True
) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(
        [state.kubectl, f"--kubeconfig={kubeconfig or state.admin_kubeconfig}", *args],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if check and result.returncode != 0:
        raise RuntimeError(f"kubectl {' '.join(args)} failed: {result.stderr.strip()}")
    return result


def _kill_pid(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGTERM)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except (ProcessLookupError, PermissionError):
            return
        with contextlib.suppress(ChildProcessError):
            os.waitpid(pid, os.WNOHANG)
        time.sleep(0.1)
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def stop_detached(state: ClusterState) -> None:
    """Stop a cluster started by `warmpool dev-cluster up` from its saved state: what came later (the dev fleet)
    first, etcd last. Each pid leads a process group of its own, so its children go with it."""
    for pid in reversed(list(state.pids.values())):
        _kill_pid(pid)
    shutil.rmtree(state.workdir, ignore_errors=True)


@contextlib.contextmanager
def running_cluster(bin_dir: Path | None = None) -> Iterator[DevCluster]:
    cluster = DevCluster(bin_dir=bin_dir)
    cluster.start()
    try:
        yield cluster
    finally:
        cluster.stop()
