"""Pod events per second the watcher and its store take on one core. Prints numbers, asserts nothing.

    python benchmarks/bench_ingest.py [--events 100000] [--nodes 5000]

The stream: one pod created through a real kube-apiserver (the bench_scale pod, status like KWOK's) is read back
as the API server serializes it (managedFields and all), and N watch events are made from it, as the API server
writes them: each pod ADDED, MODIFIED twice (status, then deletion started) and DELETED, with its own uid, name,
node and resourceVersion. A child process serves the stream over loopback HTTPS as a watch response, one write an event;
this process runs the operator's own ListWatch on it, so the figure covers HTTP reading, line splitting,
json.loads, the reduction to a PodRecord and the store, and nothing else. CPU time is this process's only
(the server's is its own). A breakdown by stage and a comparison of JSON decoders follow.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import ssl
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

from kubernetes import client

from warmpool.observe.cluster import PodSink
from warmpool.observe.listwatch import KubeHttp, ListWatch
from warmpool.observe.podstore import PodStore, reduce_pod

SERVER = r"""
import asyncio
import ssl
import sys
from aiohttp import web

stream = open(sys.argv[1], "rb").read()

async def pods(request):
    if request.query.get("watch"):
        response = web.StreamResponse(headers={"Content-Type": "application/json"})
        await response.prepare(request)
        pace = float(sys.argv[5])  # events a second; 0: as fast as the reader takes them
        started = asyncio.get_running_loop().time()
        for i, line in enumerate(stream.splitlines(keepends=True)):  # one write an event, as the API server does
            await response.write(line)
            if pace:
                await asyncio.sleep(max(0.0, started + (i + 1) / pace - asyncio.get_running_loop().time()))
        await response.write_eof()
        return response
    return web.json_response({"kind": "PodList", "metadata": {"resourceVersion": "1"}, "items": None})

app = web.Application()
app.router.add_get("/api/v1/pods", pods)
context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
context.load_cert_chain(sys.argv[3], sys.argv[4])
web.run_app(app, host="127.0.0.1", port=int(sys.argv[2]), print=None, ssl_context=context)
"""


def real_pod() -> dict[str, Any]:
    """One pod as a real API server returns it."""
    from bench_scale import NAMESPACE, pod_body, pod_status  # benchmarks/ is on sys.path when run as a script
    from kubernetes import config

    from warmpool_dev.devcluster.cluster import DevCluster

    with DevCluster() as state:
        api = config.new_client_from_config(config_file=state.admin_kubeconfig)
        core = client.CoreV1Api(api)
        core.create_namespace({"metadata": {"name": NAMESPACE}})
        core.create_namespaced_pod(NAMESPACE, pod_body("template", "n00000"))
        core.patch_namespaced_pod_status("template", NAMESPACE, pod_status("10.64.0.1"))
        response = core.read_namespaced_pod("template", NAMESPACE, _preload_content=False)
        body: dict[str, Any] = json.loads(response.data)
        api.close()
    return body


def make_stream(template: dict[str, Any], events: int, nodes: int) -> list[bytes]:
    lines: list[bytes] = []
    rv = 1000
    pods = events // 4
    for i in range(pods):
        body = json.loads(json.dumps(template))
        meta = body["metadata"]
        meta["name"] = f"web-5d8f7c9b6d-{i:06x}"
        meta["uid"] = f"{i:08x}-1f2e-4d3c-8b5a-{i * 7919 % 16**12:012x}"
        body["spec"]["nodeName"] = f"ip-10-0-{i % nodes // 250}-{i % nodes % 250}.ec2.internal"
        for kind in ("ADDED", "MODIFIED", "MODIFIED", "DELETED"):
            rv += 1
            meta["resourceVersion"] = str(rv)
            if kind == "MODIFIED" and "deletionTimestamp" not in meta and lines and lines[-1].startswith(b'{"type":"M'):
                meta["deletionTimestamp"] = meta["creationTimestamp"]
                meta["deletionGracePeriodSeconds"] = 0
            lines.append(json.dumps({"type": kind, "object": body}, separators=(",", ":")).encode())
    return lines


def rate(label: str, count: int, seconds: float) -> None:
    print(f"   {label:48s} {count / seconds:>10,.0f} events/s ({1e6 * seconds / count:6.1f} us an event)")


def timed(fn: Callable[[], object]) -> float:
    started = time.process_time()
    fn()
    return time.process_time() - started


async def through_watcher(port: int, ca: Path) -> tuple[int, float, float, PodStore]:
    async def load() -> client.Configuration:
        cfg = client.Configuration()
        cfg.host = f"https://127.0.0.1:{port}"
        cfg.ssl_ca_cert = str(ca)
        return cfg

    store = PodStore()
    watch = ListWatch(KubeHttp(load), "/api/v1/pods", PodSink(store))
    rv = await watch.list()
    wall, cpu = time.perf_counter(), time.process_time()
    await watch.watch(rv)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    await watch.http.close()
    return watch.stats.events, cpu, wall, store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--trickle", type=float, default=200.0, help="events a second of the paced run")
    args = parser.parse_args()
    one, five, fifteen = os.getloadavg()
    print(f"machine: {os.cpu_count()} CPUs, load {one:.1f} {five:.1f} {fifteen:.1f}")

    template = real_pod()
    lines = make_stream(template, args.events, args.nodes)
    size = sum(len(line) + 1 for line in lines)
    print(f"stream: {len(lines):,} events, {size / len(lines):,.0f} bytes an event on average ({size / 2**20:.0f} MiB)")

    with tempfile.TemporaryDirectory(prefix="warmpool-ingest-") as tmp:
        stream_file = Path(tmp) / "watch.jsonl"
        stream_file.write_bytes(b"\n".join(lines) + b"\n")
        script = Path(tmp) / "server.py"
        script.write_text(SERVER)
        from warmpool_dev.devcluster.cluster import free_port

        cert, key = Path(tmp) / "tls.crt", Path(tmp) / "tls.key"
        subprocess.run(
            [
                *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"),
                *("-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)),
            ],
            check=True,
            capture_output=True,
        )

        def serve(stream: Path, pace: float) -> tuple[int, float, float, PodStore]:
            port = free_port()
            argv = [str(stream), str(port), str(cert), str(key), str(pace)]
            server = subprocess.Popen([sys.executable, str(script), *argv])
            try:
                deadline = time.monotonic() + 30
                context = ssl.create_default_context(cafile=str(cert))
                while True:
                    try:
                        urllib.request.urlopen(f"https://127.0.0.1:{port}/api/v1/pods", timeout=1, context=context)
                        break
                    except OSError:
                        if time.monotonic() > deadline:
                            raise
                        time.sleep(0.1)
                return asyncio.run(through_watcher(port, cert))
            finally:
                server.terminate()
                server.wait(timeout=10)

        events, cpu, wall, store = serve(stream_file, 0)
        print(f"through the operator's ListWatch over loopback HTTPS ({events:,} events, {len(store)} pods left):")
        rate("per CPU-second of the watcher's process", events, cpu)
        rate("per wall-second (server and watcher share the CPUs)", events, wall)
        trickle = Path(tmp) / "trickle.jsonl"
        trickle.write_bytes(b"\n".join(lines[: int(args.trickle * 10)]) + b"\n")
        events, cpu, wall, store = serve(trickle, args.trickle)
        print(f"the same at a trickle of {args.trickle:.0f} events/s for 10 s (a loop wake-up and TLS record each):")
        rate("per CPU-second of the watcher's process", events, cpu)

    print("by stage, on the same lines (CPU time of this process; inputs frozen out of the GC's way):")
    t_json = timed(lambda: [json.loads(line) and None for line in lines])
    rate("json.loads", len(lines), t_json)
    events_in = [json.loads(line) for line in lines[: min(len(lines), 40_000)]]
    gc.freeze()
    t_reduce = timed(lambda: [reduce_pod(event["object"]) and None for event in events_in])
    rate("reduce_pod (facts: node, uid, bound time, flags)", len(events_in), t_reduce)
    records = [(event["type"], reduce_pod(event["object"])) for event in events_in]
    gc.freeze()
    fresh = PodStore()
    t_store = timed(lambda: [fresh.apply(kind, rec, 0.0) for kind, rec in records])
    rate("PodStore.apply", len(records), t_store)
    gc.unfreeze()
    events_in.clear()
    records.clear()
    for name in ("orjson", "msgspec"):
        try:
            module = __import__(name)
        except ImportError:
            print(f"   {name}: not installed")
            continue
        decode = module.loads if name == "orjson" else module.json.decode
        rate(
            f"{name} decode (instead of json.loads)", len(lines), timed(lambda d=decode: [d(x) and None for x in lines])
        )


if __name__ == "__main__":
    main()
