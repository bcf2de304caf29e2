"""The local EKS add-on endpoint behaves as EKS does toward boto3 and toward the real API server: the update
lifecycle, the configuration schema, and what each resolveConflicts mode does to an env entry another field
manager changed (VPC CNI issue #2607)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from botocore.exceptions import ClientError
from kubernetes import client

from tests.fixtures.eks_addon import eks_addon, eks_client
from tests.kube import aws_node_env_apply, container_env, read_aws_node
from warmpool_dev.e2e.eks_addon import ADDON_VERSION, EksAddonEndpoint

pytestmark = pytest.mark.integration
__all__ = ["eks_addon"]


def owners(api: client.ApiClient, namespace: str) -> dict[str, list[str]]:
    """env name -> the field managers owning its value (not merely the list entry)."""
    key = 'k:{"name":"aws-node"}'
    found: dict[str, list[str]] = {}
    for entry in read_aws_node(api, namespace)["metadata"].get("managedFields") or []:
        spec = entry.get("fieldsV1", {}).get("f:spec", {}).get("f:template", {}).get("f:spec", {})
        env = spec.get("f:containers", {}).get(key, {}).get("f:env", {})
        for item, fields in env.items():
            if item.startswith("k:") and "f:value" in fields:
                found.setdefault(json.loads(item[2:])["name"], []).append(entry["manager"])
    return found


def apply_as_warmpool(api: client.ApiClient, namespace: str, env: dict[str, str]) -> None:
    """What warmpool's direct path does: server-side apply of env entries, forced."""
    body = aws_node_env_apply(namespace, env)
    client.AppsV1Api(api).patch_namespaced_daemon_set(
        "aws-node", namespace, body, field_manager="warmpool", force=True, _content_type="application/apply-patch+yaml"
    )


def update(eks: Any, config: dict[str, Any], resolve: str) -> str:
    reply = eks.update_addon(
        clusterName="dev", addonName="vpc-cni", resolveConflicts=resolve, configurationValues=json.dumps(config)
    )
    update_id: str = reply["update"]["id"]
    return update_id


def test_update_lifecycle_and_schema(eks_addon: EksAddonEndpoint, admin_api: client.ApiClient, namespace: str) -> None:
    eks = eks_client(eks_addon)
    addon = eks.describe_addon(clusterName="dev", addonName="vpc-cni")["addon"]
    assert (addon["status"], addon["addonVersion"]) == ("ACTIVE", ADDON_VERSION)
    assert "configurationValues" not in addon
    # The add-on owns its env entries from the start.
    assert owners(admin_api, namespace)["WARM_ENI_TARGET"] == ["eks"]

    schema = json.loads(
        eks.describe_addon_configuration(addonName="vpc-cni", addonVersion=ADDON_VERSION)["configurationSchema"]
    )
    assert schema["properties"]["env"]["properties"]["WARM_IP_TARGET"] == {"type": "string"}

    eks_addon.hold()
    config = {"env": {"WARM_IP_TARGET": "3", "MINIMUM_IP_TARGET": "10"}}
    update_id = update(eks, config, "PRESERVE")
    described = eks.describe_update(name="dev", updateId=update_id, addonName="vpc-cni")["update"]
    assert (described["status"], described["type"]) == ("InProgress", "AddonUpdate")
    assert {"type": "ResolveConflicts", "value": "PRESERVE"} in described["params"]
    assert eks.describe_addon(clusterName="dev", addonName="vpc-cni")["addon"]["status"] == "UPDATING"
    with pytest.raises(ClientError) as busy:  # one update at a time
        update(eks, config, "PRESERVE")
    assert busy.value.response["Error"]["Code"] == "ResourceInUseException"
    assert "WARM_IP_TARGET" not in container_env(read_aws_node(admin_api, namespace))

    eks_addon.release()
    eks_addon.wait_idle()
    assert eks.describe_update(name="dev", updateId=update_id, addonName="vpc-cni")["update"]["status"] == "Successful"
    addon = eks.describe_addon(clusterName="dev", addonName="vpc-cni")["addon"]
    assert addon["status"] == "ACTIVE"
    assert json.loads(addon["configurationValues"]) == config
    env = container_env(read_aws_node(admin_api, namespace))
    assert (env["WARM_IP_TARGET"], env["MINIMUM_IP_TARGET"], env["WARM_ENI_TARGET"]) == ("3", "10", "1")
    assert owners(admin_api, namespace)["WARM_IP_TARGET"] == ["eks"]


def test_bad_configuration_is_refused_and_changes_nothing(
    eks_addon: EksAddonEndpoint, admin_api: client.ApiClient, namespace: str
) -> None:
    eks = eks_client(eks_addon)
    before = read_aws_node(admin_api, namespace)["metadata"]["generation"]
    for config in ({"env": {"WARM_IP_TARGET": 3}}, {"env": {"NOT_A_CNI_VARIABLE": "1"}}, {"surprise": True}):
        with pytest.raises(ClientError) as refused:
            update(eks, config, "PRESERVE")
        assert refused.value.response["Error"]["Code"] == "InvalidParameterException"
    with pytest.raises(ClientError) as missing:
        eks.describe_addon(clusterName="other", addonName="vpc-cni")
    assert missing.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert read_aws_node(admin_api, namespace)["metadata"]["generation"] == before
    assert eks.describe_addon(clusterName="dev", addonName="vpc-cni")["addon"]["status"] == "ACTIVE"


@pytest.mark.parametrize(
    ("resolve", "status", "eni_after", "eni_owners", "loglevel_after"),
    [
        ("OVERWRITE", "Successful", "1", ["eks"], "INFO"),  # the add-on takes the entry back
        ("NONE", "Failed", "2", ["warmpool"], "DEBUG"),  # the update fails, nothing changes
        ("PRESERVE", "Successful", "2", ["warmpool"], "INFO"),  # the other value stays, the rest applies
    ],
)
def test_resolve_conflicts_modes(
    eks_addon: EksAddonEndpoint,
    admin_api: client.ApiClient,
    namespace: str,
    resolve: str,
    status: str,
    eni_after: str,
    eni_owners: list[str],
    loglevel_after: str,
) -> None:
    eks = eks_client(eks_addon)
    apply_as_warmpool(admin_api, namespace, {"WARM_ENI_TARGET": "2"})  # a direct edit of an add-on entry
    assert owners(admin_api, namespace)["WARM_ENI_TARGET"] == ["warmpool"]

    update_id = update(eks, {"env": {"AWS_VPC_K8S_CNI_LOGLEVEL": "INFO"}}, resolve)
    eks_addon.wait_idle()
    described = eks.describe_update(name="dev", updateId=update_id, addonName="vpc-cni")["update"]
    assert described["status"] == status
    env = container_env(read_aws_node(admin_api, namespace))
    assert (env["WARM_ENI_TARGET"], env["AWS_VPC_K8S_CNI_LOGLEVEL"]) == (eni_after, loglevel_after)
    assert owners(admin_api, namespace)["WARM_ENI_TARGET"] == eni_owners
    addon = eks.describe_addon(clusterName="dev", addonName="vpc-cni")["addon"]
    if status == "Failed":
        assert described["errors"][0]["errorCode"] == "ConfigurationConflict"
        assert "WARM_ENI_TARGET" in described["errors"][0]["errorMessage"]
        assert addon["status"] == "UPDATE_FAILED"
        assert addon["health"]["issues"][0]["code"] == "ConfigurationConflict"
        assert "configurationValues" not in addon  # the failed update's values did not take
    else:
        assert addon["status"] == "ACTIVE"
