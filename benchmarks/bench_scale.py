"""How the operator scales with the pods of a cluster, on the real control plane. Prints numbers, asserts nothing.

    python benchmarks/bench_scale.py                                  # 3k, 30k, 60k pods, 30 a node
    python benchmarks/bench_scale.py --sizes 3000,30000,60000,150000 --burst 1000

One loopback etcd + kube-apiserver (and moto for EC2) for the whole run; the cluster grows from one size to the
next. Nodes are created Ready (no node controller runs, so they stay so) and pods bound to them, with a status
like KWOK's, through concurrent raw requests (no KWOK: it would only add load). At each size a fresh operator
process starts (as its own ServiceAccount, policy in dry-run) and we measure:
- start -> first status: until the policy's status first shows podsObserved; never cut off, only reported
  as slow when it takes longer than --slow seconds;
- the lag between a burst of K pod creations and the status counting them (the status is written every
  `rollout.interval` = 10 s, so up to 10 s of it is that tick);
- CPU per pod event: the operator's CPU over a window of steady churn (create + delete), less an idle window of
  the same length, over the watch events it applied (its own Prometheus counter);
- peak RSS (VmHWM) of the operator, and RSS of kube-apiserver and etcd beside it;
and fits peak RSS and first-status time linearly in the pod count (per 1,000 pods, and at 150,000).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import signal
import ssl
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

import aiohttp
from kubernetes import client, config

from warmpool.api import v1alpha1
from warmpool.api.crd import render_crd_yaml
from warmpool_dev.devcluster.cluster import DevCluster
from warmpool_dev.e2e.ec2 import MotoEc2
from warmpool_dev.e2e.kube import aws_node_daemonset, eks_node, mark_rollout_complete, max_pods
from warmpool_dev.e2e.procs import ManagedProcess, operator_process

NAMESPACE = "scale"
ZONES = ("us-east-1a", "us-east-1b", "us-east-1c")
LABEL = "warmpool.io/scale"
TICKS = os.sysconf("SC_CLK_TCK")


# ----- /proc -----
def proc_field(pid: int, field: str) -> float:
    """A kB field of /proc/PID/status, in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def load() -> str:
    one, five, fifteen = os.getloadavg()
    return f"load {one:.1f} {five:.1f} {fifteen:.1f}"


# ----- objects -----
def node_body(name: str, instance_type: str, zone: str, instance_id: str) -> dict[str, Any]:
    return eks_node(name, instance_type, zone, instance_id, "scale", {LABEL: "true"})


def node_status(instance_type: str) -> dict[str, Any]:
    pods = str(max_pods(instance_type))
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    resources = {"pods": pods, "cpu": "4", "memory": "16Gi", "ephemeral-storage": "80Gi"}
    return {
        "status": {
            "allocatable": resources,
            "capacity": resources,
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "KubeletReady",
                    "message": "kubelet is posting ready status",
                    "lastHeartbeatTime": stamp,
                    "lastTransitionTime": stamp,
                }
            ],
        }
    }


def pod_body(name: str, node: str) -> dict[str, Any]:
    """Shaped like a Deployment's pod: owner, labels, a container with resources, probes and the usual mounts."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": NAMESPACE,
            "labels": {"app": "web", "pod-template-hash": "5d8f7c9b6d", "team": "payments"},
            "annotations": {"kubectl.kubernetes.io/restartedAt": "2026-11-30T10:00:00Z"},
            "ownerReferences": [
                {
                    "apiVersion": "apps/v1",
                    "kind": "ReplicaSet",
                    "name": "web-5d8f7c9b6d",
                    "uid": "3b2e8c1a-8f1e-4c8e-9a4e-5b7c6d8e9f01",
                    "controller": True,
                    "blockOwnerDeletion": True,
                }
            ],
        },
        "spec": {
            "nodeName": node,
            "containers": [
                {
                    "name": "app",
                    "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/web:1.42.0",
                    "ports": [{"containerPort": 8080, "name": "http", "protocol": "TCP"}],
                    "env": [{"name": "LOG_LEVEL", "value": "info"}, {"name": "REGION", "value": "us-east-1"}],
                    "resources": {"requests": {"cpu": "100m", "memory": "128Mi"}, "limits": {"memory": "256Mi"}},
                    "readinessProbe": {"httpGet": {"path": "/ready", "port": 8080}, "periodSeconds": 10},
                }
            ],
            "tolerations": [
                {"key": "node.kubernetes.io/not-ready", "operator": "Exists", "effect": "NoExecute"},
                {"key": "node.kubernetes.io/unreachable", "operator": "Exists", "effect": "NoExecute"},
            ],
            "terminationGracePeriodSeconds": 0,
        },
    }


def pod_status(ip: str) -> dict[str, Any]:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    conditions = [
        {"type": kind, "status": "True", "lastTransitionTime": stamp}
        for kind in ("PodReadyToStartContainers", "Initialized", "Ready", "ContainersReady", "PodScheduled")
    ]
    return {
        "status": {
            "phase": "Running",
            "conditions": conditions,
            "hostIP": "10.0.0.10",
            "podIP": ip,
            "podIPs": [{"ip": ip}],
            "startTime": stamp,
            "qosClass": "Burstable",
            "containerStatuses": [
                {
                    "name": "app",
                    "ready": True,
                    "restartCount": 0,
                    "started": True,
                    "image": "123456789012.dkr.ecr.us-east-1.amazonaws.com/web:1.42.0",
                    "imageID": "123456789012.dkr.ecr.us-east-1.amazonaws.com/web@sha256:" + "0" * 64,
                    "containerID": "containerd://" + "a" * 64,
                    "state": {"running": {"startedAt": stamp}},
                }
            ],
        }
    }


# ----- fast raw requests -----
class Raw:
    """Concurrent creates and status patches over one aiohttp session (the admin's credentials)."""

    def __init__(self, kubeconfig: str, concurrency: int) -> None:
        cfg = client.Configuration()
        config.load_kube_config(config_file=kubeconfig, client_configuration=cfg)
        self.base = cfg.host.rstrip("/")
        self.ssl = ssl.create_default_context(cafile=cfg.ssl_ca_cert)
        self.headers = {str(s["key"]): str(s["value"]) for s in cfg.auth_settings().values() if s.get("in") == "header"}
        self.concurrency = concurrency
        self.errors = 0
        self.last_error = ""

    async def _send(self, session: aiohttp.ClientSession, method: str, path: str, body: Any, ctype: str) -> bool:
        for attempt in range(5):
            try:
                async with session.request(
                    method, self.base + path, data=json.dumps(body), headers={**self.headers, "Content-Type": ctype}
                ) as response:
                    await response.read()
                    if response.status < 300 or response.status == 409:
                        return True
                    if response.status != 429 and response.status < 500:
                        self.errors += 1
                        self.last_error = f"{method} {path}: {response.status}"
                        return False
            except aiohttp.ClientError as error:
                self.last_error = f"{method} {path}: {error}"
            await asyncio.sleep(0.2 * 2**attempt)
        self.errors += 1
        return False

    async def run(self, jobs: list[tuple[str, str, Any, str]]) -> None:
        """(method, path, body, content type) jobs; those of one object must be consecutive in one job list."""
        queue: asyncio.Queue[tuple[str, str, Any, str]] = asyncio.Queue()
        for job in jobs:
            queue.put_nowait(job)
        connector = aiohttp.TCPConnector(ssl=self.ssl, limit=self.concurrency)
        async with aiohttp.ClientSession(connector=connector) as session:

            async def worker() -> None:
                while not queue.empty():
                    await self._send(session, *queue.get_nowait())

            await asyncio.gather(*(worker() for _ in range(self.concurrency)))

    def pods(self, names: list[tuple[str, str]], first_ip: int) -> None:
        async def one(session: aiohttp.ClientSession, name: str, node: str, ip: str) -> None:
            path = f"/api/v1/namespaces/{NAMESPACE}/pods"
            if await self._send(session, "POST", path, pod_body(name, node), "application/json"):
                await self._send(
                    session, "PATCH", f"{path}/{name}/status", pod_status(ip), "application/merge-patch+json"
                )

        async def all_pods() -> None:
            connector = aiohttp.TCPConnector(ssl=self.ssl, limit=self.concurrency)
            async with aiohttp.ClientSession(connector=connector) as session:
                sem = asyncio.Semaphore(self.concurrency)

                async def guarded(i: int, name: str, node: str) -> None:
                    n = first_ip + i
                    async with sem:
                        await one(session, name, node, f"10.{64 + n // 65536}.{n // 256 % 256}.{n % 256}")

                await asyncio.gather(*(guarded(i, name, node) for i, (name, node) in enumerate(names)))

        asyncio.run(all_pods())

    def delete_pods(self, names: list[str]) -> None:
        path = f"/api/v1/namespaces/{NAMESPACE}/pods/"
        body = {"gracePeriodSeconds": 0}
        asyncio.run(self.run([("DELETE", path + n, body, "application/json") for n in names]))


# ----- the run -----
class Bench:
    def __init__(self, args: argparse.Namespace, workdir: Path) -> None:
        self.args = args
        self.workdir = workdir
        self.cluster = DevCluster(workdir=workdir / "cluster")
        self.moto = MotoEc2()
        self.nodes: list[str] = []
        self.pods = 0  # pods created so far (named p<N>)
        self.serial = 0
        self.live: list[tuple[str, str]] = []  # (pod, node) for churn
        self.operator: ManagedProcess | None = None
        self.rows: list[dict[str, float]] = []

    def start(self) -> None:
        state = self.cluster.start()
        crd = self.workdir / "crd.yaml"
        crd.write_text(render_crd_yaml())
        self.cluster.install_crd(crd, f"{v1alpha1.PLURAL}.{v1alpha1.GROUP}")
        self.api = config.new_client_from_config(config_file=state.admin_kubeconfig)
        core = client.CoreV1Api(self.api)
        core.create_namespace({"metadata": {"name": NAMESPACE}})
        client.AppsV1Api(self.api).create_namespaced_daemon_set("kube-system", aws_node_daemonset("kube-system"))
        mark_rollout_complete(self.api, "kube-system", 0)
        self.moto.start()
        self.moto.create_network(ZONES, prefix=18)  # 16k IPs a zone
        self.raw = Raw(state.admin_kubeconfig, self.args.concurrency)

    def stop(self) -> None:
        if self.operator is not None:
            self.operator.stop()
        self.moto.stop()
        self.cluster.stop()

    def grow(self, pods: int) -> None:
        ppn = self.args.pods_per_node
        want_nodes = math.ceil(pods / ppn)
        started = time.monotonic()
        new_nodes = []
        while len(self.nodes) + len(new_nodes) < want_nodes:
            i = len(self.nodes) + len(new_nodes)
            zone = ZONES[i % len(ZONES)]
            batch = min(want_nodes - len(self.nodes) - len(new_nodes), 300)
            ids = self.moto.run_instances(self.args.instance_type, zone, batch)
            for k, iid in enumerate(ids):
                new_nodes.append((f"n{i + k:05d}", zone, iid))
        jobs: list[tuple[str, str, Any, str]] = []
        for name, zone, iid in new_nodes:
            jobs.append(
                ("POST", "/api/v1/nodes", node_body(name, self.args.instance_type, zone, iid), "application/json")
            )
        asyncio.run(self.raw.run(jobs))
        status = node_status(self.args.instance_type)
        asyncio.run(
            self.raw.run(
                [
                    ("PATCH", f"/api/v1/nodes/{n}/status", status, "application/merge-patch+json")
                    for n, _, _ in new_nodes
                ]
            )
        )
        self.nodes += [n for n, _, _ in new_nodes]
        todo = [
            (f"p{self.pods + j:06d}", self.nodes[(self.pods + j) // ppn % len(self.nodes)])
            for j in range(pods - self.pods)
        ]
        self.raw.pods(todo, self.pods)
        self.pods = pods
        self.live += todo
        took = time.monotonic() - started
        print(
            f"-- cluster: {len(self.nodes)} nodes, {pods} pods ({len(todo)} new in {took:.0f}s, "
            f"{len(todo) / max(took, 1e-9):.0f}/s; {self.raw.errors} errors {self.raw.last_error}) [{load()}]",
            flush=True,
        )

    def policy_status(self, name: str) -> dict[str, Any]:
        try:
            found = client.CustomObjectsApi(self.api).get_cluster_custom_object(
                v1alpha1.GROUP, v1alpha1.VERSION, v1alpha1.PLURAL, name
            )
        except client.ApiException:
            return {}
        return dict(found.get("status") or {})

    def metric(self, port: int, name: str) -> float:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
            text = response.read().decode()
        return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + "{"))

    def measure(self, size: int) -> None:
        args = self.args
        assert self.cluster.state is not None
        pids = self.cluster.state.pids
        policy = f"scale-{size}"
        custom = client.CustomObjectsApi(self.api)
        for old in custom.list_cluster_custom_object(v1alpha1.GROUP, v1alpha1.VERSION, v1alpha1.PLURAL)["items"] or []:
            custom.delete_cluster_custom_object(
                v1alpha1.GROUP, v1alpha1.VERSION, v1alpha1.PLURAL, old["metadata"]["name"]
            )
        spec = {
            "targetRef": {"namespace": "kube-system", "name": "aws-node", "container": "aws-node"},
            "nodeSelector": {"matchLabels": {LABEL: "true"}},
            "mode": "SecondaryIP",
            "manage": [{"name": "WARM_IP_TARGET", "min": 1}, {"name": "MINIMUM_IP_TARGET"}],
            "rollout": {"interval": "10s"},
            "dryRun": True,
        }
        custom.create_cluster_custom_object(
            v1alpha1.GROUP,
            v1alpha1.VERSION,
            v1alpha1.PLURAL,
            {"apiVersion": v1alpha1.API_VERSION, "kind": v1alpha1.KIND, "metadata": {"name": policy}, "spec": spec},
        )
        api_rss, etcd_rss = proc_field(pids["kube-apiserver"], "VmRSS"), proc_field(pids["etcd"], "VmRSS")
        print(f"== {size} pods on {len(self.nodes)} nodes [{load()}]", flush=True)

        log_file = self.workdir / "operator.log"
        log_offset = log_file.stat().st_size if log_file.exists() else 0
        started_wall = time.time()
        self.operator = operator = operator_process(
            self.cluster.state.operator_kubeconfig, self.moto.operator_env(), self.workdir
        ).start()
        metrics_port = int(next(a.split("=", 1)[1] for a in operator.args if a.startswith("--metrics-port=")))
        started = time.monotonic()
        next_note = started + args.slow
        while "podsObserved" not in (status := self.policy_status(policy)):
            if not operator.alive():
                raise RuntimeError(f"operator exited:\n{operator.tail()}")
            if time.monotonic() > next_note:
                print(f"   slow: no status {time.monotonic() - started:.0f}s after start; still waiting", flush=True)
                next_note += args.slow
            time.sleep(0.2)
        first = time.monotonic() - started
        seen = status.get("podsObserved")
        cpu_start = cpu_seconds(operator.pid)
        print(
            f"   first status {first:.1f}s after start{' (SLOW)' if first > args.slow else ''}: podsObserved={seen}, "
            f"nodes={status.get('nodes')}; operator CPU so far {cpu_start:.1f}s, "
            f"RSS {proc_field(operator.pid, 'VmRSS'):.0f} MiB",
            flush=True,
        )

        with log_file.open("rb") as log:
            log.seek(log_offset)
            for line in log.read().decode(errors="replace").splitlines():
                if ": listed in " in line:  # "<asctime> INFO warmpool.observe: /api/v1/pods: listed in N pages ..."
                    at = time.mktime(time.strptime(line[:19], "%Y-%m-%d %H:%M:%S")) + int(line[20:23]) / 1000
                    print(f"   {line.split('warmpool.observe: ', 1)[-1]}, {at - started_wall:.1f}s after start")

        # A burst of K pod creations, and when the status counts them.
        base = int(seen or 0)
        burst = [(f"b{self.serial + j:06d}", self.nodes[j % len(self.nodes)]) for j in range(args.burst)]
        self.serial += args.burst
        burst_started = time.monotonic()
        self.raw.pods(burst, 200_000 + self.serial)
        created = time.monotonic()
        while int(self.policy_status(policy).get("podsObserved") or 0) < base + args.burst:
            time.sleep(0.1)
        lag = time.monotonic() - created
        self.live += burst
        print(
            f"   burst of {args.burst} pods created in {created - burst_started:.1f}s; status counted them "
            f"{lag:.1f}s after the last create (status written every 10s)",
            flush=True,
        )

        # CPU per pod event: a steady churn window against an idle one of the same length.
        window = args.churn_seconds
        idle_cpu0 = cpu_seconds(operator.pid)
        time.sleep(window)
        idle_cpu = cpu_seconds(operator.pid) - idle_cpu0
        events0 = self.metric(metrics_port, "warmpool_watch_events_total")
        cpu0 = cpu_seconds(operator.pid)
        churn_started = time.monotonic()
        replaced = 0
        while time.monotonic() - churn_started < window:
            step = max(1, int(args.churn_rate))  # one second's worth per round
            gone = [self.live.pop(0) for _ in range(min(step, len(self.live)))]
            fresh = [(f"c{self.serial + j:06d}", node) for j, (_, node) in enumerate(gone)]
            self.serial += len(fresh)
            round_started = time.monotonic()
            self.raw.delete_pods([name for name, _ in gone])
            self.raw.pods(fresh, 300_000 + self.serial)
            self.live += fresh
            replaced += len(fresh)
            time.sleep(max(0.0, 1.0 - (time.monotonic() - round_started)))
        churn_wall = time.monotonic() - churn_started
        time.sleep(2.0)  # let the last events arrive
        churn_cpu = cpu_seconds(operator.pid) - cpu0
        events = self.metric(metrics_port, "warmpool_watch_events_total") - events0
        extra = max(0.0, churn_cpu - idle_cpu * (churn_wall + 2.0) / window)
        per_event_ms = 1000 * extra / max(events, 1)
        print(
            f"   churn: {replaced} pods replaced in {churn_wall:.0f}s, {events:.0f} watch events; operator CPU "
            f"{churn_cpu:.2f}s vs {idle_cpu:.2f}s idle -> {per_event_ms:.3f} ms a pod event "
            f"({1000 / max(per_event_ms, 1e-9):,.0f} events per CPU-second)",
            flush=True,
        )
        hwm = proc_field(operator.pid, "VmHWM")
        api_rss, etcd_rss = proc_field(pids["kube-apiserver"], "VmRSS"), proc_field(pids["etcd"], "VmRSS")
        print(
            f"   peak RSS: operator {hwm:.0f} MiB | kube-apiserver {api_rss:.0f} MiB | etcd {etcd_rss:.0f} MiB "
            f"[{load()}]",
            flush=True,
        )
        operator.stop()
        self.operator = None
        self.rows.append(
            {
                "pods": float(seen or size),
                "nodes": float(len(self.nodes)),
                "first": first,
                "lag": lag,
                "hwm": hwm,
                "ms_event": per_event_ms,
                "api": api_rss,
                "etcd": etcd_rss,
            }
        )

    def report(self) -> None:
        print(
            "\n| pods | nodes | operator peak RSS | start -> first status | burst lag | CPU a pod event "
            "| apiserver RSS | etcd RSS |"
        )
        print("|---|---|---|---|---|---|---|---|")
        for r in self.rows:
            print(
                f"| {r['pods']:,.0f} | {r['nodes']:,.0f} | {r['hwm']:.0f} MiB | "
                f"{r['first']:.1f} s | {r['lag']:.1f} s | {r['ms_event']:.3f} ms | {r['api']:.0f} MiB | "
                f"{r['etcd']:.0f} MiB |"
            )
        if len(self.rows) >= 2:
            for key, unit, label in (("hwm", "MiB", "operator peak RSS"), ("first", "s", "start -> first status")):
                slope, intercept = fit([r["pods"] for r in self.rows], [r[key] for r in self.rows])
                print(
                    f"fit {label}: {intercept:.1f} {unit} + {slope * 1000:.2f} {unit} per 1,000 pods "
                    f"-> {intercept + slope * 150_000:.0f} {unit} at 150,000 pods"
                )


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt(f"signal {signum}")


def fit(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """Least-squares line: (slope, intercept)."""
    n = len(xs)
    mx, my = sum(xs) / n, sum(ys) / n
    sxx = sum((x - mx) ** 2 for x in xs)
    slope = sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx if sxx else 0.0
    return slope, my - slope * mx


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="3000,30000,60000", help="pod counts, ascending")
    parser.add_argument("--pods-per-node", type=int, default=30)
    parser.add_argument("--instance-type", default="m5.xlarge")
    parser.add_argument("--burst", type=int, default=1000, help="K pods created at once")
    parser.add_argument("--churn-rate", type=float, default=50.0, help="pod replacements a second")
    parser.add_argument("--churn-seconds", type=float, default=30.0)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--slow", type=float, default=60.0, help="first status later than this is reported slow")
    args = parser.parse_args()
    sizes = sorted(int(s) for s in args.sizes.split(","))
    signal.signal(signal.SIGTERM, _interrupt)  # `kill` unwinds like Ctrl-C: the control plane is stopped
    print(f"machine: {os.cpu_count()} CPUs, {load()}", flush=True)
    with tempfile.TemporaryDirectory(prefix="warmpool-scale-") as tmp:
        bench = Bench(args, Path(tmp))
        try:
            bench.start()
            for size in sizes:
                bench.grow(size)
                bench.measure(size)
        finally:
            bench.stop()
            bench.report()


if __name__ == "__main__":
    main()
