"""One reconcile pass of one WarmPoolPolicy: read indexes, plan, guard, apply, and build the status patch."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pydantic

from warmpool.api import v1alpha1
from warmpool.conditions import ConditionUpdate, merge_conditions
from warmpool.observe.facts import NodeFacts, PodFacts, selector_matches


def selected_nodes(node_index: Mapping[str, Any], selector: v1alpha1.LabelSelector) -> list[NodeFacts]:
    wire = selector.model_dump(by_alias=True)
    found: list[NodeFacts] = []
    for store in node_index.values():
        for facts in store:
            if selector_matches(wire, dict(facts.labels)):
                found.append(facts)
    return sorted(found, key=lambda n: n.name)


async def reconcile_policy(
    *,
    body: Mapping[str, Any],
    memo: Any,
    logger: logging.Logger | logging.LoggerAdapter[logging.Logger],
    node_index: Mapping[str, Any],
    pod_index: Mapping[str, Any],
    pending_pods: int,
    now: float,
) -> dict[str, Any]:
    """Returns the status fields to patch."""
    generation = body.get("metadata", {}).get("generation")
    status = body.get("status") or {}
    stamp = datetime.fromtimestamp(now, UTC)
    try:
        spec = v1alpha1.WarmPoolPolicySpec.model_validate(body.get("spec") or {})
    except pydantic.ValidationError as error:
        logger.error("invalid spec: %s", error)
        return {
            "observedGeneration": generation,
            "conditions": merge_conditions(
                status.get("conditions") or [],
                [
                    ConditionUpdate("Ready", False, "InvalidSpec", str(error)),
                    ConditionUpdate("Degraded", True, "InvalidSpec", str(error)),
                ],
                stamp,
                generation,
            ),
        }

    nodes = selected_nodes(node_index, spec.node_selector)
    pods = sum(len(pod_index.get(n.name, ())) for n in nodes)
    pod_facts: list[PodFacts] = []
    for n in nodes:
        pod_facts.extend(pod_index.get(n.name, ()))
    return {
        "observedGeneration": generation,
        "nodes": len(nodes),
        "podsObserved": pods,
        "lastPlannedTime": stamp.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "conditions": merge_conditions(
            status.get("conditions") or [],
            [ConditionUpdate("Ready", True, "Observing", f"{len(nodes)} nodes, {pods} pods with VPC IPs")],
            stamp,
            generation,
        ),
    }
