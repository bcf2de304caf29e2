"""Reading the aws-node DaemonSet (env, owners, rollout state, image) and the apply body."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.kube import aws_node_daemonset
from warmpool.api.v1alpha1 import Variable
from warmpool.apply.daemonset import apply_body, rollout_state, view
from warmpool.step import conflict_winner


def env_fields(*names: str) -> dict[str, Any]:
    container = "k:" + json.dumps({"name": "aws-node"}, separators=(",", ":"))
    env = {"k:" + json.dumps({"name": n}, separators=(",", ":")): {".": {}, "f:value": {}} for n in names}
    return {"f:spec": {"f:template": {"f:spec": {"f:containers": {container: {"f:env": env}}}}}}


def daemonset(managed: list[dict[str, Any]], **status: int) -> dict[str, Any]:
    ds = aws_node_daemonset("kube-system")
    ds["metadata"]["generation"] = 4
    ds["metadata"]["managedFields"] = managed
    ds["status"] = {
        "observedGeneration": 4,
        "desiredNumberScheduled": 3,
        "updatedNumberScheduled": 3,
        "numberAvailable": 3,
        **status,
    }
    return ds


def test_view_reads_env_owners_and_warmpools_apply_time() -> None:
    ds = daemonset(
        [
            {"manager": "eks", "operation": "Apply", "fieldsV1": env_fields("WARM_ENI_TARGET", "WARM_IP_TARGET")},
            {
                "manager": "warmpool",
                "operation": "Apply",
                "time": "2026-01-01T00:00:10Z",
                "fieldsV1": env_fields("MINIMUM_IP_TARGET"),
            },
        ]
    )
    seen = view(ds, "aws-node")
    assert seen.container_found
    assert seen.image.endswith("amazon-k8s-cni:v1.19.2")
    assert seen.env["MY_NODE_NAME"].value_from
    assert seen.plain_env()["WARM_ENI_TARGET"] == "1"
    assert seen.owners["WARM_IP_TARGET"] == ["eks"]
    assert seen.warmpool_applied_at == pytest.approx(1767225610.0)
    assert seen.foreign_owners([Variable.WARM_IP_TARGET, Variable.MINIMUM_IP_TARGET]) == {"WARM_IP_TARGET": ["eks"]}
    assert not view(ds, "no-such-container").container_found


@pytest.mark.parametrize(
    ("status", "in_progress"),
    [
        ({}, False),
        ({"observedGeneration": 3}, True),
        ({"updatedNumberScheduled": 2}, True),
        ({"numberAvailable": 1}, True),
    ],
)
def test_rollout_state(status: dict[str, int], in_progress: bool) -> None:
    assert rollout_state(daemonset([], **status))[0] is in_progress


def test_a_kubectl_edit_is_not_a_foreign_owner_but_gitops_is() -> None:
    ds = daemonset(
        [
            {"manager": "kubectl-edit", "operation": "Update", "fieldsV1": env_fields("WARM_IP_TARGET")},
            {"manager": "argocd-controller", "operation": "Apply", "fieldsV1": env_fields("MINIMUM_IP_TARGET")},
        ]
    )
    foreign = view(ds, "aws-node").foreign_owners(list(Variable))
    assert foreign == {"MINIMUM_IP_TARGET": ["argocd-controller"]}


def test_apply_body_holds_only_the_managed_entries() -> None:
    body = apply_body(
        "kube-system", "aws-node", "aws-node", {Variable.WARM_IP_TARGET: 3, Variable.MINIMUM_IP_TARGET: 9}
    )
    containers = body["spec"]["template"]["spec"]["containers"]
    assert containers == [
        {
            "name": "aws-node",
            "env": [{"name": "MINIMUM_IP_TARGET", "value": "9"}, {"name": "WARM_IP_TARGET", "value": "3"}],
        }
    ]
    assert set(body["spec"]) == {"template"}


def test_oldest_policy_wins_a_conflict() -> None:
    assert conflict_winner([("2026-02-01T00:00:00Z", "b"), ("2026-01-01T00:00:00Z", "z")]) == (
        "2026-01-01T00:00:00Z",
        "z",
    )
    assert conflict_winner([]) is None
