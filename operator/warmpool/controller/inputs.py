"""Gathering the planner's inputs: the selected nodes and their pods from the operator's own watches, their
limits and subnets from EC2, and ENIConfigs for custom networking. EC2 and Kubernetes calls are blocking, so they
run in worker threads."""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from kubernetes import client

from warmpool.api import v1alpha1
from warmpool.aws import Ec2Client, Ec2Unavailable
from warmpool.ipamd.limits import InstanceLimits
from warmpool.observe.cluster import ClusterView
from warmpool.observe.facts import NodeFacts, selector_matches
from warmpool.snapshot import ClusterSnapshot, NodeInfo, SubnetInfo
from warmpool.step import Observed

if TYPE_CHECKING:
    from warmpool.controller.context import OperatorContext

ENICONFIG = ("crd.k8s.amazonaws.com", "v1alpha1", "eniconfigs")


def selected_nodes(cluster: ClusterView, selector: v1alpha1.LabelSelector) -> list[NodeFacts]:
    """The nodes a policy's nodeSelector picks, by name."""
    wire = selector.model_dump(by_alias=True)
    found = [f for f in cluster.nodes.all() if selector_matches(wire, dict(f.labels))]
    return sorted(found, key=lambda n: n.name)


def build_snapshot(
    cluster: ClusterView,
    facts: list[NodeFacts],
    node_subnets: Mapping[str, tuple[str, ...]],
    now: float,
    lookback: float,
    node_count_history: tuple[tuple[float, int], ...] = (),
) -> ClusterSnapshot:
    """What the planner sees of the selected nodes: their pods, and pod starts and stops within `lookback`."""
    pods, since = cluster.pods, now - lookback
    nodes = tuple(
        NodeInfo(
            name=f.name,
            instance_type=f.instance_type,
            zone=f.zone,
            capacity_type=f.capacity_type,
            subnet_ids=node_subnets.get(f.name, ()),
            allocatable_pods=f.allocatable_pods,
            ready=f.ready,
            schedulable=f.schedulable,
            created_at=f.created_at,
            ip_pods=pods.ip_pods(f.name),
            pod_start_times=pods.start_times(f.name, since),
            pod_stop_times=pods.stop_times(f.name, since),
        )
        for f in facts
    )
    return ClusterSnapshot(now=now, nodes=nodes, pending_pods=pods.pending, node_count_history=node_count_history)


@dataclass
class Ec2Inputs:
    limits: dict[str, InstanceLimits] = field(default_factory=dict)
    subnets: dict[str, SubnetInfo] = field(default_factory=dict)
    node_subnets: dict[str, tuple[str, ...]] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)  # human messages for the Degraded condition
    subnets_known: bool = True  # False when the subnet budget could not be checked


def _eniconfig_subnets(api: client.ApiClient) -> dict[str, str]:
    """ENIConfig name -> subnet, or nothing when custom networking is not installed."""
    try:
        found = client.CustomObjectsApi(api).list_cluster_custom_object(*ENICONFIG)
    except client.ApiException as error:
        if error.status in (403, 404):
            return {}
        raise
    return {
        item["metadata"]["name"]: item.get("spec", {}).get("subnet", "")
        for item in found.get("items") or ()  # `items: null` when there are none
        if item.get("spec", {}).get("subnet")
    }


def _fetch_ec2(ec2: Ec2Client, api: client.ApiClient, nodes: list[NodeFacts]) -> Ec2Inputs:
    out = Ec2Inputs()
    types = sorted({n.instance_type for n in nodes if n.instance_type})
    try:
        limits = ec2.instance_limits(types)
        out.limits = dict(limits)
        if limits.error:
            out.problems.append(f"EC2 DescribeInstanceTypes: {limits.error} (using cached or built-in limits)")
    except Ec2Unavailable as error:
        out.limits = dict(error.partial or {})
        out.problems.append(f"EC2 DescribeInstanceTypes: {error.cause}")

    eniconfigs = _eniconfig_subnets(api) if any(n.eni_config for n in nodes) else {}
    node_subnets: dict[str, tuple[str, ...]] = {}
    by_instance: dict[str, str] = {}
    need_lookup = [n.instance_id for n in nodes if n.instance_id and not eniconfigs.get(n.eni_config)]
    try:
        if need_lookup:
            by_instance = dict(ec2.subnets_for_instances(need_lookup))
    except Ec2Unavailable as error:
        by_instance = dict(error.partial or {})
        out.problems.append(f"EC2 DescribeInstances: {error.cause}")
        out.subnets_known = False
    for n in nodes:
        subnet = eniconfigs.get(n.eni_config) or by_instance.get(n.instance_id)
        if subnet:
            node_subnets[n.name] = (subnet,)
    out.node_subnets = node_subnets

    subnet_ids = sorted({s for ids in node_subnets.values() for s in ids})
    try:
        if subnet_ids:
            answer = ec2.subnets(subnet_ids)
            out.subnets = dict(answer)
            if answer.stale:
                out.problems.append(f"EC2 subnets served from cache: {answer.error}")
    except Ec2Unavailable as error:
        out.subnets = dict(error.partial or {})
        out.problems.append(f"EC2 DescribeSubnets: {error.cause}")
        out.subnets_known = False
    return out


async def fetch_ec2(ec2: Ec2Client, api: client.ApiClient, nodes: list[NodeFacts]) -> Ec2Inputs:
    return await asyncio.to_thread(_fetch_ec2, ec2, api, nodes)


async def observe_policy(
    ctx: OperatorContext, spec: v1alpha1.WarmPoolPolicySpec, now: float, lookback: float
) -> Observed:
    """Everything the policy step observes, in one call: the selected nodes with `lookback` seconds of pod
    starts and stops, and their limits and subnets from EC2."""
    facts = selected_nodes(ctx.cluster, spec.node_selector)
    ec2 = await fetch_ec2(ctx.ec2, ctx.api, facts)
    snapshot = build_snapshot(ctx.cluster, facts, ec2.node_subnets, now, lookback)
    return Observed(snapshot, ec2.limits, ec2.subnets, tuple(ec2.problems), ec2.subnets_known)
