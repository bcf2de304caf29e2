"""How the handler words the API server's refusals of a write to the target DaemonSet."""

from __future__ import annotations

import json

from kubernetes import client

from warmpool.controller.reconcile import _api_problem


def _refusal(status: int, message: str) -> client.ApiException:
    error = client.ApiException(status=status, reason="Forbidden")
    error.body = json.dumps({"kind": "Status", "status": "Failure", "message": message, "code": status})
    return error


def test_rbac_refusal_names_the_permission_to_grant() -> None:
    error = _refusal(403, 'daemonsets.apps "aws-node" is forbidden: User "system:serviceaccount:x:y" cannot patch')
    reason, message = _api_problem(error, "patch", "kube-system", "aws-node")
    assert reason == "Forbidden"
    assert 'grant its ServiceAccount "patch" on resource "daemonsets"' in message


def test_admission_policy_refusal_passes_the_servers_message_on() -> None:
    denial = (
        "daemonsets.apps \"aws-node\" is forbidden: ValidatingAdmissionPolicy 'warmpool-operator-daemonset' with "
        "binding 'warmpool-operator-daemonset' denied request: the operator may change only the warm-pool env"
    )
    reason, message = _api_problem(_refusal(403, denial), "patch", "kube-system", "aws-node")
    assert reason == "AdmissionDenied"
    assert denial in message
    assert "grant" not in message  # RBAC advice would send the user the wrong way


def test_refusal_without_a_status_body_still_gets_a_message() -> None:
    error = client.ApiException(status=503, reason="Service Unavailable")
    reason, message = _api_problem(error, "get", "kube-system", "aws-node")
    assert reason == "Unreachable"
    assert "HTTP 503" in message
