"""The operator's own pod/node watcher against the real API server: paginated list, watch resumed from the last
resourceVersion, a 410 answered by a relist that replaces the whole set, and an API server restart mid-watch.

Each test binds its pods to a node name of its own, so pods of other tests (the cluster is shared) do not count.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest
from kubernetes import client

from tests.kube import create_bound_pod, swap_to_other_apiserver, unique
from warmpool.kubeclient import load_configuration
from warmpool.observe.cluster import ClusterView, PodSink
from warmpool.observe.listwatch import KubeHttp, ListWatch
from warmpool.observe.podstore import PodStore
from warmpool.settings import Settings
from warmpool_dev.devcluster.cluster import DevCluster

pytestmark = pytest.mark.integration


async def until(predicate: Callable[[], object], what: str, limit: float = 90.0) -> None:
    """Poll for a condition; the limit only bounds a failing test."""
    deadline = time.monotonic() + limit
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.1)


def loader(kubeconfig: str) -> Callable[[], object]:
    settings = Settings(kubeconfig=kubeconfig)
    return lambda: asyncio.to_thread(load_configuration, settings)


@pytest.fixture
async def pod_watch(cluster: DevCluster) -> AsyncIterator[Callable[..., ListWatch]]:
    """Start list + watch loops on pods as the operator's ServiceAccount; all are stopped after the test."""
    assert cluster.state is not None
    kubeconfig = cluster.state.operator_kubeconfig
    started: list[tuple[ListWatch, asyncio.Task[None]]] = []

    def start(path: str = "/api/v1/pods", **options: int) -> ListWatch:
        watch = ListWatch(KubeHttp(loader(kubeconfig)), path, PodSink(PodStore()), **options)  # type: ignore[arg-type]
        started.append((watch, asyncio.create_task(watch.run())))
        return watch

    yield start
    for watch, task in started:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await watch.http.close()


def store(watch: ListWatch) -> PodStore:
    sink = watch.sink
    assert isinstance(sink, PodSink)
    return sink.store


def make_pods(admin_api: client.ApiClient, namespace: str, node: str, count: int, prefix: str = "p") -> list[str]:
    core = client.CoreV1Api(admin_api)
    names = [f"{prefix}{i}" for i in range(count)]
    for name in names:
        create_bound_pod(core, namespace, name, node)
    return names


async def test_list_is_paginated_and_the_watch_resumes_where_it_ended(
    admin_api: client.ApiClient, namespace: str, pod_watch: Callable[..., ListWatch]
) -> None:
    node = unique("node")
    await asyncio.to_thread(make_pods, admin_api, namespace, node, 25)
    # Pages of 10; the server ends each watch after about a second, so the watcher resumes many times.
    watch = pod_watch(page_size=10, watch_seconds=1)
    await until(watch.synced.is_set, "the first list")
    assert store(watch).ip_pods(node) == 25
    assert watch.stats.pages >= 3

    core = client.CoreV1Api(admin_api)
    for round_ in range(3):
        opened, expected = watch.stats.watches, 25 + round_ + 1
        await until(lambda o=opened: watch.stats.watches >= o + 2, "the watch to be reopened")  # type: ignore[misc]
        await asyncio.to_thread(make_pods, admin_api, namespace, node, 2, prefix=f"r{round_}-")
        await asyncio.to_thread(core.delete_namespaced_pod, f"p{round_}", namespace, grace_period_seconds=0)
        await until(lambda e=expected: store(watch).ip_pods(node) == e, "pods created and deleted since")  # type: ignore[misc]
    # Every reconnect resumed from the last resourceVersion: one list, no relist.
    assert (watch.stats.lists, watch.stats.relists, watch.stats.errors) == (1, 0, 0)
    assert len(store(watch).start_times(node, since=0)) == 25 + 6
    assert len(store(watch).stop_times(node, since=0)) == 3


async def test_an_empty_collection_lists_and_watches(
    admin_api: client.ApiClient, namespace: str, pod_watch: Callable[..., ListWatch]
) -> None:
    watch = pod_watch(f"/api/v1/namespaces/{namespace}/pods")
    await until(watch.synced.is_set, "the first list")
    assert len(store(watch)) == 0
    node = unique("node")
    await asyncio.to_thread(make_pods, admin_api, namespace, node, 1)
    await until(lambda: store(watch).ip_pods(node) == 1, "the pod created after the list")


async def test_restart_mid_watch_relists_on_410_and_drops_pods_deleted_meanwhile(
    cluster: DevCluster,
    admin_api: client.ApiClient,
    namespace: str,
    pod_watch: Callable[..., ListWatch],
    tmp_path: Path,
) -> None:
    assert cluster.state is not None
    node = unique("node")
    names = await asyncio.to_thread(make_pods, admin_api, namespace, node, 4)
    watch = pod_watch()
    await until(lambda: store(watch).ip_pods(node) == 4, "the 4 pods")

    def behind_its_back() -> list[str]:
        # The watcher's API server goes away; another one on the same etcd deletes and creates pods meanwhile.
        args, other = swap_to_other_apiserver(cluster, tmp_path)
        for name in names[1:]:
            client.CoreV1Api(other).delete_namespaced_pod(name, namespace, grace_period_seconds=0)
        added = make_pods(other, namespace, node, 2, prefix="while-away-")
        cluster.stop_apiserver()
        # Back on the original port: its fresh watch cache cannot resume the watcher's resourceVersion.
        cluster.start_apiserver(args)
        return added

    before = watch.stats.resource_version
    await asyncio.to_thread(behind_its_back)
    await until(lambda: store(watch).ip_pods(node) == 3, "only the surviving and the new pods")
    assert watch.stats.errors >= 1  # the connection broke and was retried
    assert watch.stats.relists >= 1  # resuming from `before` was refused with 410 Gone
    assert watch.stats.resource_version != before
    # Still watching after the relist: a later pod shows up.
    await asyncio.to_thread(make_pods, admin_api, namespace, node, 1, prefix="after-")
    await until(lambda: store(watch).ip_pods(node) == 4, "a pod created after the relist")


async def test_cluster_view_watches_nodes_and_pods_with_the_operators_credentials(
    cluster: DevCluster, admin_api: client.ApiClient, namespace: str
) -> None:
    assert cluster.state is not None
    core = client.CoreV1Api(admin_api)
    name = unique("n")
    await asyncio.to_thread(
        core.create_node,
        {
            "metadata": {
                "name": name,
                "labels": {"kubernetes.io/os": "linux", "node.kubernetes.io/instance-type": "m5.large"},
            }
        },
    )
    view = ClusterView(loader(cluster.state.operator_kubeconfig))  # type: ignore[arg-type]
    view.start()
    try:
        await until(lambda: view.synced, "both lists")
        assert name in view.nodes.names()
        await asyncio.to_thread(make_pods, admin_api, namespace, name, 2)
        await until(lambda: view.pods.ip_pods(name) == 2, "the node's pods")
        await asyncio.to_thread(core.delete_node, name)
        await until(lambda: name not in view.nodes.names(), "the node's deletion")
    finally:
        await view.stop()
