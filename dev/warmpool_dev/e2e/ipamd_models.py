"""The project's own ipamd model (`warmpool.ipamd.node.NodePool`) running for every KWOK node in wall-clock
time, fed by the pods bound to that node, and serving its pool as ipamd's metrics behind the node's aws-node pod
(`ipamd_metrics.IpamdEndpoints`), so the operator's measured pool state can be tested end to end.

Two watch threads (KWOK nodes, pods of the churn namespace) drive the models: a node joining gets a model and an
aws-node pod; a pod bound to it takes an IP (`pod_start`), a pod deleted gives it back (`pod_stop`). Before any
event and any scrape, the node's model first runs the pool checks due since it last ran, at their own times,
the way the simulator's event loop does. A rollout of aws-node (`restart`) gives every model the new targets.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Mapping
from typing import Any

from kubernetes import client, watch

from warmpool.aws.instance_table import FALLBACK_LIMITS
from warmpool.ipamd.env import parse_env
from warmpool.ipamd.limits import IpMode
from warmpool.ipamd.node import NodePool
from warmpool.measured.exposition import IpamdSample
from warmpool_dev.e2e.ipamd_metrics import IpamdEndpoints, free_port_on, routable_host_ip, run_aws_node_pod
from warmpool_dev.e2e.kube import KWOK_LABEL

INSTANCE_TYPE_LABEL = "node.kubernetes.io/instance-type"


class _Model:
    def __init__(self, pool: NodePool) -> None:
        self.pool = pool
        self.no_ip = 0  # pod starts that found no free IP: ipamd counts each failed assignment

    def catch_up(self, now: float) -> None:
        pool = self.pool
        for _ in range(1_000_000):  # a bound, should a bug ever keep wake_at in the past
            if pool.wake_at > now:
                return
            pool.advance(pool.wake_at)

    def sample(self, now: float) -> IpamdSample:
        self.catch_up(now)
        p = self.pool
        return IpamdSample(total_ips=p.held_ips, assigned_ips=p.assigned, no_ip_errors=self.no_ip, enis=p.eni_count)


class IpamdModels:
    """`with IpamdModels(api, "churn") as models:` runs a model per KWOK node until the block ends."""

    def __init__(
        self,
        api: client.ApiClient,
        pod_namespace: str,
        ds_namespace: str = "kube-system",
        env: Mapping[str, str] | None = None,
        mode: IpMode = IpMode.SECONDARY,
    ) -> None:
        host = routable_host_ip()
        if host is None:
            raise RuntimeError("no routable address here: kube-apiserver proxies only to global unicast pod IPs")
        self.host = host
        self.api, self.pod_namespace, self.ds_namespace, self.mode = api, pod_namespace, ds_namespace, mode
        self.targets = parse_env(dict(env or {}))
        self.endpoints = IpamdEndpoints(free_port_on(host))
        self.models: dict[str, _Model] = {}
        self._pods_created: set[str] = set()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self.errors: list[str] = []
        self._pod_version = ""

    @property
    def port(self) -> int:
        return self.endpoints.port

    # ----- lifecycle -----

    def start(self) -> IpamdModels:
        for name, target in (("ipamd-nodes", self._watch_nodes), ("ipamd-pods", self._watch_pods)):
            thread = threading.Thread(target=self._forever, args=(target,), name=name, daemon=True)
            thread.start()
            self._threads.append(thread)
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=10)
        self.endpoints.stop()

    def __enter__(self) -> IpamdModels:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # ----- what tests read -----

    def sample(self, node: str) -> IpamdSample:
        """The node's pool as its model has it now."""
        with self._lock:
            return self.models[node].sample(time.time())

    def restart(self, env: Mapping[str, str]) -> None:
        """aws-node rolled out with `env`: every model restarts with the new targets."""
        now = time.time()
        with self._lock:
            self.targets = parse_env(dict(env))
            for model in self.models.values():
                model.catch_up(now)
                model.pool.restart(now, self.targets)

    # ----- the watches -----

    def _forever(self, loop: Any) -> None:
        while not self._stop.is_set():
            try:
                loop()
            except Exception as error:  # a dropped watch: note it and watch again
                self.errors.append(f"{type(error).__name__}: {error}"[:300])
                self._stop.wait(0.5)

    def _watch_nodes(self) -> None:
        core = client.CoreV1Api(self.api)
        stream = watch.Watch()
        for event in stream.stream(core.list_node, label_selector=f"{KWOK_LABEL}=true", timeout_seconds=5):
            node = event["object"]
            name = node.metadata.name
            if event["type"] == "DELETED":
                self._forget(name)
            else:
                self._model(name, (node.metadata.labels or {}).get(INSTANCE_TYPE_LABEL, ""))
                self._aws_node_pod(core, name)
            if self._stop.is_set():
                stream.stop()

    def _watch_pods(self) -> None:
        core = client.CoreV1Api(self.api)
        stream = watch.Watch()
        # Resumed from the last version seen, so a deletion while the watch reconnects is not missed.
        since = {"resource_version": self._pod_version} if self._pod_version else {}
        try:
            for event in stream.stream(core.list_namespaced_pod, self.pod_namespace, timeout_seconds=5, **since):
                pod = event["object"]
                node = pod.spec.node_name
                if node:
                    gone = event["type"] == "DELETED" or pod.metadata.deletion_timestamp is not None
                    self._pod(core, node, pod.metadata.name, gone)
                if self._stop.is_set():
                    stream.stop()
        except client.ApiException as error:
            if error.status == 410:
                self._pod_version = ""  # too old: list again
            raise
        self._pod_version = stream.resource_version or self._pod_version

    # ----- model bookkeeping -----

    def _model(self, node: str, instance_type: str) -> _Model:
        with self._lock:
            model = self.models.get(node)
            if model is None:
                limits = FALLBACK_LIMITS[instance_type]
                pool = NodePool(node, limits, limits.runs_mode(self.mode), self.targets, time.time(), seed=node)
                model = self.models[node] = _Model(pool)
                self.endpoints.add(node, _pod_name(node), self.host, self._source(node))
            return model

    def _source(self, node: str) -> Any:
        def source() -> IpamdSample:
            with self._lock:
                return self.models[node].sample(time.time())

        return source

    def _aws_node_pod(self, core: client.CoreV1Api, node: str) -> None:
        if node in self._pods_created:
            return
        self._pods_created.add(node)
        run_aws_node_pod(core, _pod_name(node), self.ds_namespace, node, self.host)

    def _pod(self, core: client.CoreV1Api, node: str, pod: str, gone: bool) -> None:
        if node not in self.models:  # the pod's watch ran ahead of the node's
            self._model(node, core.read_node(node).metadata.labels.get(INSTANCE_TYPE_LABEL, ""))
        now = time.time()
        with self._lock:
            model = self.models.get(node)
            if model is None:
                return
            model.catch_up(now)
            pool = model.pool
            if gone:
                pool.pod_stop(pod, now)
            elif pod not in pool.pods:
                pool.pod_start(pod, now)
                if pod in pool.waiting:
                    model.no_ip += 1

    def _forget(self, node: str) -> None:
        with self._lock:
            model = self.models.pop(node, None)
            if model is not None:
                model.pool.finish(time.time())
            self.endpoints.remove(node)
        if node in self._pods_created:
            self._pods_created.discard(node)
            with contextlib.suppress(client.ApiException):
                client.CoreV1Api(self.api).delete_namespaced_pod(_pod_name(node), self.ds_namespace)


def _pod_name(node: str) -> str:
    return f"aws-node-{node}"[:63]
