"""Observation without a cluster: which pods take a VPC IP, node facts, selectors, the compact pod and node stores,
and how a watch stream splits into events."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any
from unittest import mock

import pytest
from aiohttp import StreamReader

from warmpool.observe.facts import node_facts, pod_facts, selector_matches, stop_of
from warmpool.observe.listwatch import lines
from warmpool.observe.nodestore import NodeStore
from warmpool.observe.podstore import PodRecord, PodStore, pack_uid, reduce_pod


def pod(**spec: Any) -> dict[str, Any]:
    status = spec.pop("status", {"phase": "Running"})
    meta = spec.pop("metadata", {})
    return {
        "metadata": {"uid": "u1", "creationTimestamp": "2026-01-01T00:00:00Z", **meta},
        "spec": {"nodeName": "n1", "containers": [{"name": "c"}], **spec},
        "status": status,
    }


@pytest.mark.parametrize(
    ("body", "counted"),
    [
        (pod(), True),
        (pod(hostNetwork=True), False),
        (pod(status={"phase": "Succeeded"}), False),
        (pod(status={"phase": "Failed"}), False),
        (pod(nodeName=None), False),
        (pod(metadata={"labels": {"eks.amazonaws.com/fargate-profile": "fp"}}), False),
        (pod(nodeSelector={"kubernetes.io/os": "windows"}), False),
        (pod(metadata={"annotations": {"vpc.amazonaws.com/pod-eni": "[]"}}), False),
        (pod(containers=[{"name": "c", "resources": {"limits": {"vpc.amazonaws.com/pod-eni": "1"}}}]), False),
    ],
)
def test_which_pods_take_a_vpc_ip(body: dict[str, Any], counted: bool) -> None:
    assert (pod_facts(body) is not None) is counted


def test_pod_start_is_when_it_was_scheduled() -> None:
    body = pod(
        status={
            "phase": "Running",
            "conditions": [{"type": "PodScheduled", "status": "True", "lastTransitionTime": "2026-01-01T00:01:40Z"}],
        }
    )
    found = pod_facts(body)
    assert found is not None
    node, facts = found
    assert node == "n1"
    assert facts.started_at == pytest.approx(1767225700.0)


def node(labels: dict[str, str], **extra: Any) -> dict[str, Any]:
    return {
        "metadata": {"name": "n1", "labels": labels, "creationTimestamp": "2026-01-01T00:00:00Z"},
        "spec": {"providerID": "aws:///us-east-1a/i-0abc", **extra},
        "status": {"allocatable": {"pods": "29"}, "conditions": [{"type": "Ready", "status": "True"}]},
    }


def test_node_facts_from_eks_labels() -> None:
    facts = node_facts(
        node(
            {
                "node.kubernetes.io/instance-type": "m5.large",
                "topology.kubernetes.io/zone": "us-east-1a",
                "karpenter.sh/capacity-type": "spot",
                "k8s.amazonaws.com/eniConfig": "us-east-1a-pods",
            },
            unschedulable=True,
        )
    )
    assert facts is not None
    assert (facts.instance_type, facts.zone, facts.capacity_type) == ("m5.large", "us-east-1a", "spot")
    assert (facts.instance_id, facts.eni_config, facts.allocatable_pods) == ("i-0abc", "us-east-1a-pods", 29)
    assert facts.ready
    assert not facts.schedulable


@pytest.mark.parametrize("labels", [{"eks.amazonaws.com/compute-type": "fargate"}, {"kubernetes.io/os": "windows"}])
def test_fargate_and_windows_nodes_are_not_ipamd_nodes(labels: dict[str, str]) -> None:
    assert node_facts(node(labels)) is None


@pytest.mark.parametrize(
    ("selector", "matches"),
    [
        ({}, True),
        ({"matchLabels": {"pool": "web"}}, True),
        ({"matchLabels": {"pool": "batch"}}, False),
        ({"matchExpressions": [{"key": "pool", "operator": "In", "values": ["web", "api"]}]}, True),
        ({"matchExpressions": [{"key": "pool", "operator": "NotIn", "values": ["web"]}]}, False),
        ({"matchExpressions": [{"key": "gpu", "operator": "Exists"}]}, False),
        ({"matchExpressions": [{"key": "gpu", "operator": "DoesNotExist"}]}, True),
    ],
)
def test_selector(selector: dict[str, Any], matches: bool) -> None:
    assert selector_matches(selector, {"pool": "web"}) is matches


@pytest.mark.parametrize(
    ("body", "stopped"),
    [
        (pod(), False),
        (pod(status={"phase": "Succeeded"}), True),
        (pod(metadata={"deletionTimestamp": "2026-01-01T00:05:00Z"}), True),
        (pod(hostNetwork=True, status={"phase": "Failed"}), False),  # never held a VPC IP
        (pod(nodeName=None, status={"phase": "Failed"}), False),
    ],
)
def test_which_pods_release_an_ip(body: dict[str, Any], stopped: bool) -> None:
    found = stop_of(body, now=500.0)
    assert (found is not None) is stopped
    if found is not None:
        assert found == ("n1", "u1", 500.0)


def rec(uid: str, node: str = "n1", bound_at: float = 10.0, stopping: bool = False, pending: bool = False) -> PodRecord:
    return PodRecord(pack_uid(uid), node, bound_at, stopping, pending)


UID_A = "0f8b5a6e-0000-4000-8000-00000000000a"


def test_pod_bodies_reduce_to_the_facts_the_planner_needs() -> None:
    assert reduce_pod(pod(metadata={"uid": UID_A})) == PodRecord(pack_uid(UID_A), "n1", 1767225600.0, False, False)
    assert reduce_pod(pod(hostNetwork=True)).node == ""
    terminating = reduce_pod(pod(metadata={"deletionTimestamp": "2026-01-01T00:05:00Z"}))
    assert (terminating.node, terminating.stopping) == ("n1", True)
    assert reduce_pod(pod(nodeName=None, status={"phase": "Pending"})).pending
    assert pack_uid(UID_A) == int(UID_A.replace("-", ""), 16)
    assert pack_uid("not-a-uuid") == "not-a-uuid"


def test_store_counts_each_pod_once_and_logs_its_start_and_stop() -> None:
    store = PodStore(horizon_seconds=100)
    store.apply("ADDED", rec("a", bound_at=10.0), now=11.0)
    store.apply("MODIFIED", rec("a", bound_at=10.0), now=12.0)  # seen again: still one pod, one start
    store.apply("ADDED", rec("b", bound_at=20.0), now=21.0)
    store.apply("ADDED", rec("c", node="n2", bound_at=30.0), now=31.0)
    assert (store.ip_pods("n1"), store.ip_pods("n2"), len(store)) == (2, 1, 3)
    assert store.start_times("n1", since=0) == (10.0, 20.0)

    store.apply("MODIFIED", rec("a", stopping=True), now=40.0)  # being deleted: stop logged, IP still held
    store.apply("MODIFIED", rec("a", stopping=True), now=45.0)
    assert store.ip_pods("n1") == 2
    store.apply("DELETED", rec("a", stopping=True), now=50.0)  # gone: no second stop
    store.apply("MODIFIED", rec("b", node=""), now=60.0)  # finished: its IP is released now
    assert (store.ip_pods("n1"), len(store)) == (0, 1)
    assert store.stop_times("n1", since=0) == (40.0, 60.0)
    assert store.start_times("n1", since=0) == (10.0, 20.0)

    store.prune(now=125.0, live_nodes={"n1"})
    assert store.start_times("n1", since=0) == ()  # older than the horizon
    assert store.stop_times("n1", since=0) == (40.0, 60.0)
    assert store.start_times("n2", since=0) == ()  # its node is gone from the node list
    assert store.ip_pods("n2") == 1  # the count follows pod events, not the log


def test_pending_pods_are_counted_until_bound_or_deleted() -> None:
    store = PodStore()
    store.apply("ADDED", rec("p", node="", pending=True), now=1.0)
    store.apply("ADDED", rec("q", node="", pending=True), now=1.0)
    assert store.pending == 2
    store.apply("MODIFIED", rec("p", bound_at=2.0), now=2.0)
    store.apply("DELETED", rec("q", node="", pending=True), now=3.0)
    assert (store.pending, store.ip_pods("n1")) == (0, 1)


def test_relist_replaces_the_whole_set() -> None:
    store = PodStore()
    for uid in ("a", "b", "c"):
        store.apply("ADDED", rec(uid, bound_at=10.0), now=10.0)
    store.apply("ADDED", rec("w", node="", pending=True), now=10.0)
    store.begin_relist()
    store.relist_add(rec("a", bound_at=10.0), now=100.0)  # still there
    store.relist_add(rec("b", stopping=True), now=100.0)  # being deleted now
    store.relist_add(rec("d", node="n2", bound_at=90.0), now=100.0)  # started while unwatched
    assert store.ip_pods("n1") == 3  # reads see the old set until the list is complete
    store.end_relist()
    # c and the pending w vanished with no DELETED event; their stop time is unknown, so none is logged.
    assert (store.ip_pods("n1"), store.ip_pods("n2"), store.pending, len(store)) == (2, 1, 0, 3)
    assert store.start_times("n1", since=0) == (10.0, 10.0, 10.0)
    assert store.start_times("n2", since=0) == (90.0,)
    assert store.stop_times("n1", since=0) == (100.0,)


def test_an_aborted_relist_leaves_no_trace() -> None:
    store = PodStore()
    store.apply("ADDED", rec("a"), now=10.0)
    store.begin_relist()
    store.relist_add(rec("new", bound_at=50.0), now=60.0)
    store.abort_relist()
    store.begin_relist()
    store.relist_add(rec("a"), now=70.0)
    store.relist_add(rec("new", bound_at=50.0), now=70.0)
    store.end_relist()
    assert store.start_times("n1", since=0) == (10.0, 50.0)  # "new" started once, not once per attempt
    assert store.ip_pods("n1") == 2


def test_node_store_keeps_ipamd_nodes_and_relists_whole() -> None:
    store = NodeStore()
    store.apply("ADDED", node({"kubernetes.io/os": "linux"}))
    store.apply(
        "ADDED",
        {
            **node({"kubernetes.io/os": "windows"}),
            "metadata": {"name": "win", "labels": {"kubernetes.io/os": "windows"}},
        },
    )
    assert store.names() == {"n1"}
    store.begin_relist()
    store.relist_add({**node({}), "metadata": {"name": "n2", "labels": {}}})
    store.end_relist()
    assert store.names() == {"n2"}
    store.apply("DELETED", {"metadata": {"name": "n2"}})
    assert len(store) == 0


async def test_watch_lines_are_split_however_the_bytes_arrive() -> None:
    long_line = b'{"type":"ADDED","object":{"x":"' + b"a" * 300_000 + b'"}}'  # longer than aiohttp's readline limit
    stream = StreamReader(mock.Mock(_reading_paused=False), 2**16, loop=asyncio.get_running_loop())
    for chunk in (b'{"a":1}\n{"b"', b":2}\n\n" + long_line[:1000], long_line[1000:], b"\n", b'{"c":3}'):
        stream.feed_data(chunk)
    stream.feed_eof()
    got = [line async for line in lines(SimpleNamespace(content=stream))]  # type: ignore[arg-type]
    assert got == [b'{"a":1}', b'{"b":2}', b"", long_line, b'{"c":3}']
