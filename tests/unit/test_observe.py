"""Pure observation: which pods take a VPC IP, node facts, selectors, the start log and stale index entries."""

from __future__ import annotations

from typing import Any

import pytest

from warmpool.observe.facts import node_facts, pod_facts, selector_matches, stop_of
from warmpool.observe.liveness import CLOCK_MARGIN, LiveSet
from warmpool.observe.startlog import StartLog


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


def test_start_log_counts_each_pod_once_and_forgets_old_starts_and_gone_nodes() -> None:
    log = StartLog(horizon_seconds=100)
    log.record("n1", "a", 10.0)
    log.record("n1", "a", 50.0)  # the same pod seen again (relist): the first start stands
    log.record("n1", "b", 60.0)
    log.record("n2", "c", 70.0)
    assert log.times("n1", since=0) == (10.0, 60.0)
    log.prune(now=150.0, live_nodes={"n1"})
    assert log.times("n1", since=0) == (60.0,)
    assert log.times("n2", since=0) == ()
    assert len(log) == 1


def test_live_set_marks_only_old_missing_objects_stale() -> None:
    live = LiveSet(listed_at=1000.0, pod_uids=frozenset({"here"}), node_names=frozenset({"n1"}))
    assert not live.pod_is_stale("here", 10.0)
    assert live.pod_is_stale("gone", 10.0)
    # Started after (or just before) the list began: it could not be in it, so it is not stale.
    assert not live.pod_is_stale("new", 1000.0 - CLOCK_MARGIN / 2)
    assert live.node_is_stale("n9", 0.0)
    assert not live.node_is_stale("n1", 0.0)


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


def test_start_log_keeps_stops_apart_from_starts() -> None:
    log = StartLog(horizon_seconds=100)
    log.record("n1", "a", 10.0)
    log.record_stop("n1", "a", 40.0)
    log.record_stop("n1", "a", 45.0)  # seen again while terminating: the first sighting stands
    assert log.times("n1", since=0) == (10.0,)
    assert log.stop_times("n1", since=0) == (40.0,)
    log.prune(now=145.0)
    assert log.stop_times("n1", since=0) == ()
