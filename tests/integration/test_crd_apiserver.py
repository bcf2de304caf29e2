"""The committed CRD on a real kube-apiserver: admission, status subresource, printer columns, RBAC."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest
from kubernetes import client

from tests.kube import unique, wide_columns
from tests.policy_cases import BAD_SPECS, GOOD_SPECS
from warmpool.api import v1alpha1
from warmpool_dev.devcluster.cluster import DevCluster

pytestmark = pytest.mark.integration


def _policy(name: str, spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": v1alpha1.API_VERSION,
        "kind": v1alpha1.KIND,
        "metadata": {"name": name},
        "spec": spec,
    }


def _create(api: client.ApiClient, name: str, spec: dict[str, Any], dry_run: bool = False) -> dict[str, Any]:
    objects = client.CustomObjectsApi(api)
    kwargs = {"dry_run": "All"} if dry_run else {}
    created: dict[str, Any] = objects.create_cluster_custom_object(
        v1alpha1.GROUP, v1alpha1.VERSION, v1alpha1.PLURAL, _policy(name, spec), **kwargs
    )
    return created


@pytest.fixture
def created(admin_api: client.ApiClient) -> Iterator[list[str]]:
    """Names of policies a test stores; deleted after it, so no later test's operator picks them up."""
    names: list[str] = []
    yield names
    objects = client.CustomObjectsApi(admin_api)
    for name in names:
        objects.delete_cluster_custom_object(v1alpha1.GROUP, v1alpha1.VERSION, v1alpha1.PLURAL, name)


@pytest.mark.parametrize("case", GOOD_SPECS)
def test_good_policies_are_accepted_and_defaulted(admin_api: client.ApiClient, case: str) -> None:
    # A server-side dry run goes through defaulting and every admission rule, and stores nothing.
    stored = _create(admin_api, unique("good"), GOOD_SPECS[case], dry_run=True)
    # The server's defaults are the models' defaults: parsing what it stored gives the same spec.
    expected = v1alpha1.WarmPoolPolicySpec.model_validate(GOOD_SPECS[case])
    assert v1alpha1.WarmPoolPolicySpec.model_validate(stored["spec"]) == expected


@pytest.mark.parametrize("case", BAD_SPECS)
def test_bad_policies_are_rejected_with_a_readable_message(admin_api: client.ApiClient, case: str) -> None:
    bad = BAD_SPECS[case]
    with pytest.raises(client.ApiException) as error:
        _create(admin_api, unique("bad"), bad.spec)
    assert error.value.status == 422
    message = json.loads(error.value.body)["message"]
    assert bad.api_message in message, message
    # Reported at the field a person has to change, and nothing else wrong with the policy.
    assert f"{bad.path}: " in message, message
    assert "type conversion error" not in message, message
    assert "cost" not in message, message


def test_status_is_a_subresource(admin_api: client.ApiClient, created: list[str]) -> None:
    objects = client.CustomObjectsApi(admin_api)
    name = unique("status")
    created.append(name)
    first = _create(admin_api, name, {})
    # A status sent with the main resource is ignored...
    objects.patch_cluster_custom_object(
        v1alpha1.GROUP,
        v1alpha1.VERSION,
        v1alpha1.PLURAL,
        name,
        {"status": {"nodes": 7}, "spec": {"paused": True}},
    )
    after = objects.get_cluster_custom_object(v1alpha1.GROUP, v1alpha1.VERSION, v1alpha1.PLURAL, name)
    assert "status" not in after or after["status"].get("nodes") is None
    assert after["metadata"]["generation"] == first["metadata"]["generation"] + 1
    # ...and written through /status, which does not bump the generation.
    objects.patch_cluster_custom_object_status(
        v1alpha1.GROUP,
        v1alpha1.VERSION,
        v1alpha1.PLURAL,
        name,
        {"status": {"nodes": 7, "observedGeneration": 2}},
    )
    read = objects.get_cluster_custom_object_status(v1alpha1.GROUP, v1alpha1.VERSION, v1alpha1.PLURAL, name)
    assert read["status"]["nodes"] == 7
    assert read["metadata"]["generation"] == after["metadata"]["generation"]
    # The status schema is enforced too.
    with pytest.raises(client.ApiException) as error:
        objects.patch_cluster_custom_object_status(
            v1alpha1.GROUP, v1alpha1.VERSION, v1alpha1.PLURAL, name, {"status": {"nodes": -1}}
        )
    assert error.value.status == 422


def test_kubectl_get_shows_the_printer_columns(
    cluster: DevCluster, admin_api: client.ApiClient, created: list[str]
) -> None:
    objects = client.CustomObjectsApi(admin_api)
    name = unique("columns")
    created.append(name)
    _create(admin_api, name, {"dryRun": True})
    objects.patch_cluster_custom_object_status(
        v1alpha1.GROUP,
        v1alpha1.VERSION,
        v1alpha1.PLURAL,
        name,
        {
            "status": {
                "mode": "SecondaryIP",
                "appliedSummary": "WARM_IP_TARGET=3,MINIMUM_IP_TARGET=12",
                "recommendedSummary": "WARM_IP_TARGET=4,MINIMUM_IP_TARGET=12",
                "nodes": 5,
                "podsObserved": 61,
                "burst": {"covered": 2.5},
                "lastAppliedTime": "2026-01-01T00:00:00Z",
                "conditions": [
                    {
                        "type": "Ready",
                        "status": "True",
                        "reason": "Planned",
                        "message": "",
                        "lastTransitionTime": "2026-01-01T00:00:00Z",
                    }
                ],
            }
        },
    )
    plain = cluster.kubectl("get", "wpp", name).stdout.splitlines()
    header = plain[0].split()
    assert header == ["NAME", "MODE", "APPLIED", "NODES", "READY", "LAST", "CHANGE", "AGE"]
    row = plain[1].split()
    assert row[:5] == [name, "SecondaryIP", "WARM_IP_TARGET=3,MINIMUM_IP_TARGET=12", "5", "True"]

    wide = cluster.kubectl("get", "warmpoolpolicies", name, "-o", "wide").stdout.splitlines()
    assert wide[0].split()[-8:] == [
        "RECOMMENDED",
        "PODS",
        "BURST",
        "DRYRUN",
        *("MEASURED-IDLE", "ESTIMATED-IDLE", "NO-IP-ERRORS", "MEASURED"),  # status.measured, absent here
    ]
    columns = wide_columns("\n".join(wide))
    assert [columns[c] for c in ("RECOMMENDED", "PODS", "BURST", "DRYRUN")] == [
        "WARM_IP_TARGET=4,MINIMUM_IP_TARGET=12",
        "61",
        "2.5",
        "true",
    ]
    assert [columns[c] for c in ("MEASURED-IDLE", "ESTIMATED-IDLE", "NO-IP-ERRORS", "MEASURED")] == [""] * 4


def test_operator_identity_has_only_what_deploy_grants(cluster: DevCluster) -> None:
    def can_i(*args: str) -> bool:
        result = cluster.kubectl("auth", "can-i", *args, operator=True, check=False)
        return result.stdout.strip() == "yes"

    assert can_i("list", "pods", "--all-namespaces")
    assert can_i("watch", "nodes")
    assert can_i("patch", "warmpoolpolicies.warmpool.io/status")
    assert can_i("patch", "daemonset/aws-node", "-n", "kube-system")
    assert not can_i("patch", "daemonset/kube-proxy", "-n", "kube-system")
    assert not can_i("get", "secrets", "-n", "kube-system")
    assert not can_i("delete", "pods", "-n", "default")
    assert not can_i("create", "warmpoolpolicies.warmpool.io")
