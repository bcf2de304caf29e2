"""Applying through the EKS managed add-on, on the real API server with the local EKS add-on endpoint and the
operator as a subprocess with its own RBAC identity: when the add-on owns aws-node's env, the values go
through eks:UpdateAddon, stay the add-on's, and leave every other configuration value alone; an add-on update
in progress holds the next change."""

from __future__ import annotations

import json
from typing import Any

import pytest
from kubernetes import client

from tests.fixtures.eks_addon import eks_addon, eks_client
from tests.fixtures.moto import MotoEc2
from tests.integration.test_apply import events_for, live_spec
from tests.integration.test_eks_addon_endpoint import owners
from tests.integration.test_plan_status import condition, create_policy, eks_nodes, policy_status, wait_status
from tests.kube import container_env, create_node, mark_rollout_complete, read_aws_node, unique
from tests.operator_proc import OperatorProcess
from warmpool_dev.e2e.eks_addon import EksAddonEndpoint

pytestmark = pytest.mark.integration
__all__ = ["eks_addon"]

# The add-on as a user configured it before warmpool: a value warmpool manages, and others it must keep.
USER_CONFIG = {
    "env": {"AWS_VPC_K8S_CNI_LOGLEVEL": "INFO", "WARM_IP_TARGET": "9"},
    "resources": {"requests": {"cpu": "25m"}},
}


def start(
    endpoint: EksAddonEndpoint,
    api: client.ApiClient,
    namespace: str,
    moto_ec2: MotoEc2,
    operator: OperatorProcess,
    **spec: Any,
) -> str:
    endpoint.install(json.dumps(USER_CONFIG))
    mark_rollout_complete(api, namespace, desired=2)
    group = unique("ng")
    eks_nodes(client.CoreV1Api(api), moto_ec2, group, 2)
    policy = unique("addon")
    create_policy(api, policy, live_spec(namespace, group, **spec))
    operator.env.update(
        WARMPOOL_EKS_ENDPOINT_URL=endpoint.endpoint_url,
        WARMPOOL_EKS_CLUSTER_NAME="dev",
        WARMPOOL_EKS_UPDATE_WAIT_SECONDS="1",
        WARMPOOL_EKS_ADDON_DAEMONSET=f"{namespace}/aws-node",  # the add-on's aws-node lives in the test's namespace
    )
    operator.start()
    return policy


def test_addon_owned_env_goes_through_update_addon(
    eks_addon: EksAddonEndpoint,
    admin_api: client.ApiClient,
    namespace: str,
    moto_ec2: MotoEc2,
    run_operator: OperatorProcess,
) -> None:
    policy = start(eks_addon, admin_api, namespace, moto_ec2, run_operator)
    done = wait_status(
        admin_api,
        policy,
        run_operator,
        "the operator's add-on update to succeed",
        lambda s: (s.get("addonUpdate") or {}).get("status") == "Successful",
    )["addonUpdate"]
    config = json.loads(eks_addon.addon.configuration_values)
    # Our values merged in; everything the user had configured is still there.
    assert config["resources"] == USER_CONFIG["resources"]
    assert config["env"]["AWS_VPC_K8S_CNI_LOGLEVEL"] == "INFO"
    assert set(config["env"]) == {"AWS_VPC_K8S_CNI_LOGLEVEL", "WARM_IP_TARGET", "MINIMUM_IP_TARGET"}
    assert (
        done["values"]
        == f"WARM_IP_TARGET={config['env']['WARM_IP_TARGET']},MINIMUM_IP_TARGET=" + (config["env"]["MINIMUM_IP_TARGET"])
    )
    assert [u.resolve_conflicts for u in eks_addon.updates.values()] == ["PRESERVE"]
    # EKS wrote them onto aws-node as the add-on: the entries are still owned by `eks`, and warmpool wrote nothing.
    ds = read_aws_node(admin_api, namespace)
    env = container_env(ds)
    assert env["WARM_IP_TARGET"] == config["env"]["WARM_IP_TARGET"] != "9"
    assert env["MINIMUM_IP_TARGET"] == config["env"]["MINIMUM_IP_TARGET"]
    assert env["AWS_VPC_K8S_CNI_LOGLEVEL"] == "INFO"
    value_owners = owners(admin_api, namespace)
    assert value_owners["WARM_IP_TARGET"] == value_owners["MINIMUM_IP_TARGET"] == ["eks"]
    assert not any(e["manager"] == "warmpool" for e in ds["metadata"]["managedFields"])
    assert "Applied" in events_for(admin_api, policy)
    status = policy_status(admin_api, policy)
    assert condition(status, "ForeignOwner")["status"] == "False"  # the add-on's entries are ours to set this way

    # The point of the route: a later add-on update, even with OVERWRITE (as for a version upgrade), keeps them.
    eks_client(eks_addon).update_addon(clusterName="dev", addonName="vpc-cni", resolveConflicts="OVERWRITE")
    eks_addon.wait_idle()
    after = container_env(read_aws_node(admin_api, namespace))
    assert (after["WARM_IP_TARGET"], after["MINIMUM_IP_TARGET"]) == (env["WARM_IP_TARGET"], env["MINIMUM_IP_TARGET"])


def test_update_in_progress_holds_the_next_change(
    eks_addon: EksAddonEndpoint,
    admin_api: client.ApiClient,
    namespace: str,
    moto_ec2: MotoEc2,
    run_operator: OperatorProcess,
) -> None:
    eks_addon.hold()  # EKS takes its time with this one
    policy = start(eks_addon, admin_api, namespace, moto_ec2, run_operator)
    wait_status(
        admin_api,
        policy,
        run_operator,
        "the operator to start an add-on update",
        lambda s: (s.get("addonUpdate") or {}).get("status") == "InProgress",
    )
    # The next passes hold, as for a rollout in progress, and send nothing more.
    held = condition(
        wait_status(
            admin_api,
            policy,
            run_operator,
            "a pass held by the add-on update",
            lambda s: condition(s, "Applied").get("reason") == "RolloutInProgress",
        ),
        "Applied",
    )
    assert "EKS add-on vpc-cni update in progress" in held["message"]
    assert len(eks_addon.updates) == 1
    assert container_env(read_aws_node(admin_api, namespace))["WARM_IP_TARGET"] == "9"  # not applied yet

    eks_addon.release()
    wait_status(
        admin_api,
        policy,
        run_operator,
        "a later pass to see the update finish",
        lambda s: (s.get("addonUpdate") or {}).get("status") == "Successful",
    )
    assert "AddonUpdated" in events_for(admin_api, policy)
    assert len(eks_addon.updates) == 1
    assert container_env(read_aws_node(admin_api, namespace))["WARM_IP_TARGET"] != "9"


def test_cluster_name_found_in_the_nodes_ec2_tags_when_not_set(
    eks_addon: EksAddonEndpoint,
    admin_api: client.ApiClient,
    namespace: str,
    moto_ec2: MotoEc2,
    run_operator: OperatorProcess,
) -> None:
    """No WARMPOOL_EKS_CLUSTER_NAME: the name comes from the `eks:cluster-name` tag EKS managed node groups put
    on their instances, and the values go through the add-on as before."""
    eks_addon.install(json.dumps(USER_CONFIG))
    mark_rollout_complete(admin_api, namespace, desired=2)
    network = moto_ec2.create_network()
    ids = moto_ec2.run_instances("m5.large", network.subnet_ids[0], 2)
    moto_ec2.client().create_tags(Resources=ids, Tags=[{"Key": "eks:cluster-name", "Value": "dev"}])
    group = unique("ng")
    for instance_id in ids:
        create_node(
            client.CoreV1Api(admin_api),
            unique("node"),
            labels={"eks.amazonaws.com/nodegroup": group},
            instance_id=instance_id,
        )
    policy = unique("addon")
    create_policy(admin_api, policy, live_spec(namespace, group))
    run_operator.env.update(
        WARMPOOL_EKS_ENDPOINT_URL=eks_addon.endpoint_url,
        WARMPOOL_EKS_UPDATE_WAIT_SECONDS="1",
        WARMPOOL_EKS_ADDON_DAEMONSET=f"{namespace}/aws-node",
    )
    run_operator.env.pop("WARMPOOL_EKS_CLUSTER_NAME", None)
    run_operator.start()
    wait_status(
        admin_api,
        policy,
        run_operator,
        "the add-on update, with the cluster name from EC2 tags",
        lambda s: (s.get("addonUpdate") or {}).get("status") == "Successful",
    )
    assert [u.resolve_conflicts for u in eks_addon.updates.values()] == ["PRESERVE"]
    assert f"EKS cluster name 'dev' from EC2 tags of instance {min(ids)}" in run_operator.logs()
