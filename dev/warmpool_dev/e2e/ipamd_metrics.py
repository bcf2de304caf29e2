"""Stand-ins for ipamd's metrics endpoint (port 61678 of each aws-node pod), for KWOK nodes and tests.

KWOK runs no aws-node, so each fake node gets an aws-node pod (hostNetwork, bound to the node, status written
here) whose IP leads to a small HTTP server answering `/metrics` as ipamd would, with figures from a source
per node (the project's own ipamd model in the e2e, fixed figures in integration tests).

Two ways in, as the operator has:
- the API server's pod proxy. kube-apiserver refuses to proxy to an address that is not global unicast
  ("address not allowed": loopback and link-local are out), so the pods get this machine's own routable
  address and one listener there serves every node, telling them apart by the pod name in the
  `X-Forwarded-Uri` header the API server adds (`.../pods/NAME:PORT/proxy/metrics`).
- direct: each node's pod gets a loopback address of its own (127.0.0.N; Linux routes all of 127/8 to lo,
  no root needed) with a listener bound there, so the address alone names the node.
The port is chosen free per run (the operator's WARMPOOL_IPAMD_METRICS_PORT), so runs side by side never meet.
"""

from __future__ import annotations

import contextlib
import ipaddress
import re
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from kubernetes import client

from warmpool.measured.exposition import IpamdSample, render_ipamd_metrics

_POD_IN_URI = re.compile(r"/pods/([^/:]+)(?::[^/]*)?/proxy/")


def routable_host_ip() -> str | None:
    """This machine's address on its default route, when it is one the API server will proxy to."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect(("192.0.2.1", 9))  # no packet is sent: this only picks the outgoing address
            address = str(sock.getsockname()[0])
        except OSError:
            return None
    ip = ipaddress.ip_address(address)
    return None if ip.is_loopback or ip.is_link_local or ip.is_unspecified else address


def free_port_on(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass(frozen=True)
class Served:
    sample: IpamdSample
    at: float


class IpamdEndpoints:
    """Serves ipamd's metrics for any number of nodes; `served` keeps the last figures each node answered."""

    def __init__(self, port: int) -> None:
        self.port = port
        self._lock = threading.Lock()
        self._servers: dict[str, ThreadingHTTPServer] = {}
        self._threads: list[threading.Thread] = []
        self._node_of_pod: dict[str, str] = {}
        self._node_of_ip: dict[str, str] = {}
        self._sources: dict[str, Callable[[], IpamdSample]] = {}
        self.served: dict[str, Served] = {}
        self.requests = 0

    def add(self, node: str, pod: str, ip: str, source: Callable[[], IpamdSample]) -> None:
        with self._lock:
            self._node_of_pod[pod] = node
            self._node_of_ip.setdefault(ip, node)
            self._sources[node] = source
            if ip not in self._servers:
                server = ThreadingHTTPServer((ip, self.port), _handler(self))
                server.daemon_threads = True
                self._servers[ip] = server
                thread = threading.Thread(target=server.serve_forever, name=f"ipamd-{ip}", daemon=True)
                thread.start()
                self._threads.append(thread)

    def remove(self, node: str) -> None:
        with self._lock:
            self._sources.pop(node, None)

    def answer(self, forwarded_uri: str, local_ip: str) -> IpamdSample | None:
        match = _POD_IN_URI.search(forwarded_uri)
        with self._lock:
            node = self._node_of_pod.get(match.group(1)) if match else self._node_of_ip.get(local_ip)
            source = self._sources.get(node) if node else None
        if node is None or source is None:
            return None
        sample = source()
        with self._lock:
            self.served[node] = Served(sample, time.time())
            self.requests += 1
        return sample

    def stop(self) -> None:
        with self._lock:
            servers, self._servers = list(self._servers.values()), {}
        for server in servers:
            server.shutdown()
            server.server_close()
        for thread in self._threads:
            thread.join(timeout=5)

    def __enter__(self) -> IpamdEndpoints:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _handler(endpoints: IpamdEndpoints) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive, as Go's net/http serves ipamd's metrics

        def do_GET(self) -> None:
            sample = None
            if self.path.split("?")[0] == "/metrics":
                local_ip = str(self.connection.getsockname()[0])
                sample = endpoints.answer(self.headers.get("X-Forwarded-Uri", ""), local_ip)
            if sample is None:
                self.send_error(404)
                return
            body = render_ipamd_metrics(sample).encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: Any) -> None:
            pass

    return Handler


def aws_node_pod(name: str, namespace: str, node: str) -> dict[str, Any]:
    """An aws-node pod of the DaemonSet in `warmpool_dev.e2e.kube` (same labels), bound to `node`."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name, "namespace": namespace, "labels": {"k8s-app": "aws-node"}},
        "spec": {
            "nodeName": node,
            "hostNetwork": True,
            "containers": [{"name": "aws-node", "image": "registry.invalid/amazon-k8s-cni:1"}],
            "tolerations": [{"operator": "Exists"}],
            "terminationGracePeriodSeconds": 0,
        },
    }


def run_aws_node_pod(core: client.CoreV1Api, name: str, namespace: str, node: str, ip: str) -> None:
    """Create the pod and write the status a kubelet would (Running, podIP = the node's address). KWOK, where
    it runs, may write its own podIP first: the status is written until it holds."""
    core.create_namespaced_pod(namespace, aws_node_pod(name, namespace, node))
    status = {"status": {"phase": "Running", "podIP": ip, "podIPs": [{"ip": ip}], "hostIP": ip}}
    deadline = time.monotonic() + 30
    steady = 0
    while steady < 2:
        pod = core.read_namespaced_pod_status(name, namespace)
        if pod.status.pod_ip == ip and pod.status.phase == "Running":
            steady += 1
        else:
            steady = 0
            if time.monotonic() > deadline:
                raise TimeoutError(f"pod {namespace}/{name} would not keep podIP {ip}")
            with contextlib.suppress(client.ApiException):
                core.patch_namespaced_pod_status(name, namespace, status)
        time.sleep(0.2)
