"""One e2e environment: the loopback control plane, moto EC2, KWOK, the aws-node DaemonSet, a stand-in for the
DaemonSet controller, and the operator as a subprocess with its own RBAC identity. `with KwokEnv() as env:`
starts them in dependency order and stops every one of them (and removes the work directory) on the way out,
whatever happened inside."""

from __future__ import annotations

import contextlib
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, TypeVar

from kubernetes import client, config

from warmpool.api import v1alpha1
from warmpool.api.crd import render_crd_yaml
from warmpool_dev.devcluster.cluster import DevCluster
from warmpool_dev.e2e.driver import ChurnDriver
from warmpool_dev.e2e.ec2 import MotoEc2
from warmpool_dev.e2e.ipamd_models import IpamdModels
from warmpool_dev.e2e.kube import (
    AWS_NODE_ENV,
    aws_node_daemonset,
    container_env,
    mark_rollout_complete,
    rollout_pending,
)
from warmpool_dev.e2e.procs import ManagedProcess, kwok_process, operator_process

T = TypeVar("T")
CRD_NAME = f"{v1alpha1.PLURAL}.{v1alpha1.GROUP}"
DS_NAMESPACE = "kube-system"
CHURN_NAMESPACE = "churn"


def wait_for(predicate: Callable[[], T | None], what: str, timeout: float = 60.0, every: float = 0.5) -> T:
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(every)
    raise TimeoutError(f"timed out after {timeout:.0f}s waiting for {what}; last value: {last!r}")


def _raise_interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


class RolloutCompleter(threading.Thread):
    """Stands in for the DaemonSet controller: `delay` seconds after the aws-node template changes, writes the
    status of a finished rollout over `nodes()` nodes."""

    def __init__(
        self,
        api: client.ApiClient,
        nodes: Callable[[], int],
        delay: float,
        on_complete: Callable[[dict[str, str]], None] | None = None,
    ) -> None:
        super().__init__(name="rollout-completer", daemon=True)
        self.api, self.nodes, self.delay, self.on_complete = api, nodes, delay, on_complete
        self.stopped = threading.Event()
        self.completed = 0

    def run(self) -> None:
        apps = client.AppsV1Api(self.api)
        pending_since: float | None = None
        while not self.stopped.wait(0.5):
            with contextlib.suppress(Exception):  # a missed poll only delays the status write
                ds = apps.read_namespaced_daemon_set("aws-node", DS_NAMESPACE)
                if not rollout_pending(ds):
                    pending_since = None
                    continue
                pending_since = pending_since or time.monotonic()
                if time.monotonic() - pending_since >= self.delay:
                    mark_rollout_complete(self.api, DS_NAMESPACE, self.nodes())
                    self.completed += 1
                    pending_since = None
                    if self.on_complete is not None:  # aws-node restarted on every node with the new env
                        self.on_complete(container_env(ds))

    def stop(self) -> None:
        self.stopped.set()
        self.join(timeout=5)


class KwokEnv:
    """`ipamd_models`: run the project's ipamd model for every KWOK node behind an aws-node pod's metrics
    endpoint (`ipamd_models.py`), and point the operator at it (`scrape_interval` seconds between scrapes)."""

    def __init__(
        self,
        rollout_delay: float = 5.0,
        workers: int = 4,
        log: Callable[[str], None] | None = None,
        ipamd_models: bool = False,
        scrape_interval: float = 10.0,
    ):
        self.rollout_delay = rollout_delay
        self.with_models = ipamd_models
        self.scrape_interval = scrape_interval
        self.models: IpamdModels | None = None
        self.workers = workers
        self.log = log or (lambda _: None)
        self.workdir = Path(tempfile.mkdtemp(prefix="warmpool-e2e-"))
        self.cluster = DevCluster(workdir=self.workdir / "cluster")
        self.moto = MotoEc2()
        self.kwok: ManagedProcess | None = None
        self.operator: ManagedProcess | None = None
        self.completer: RolloutCompleter | None = None
        self.api: client.ApiClient | None = None
        self.driver: ChurnDriver | None = None

    # ----- lifecycle -----

    def __enter__(self) -> KwokEnv:
        if threading.current_thread() is threading.main_thread():
            # `timeout`, systemd or a CI runner stop us with SIGTERM, whose default action skips every finally:
            # make it unwind like Ctrl-C so the children and the work directory still go.
            signal.signal(signal.SIGTERM, _raise_interrupt)
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self) -> None:
        started = time.monotonic()
        self.log("starting etcd + kube-apiserver (building them first if needed) ...")
        state = self.cluster.start()
        crd = self.workdir / "crd.yaml"
        crd.write_text(render_crd_yaml())
        self.cluster.install_crd(crd, CRD_NAME)
        cfg = client.Configuration()
        config.load_kube_config(config_file=state.admin_kubeconfig, client_configuration=cfg)
        cfg.connection_pool_maxsize = self.workers + 4
        self.api = client.ApiClient(cfg)
        core = client.CoreV1Api(self.api)
        core.create_namespace({"metadata": {"name": CHURN_NAMESPACE}})
        client.AppsV1Api(self.api).create_namespaced_daemon_set(DS_NAMESPACE, aws_node_daemonset(DS_NAMESPACE))
        mark_rollout_complete(self.api, DS_NAMESPACE, 0)
        self.log("starting moto EC2 and KWOK ...")
        self.moto.start()
        self.kwok = kwok_process(Path(state.bin_dir), state.admin_kubeconfig, self.workdir).start()
        self.driver = ChurnDriver(self.api, CHURN_NAMESPACE, self.moto, workers=self.workers)
        driver = self.driver
        if self.with_models:
            env = {e["name"]: e["value"] for e in AWS_NODE_ENV if "value" in e}
            self.models = IpamdModels(self.api, CHURN_NAMESPACE, DS_NAMESPACE, env).start()
        models = self.models
        self.completer = RolloutCompleter(
            self.api, lambda: driver.live_nodes, self.rollout_delay, models.restart if models else None
        )
        self.completer.start()
        self.log(f"environment up in {time.monotonic() - started:.1f}s (work dir {self.workdir})")

    def start_operator(self) -> ManagedProcess:
        assert self.cluster.state is not None
        env = dict(self.moto.operator_env())
        if self.models is not None:
            env.update(
                WARMPOOL_IPAMD_METRICS="proxy",
                WARMPOOL_IPAMD_METRICS_PORT=str(self.models.port),
                WARMPOOL_IPAMD_SCRAPE_INTERVAL_SECONDS=f"{self.scrape_interval:g}",
            )
        self.operator = operator_process(self.cluster.state.operator_kubeconfig, env, self.workdir).start()
        return self.operator

    def stop(self) -> None:
        """Reverse order of start; every step runs even when an earlier one fails."""
        steps: list[Callable[[], object]] = []
        if self.operator is not None:
            steps.append(self.operator.stop)
        if self.completer is not None:
            steps.append(self.completer.stop)
        if self.models is not None:
            steps.append(self.models.stop)
        if self.kwok is not None:
            steps.append(self.kwok.stop)
        steps += [self.moto.stop, self.cluster.stop]
        if self.api is not None:
            steps.append(self.api.close)
        for step in steps:
            with contextlib.suppress(Exception):
                step()
        shutil.rmtree(self.workdir, ignore_errors=True)

    # ----- policies -----

    def create_policy(self, name: str, spec: Mapping[str, Any]) -> None:
        assert self.api is not None
        client.CustomObjectsApi(self.api).create_cluster_custom_object(
            v1alpha1.GROUP,
            v1alpha1.VERSION,
            v1alpha1.PLURAL,
            {"apiVersion": v1alpha1.API_VERSION, "kind": v1alpha1.KIND, "metadata": {"name": name}, "spec": dict(spec)},
        )

    def policy(self, name: str) -> dict[str, Any]:
        assert self.api is not None
        found: dict[str, Any] = client.CustomObjectsApi(self.api).get_cluster_custom_object(
            v1alpha1.GROUP, v1alpha1.VERSION, v1alpha1.PLURAL, name
        )
        return found

    def aws_node(self) -> Any:
        assert self.api is not None
        return client.AppsV1Api(self.api).read_namespaced_daemon_set("aws-node", DS_NAMESPACE)

    def check_alive(self) -> None:
        for proc in (self.kwok, self.operator):
            if proc is not None and proc.proc is not None and not proc.alive():
                raise RuntimeError(f"{proc.name} exited:\n{proc.tail()}")


def e2e_policy_spec(
    quiet_period: str = "30s", burst_window: str = "2s", cooldown: str = "1h", interval: str = "10s"
) -> dict[str, Any]:
    """A live policy in wall-clock time for compressed traces. The operator's clock cannot be sped up, and
    some of its rules are fixed in real seconds (10 s ticks, the 300 s look-back for a rise in node count,
    ipamd's 30 s IP cooldown), so the policy's durations are chosen for the compressed trace, not copied."""
    return {
        "targetRef": {"namespace": DS_NAMESPACE, "name": "aws-node", "container": "aws-node"},
        "nodeSelector": {"matchLabels": {"warmpool.io/kwok": "true"}},
        "mode": "SecondaryIP",
        "manage": [{"name": "WARM_IP_TARGET", "min": 1}, {"name": "MINIMUM_IP_TARGET"}],
        "churn": {"burstWindow": burst_window},
        "rollout": {"interval": interval, "cooldown": cooldown, "quietPeriod": quiet_period},
        "dryRun": False,
    }
