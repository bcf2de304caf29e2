"""Deploy artifacts that can be checked without a cluster: CRD copies, the IAM policy against the EC2 calls the
operator really makes, the chart's RBAC rules against deploy/kustomize/base/rbac.yaml, the Dockerfile, versions,
and the example policy. Rendering and applying live in tests/integration/test_deploy.py."""

from __future__ import annotations

import json
import re
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from warmpool import events
from warmpool.api import v1alpha1
from warmpool.aws import ec2, eks
from warmpool.handlers import startup
from warmpool.settings import Settings

REPO = Path(__file__).resolve().parents[2]
CHART = REPO / "deploy" / "helm" / "warmpool-operator"
BASE = REPO / "deploy" / "kustomize" / "base"


@pytest.mark.parametrize(
    "copy", [CHART / "crds" / "warmpoolpolicies.yaml", BASE / "warmpoolpolicies-crd.yaml"], ids=["chart", "kustomize"]
)
def test_crd_copies_are_identical_to_the_generated_crd(copy: Path) -> None:
    assert copy.read_bytes() == (REPO / "crds" / "warmpoolpolicies.yaml").read_bytes(), (
        f"{copy.relative_to(REPO)} is stale: cp crds/warmpoolpolicies.yaml {copy.relative_to(REPO)}"
    )


class _RecordingEc2:
    """Stands in for the boto3 client: records every operation, answers with empty pages."""

    def __init__(self) -> None:
        self.operations: set[str] = set()

    def __getattr__(self, name: str) -> Any:
        def call(**_: Any) -> dict[str, Any]:
            self.operations.add("".join(part.title() for part in name.split("_")))
            return {}

        return call


def test_iam_policy_allows_exactly_the_ec2_calls_the_operator_makes() -> None:
    fake = _RecordingEc2()
    client = ec2.Ec2Client(Settings(), client=fake)
    client.instance_limits(["m5.large"])
    client.subnets(["subnet-1"])
    client.subnets_for_instances(["i-0123456789abcdef0"])
    # Every AWS operation named anywhere in the operator's boto-using source, so a new call cannot hide.
    named: set[str] = set()
    for path in (REPO / "operator" / "warmpool").rglob("*.py"):
        text = path.read_text()
        if "boto" in text:
            named.update(
                re.findall(r'"((?:Describe|Create|Delete|Modify|Assign|Unassign|Attach|Detach)[A-Z]\w+)"', text)
            )
    assert named == fake.operations == {"DescribeInstanceTypes", "DescribeSubnets", "DescribeInstances"}

    # The EKS add-on route: every call EksAddonClient can make.
    fake_eks = _RecordingEc2()
    eks_client = eks.EksAddonClient(Settings(eks_cluster_name="dev"), client=fake_eks)
    eks_client.describe_addon()
    eks_client.configuration_schema("v1")
    eks_client.update_configuration("{}")
    eks_client.describe_update("u1")
    assert fake_eks.operations == {"DescribeAddon", "DescribeAddonConfiguration", "UpdateAddon", "DescribeUpdate"}

    policy = json.loads((REPO / "deploy" / "iam-policy.json").read_text())
    actions: set[str] = set()
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow"
        assert "NotAction" not in statement
        assert "NotResource" not in statement
        resources = statement["Resource"] if isinstance(statement["Resource"], list) else [statement["Resource"]]
        if statement["Action"][0].startswith("eks:") and statement["Action"] != ["eks:DescribeAddonConfiguration"]:
            # Only the vpc-cni add-on (and, for DescribeUpdate, the cluster the update is named under).
            assert all(r.startswith("arn:aws:eks:") for r in resources)
            assert any(r.endswith(":addon/*/vpc-cni/*") for r in resources)
        else:
            # EC2 Describe* calls and DescribeAddonConfiguration support no resource-level permissions.
            assert resources == ["*"]
        actions.update(statement["Action"])
    assert actions == {f"ec2:{op}" for op in fake.operations} | {f"eks:{op}" for op in fake_eks.operations}


def _rules_block(text: str) -> list[dict[str, Any]]:
    """The `rules:` list of the ClusterRole document in a manifest or (template-free part of a) chart template."""
    for doc in text.split("\n---\n"):
        if re.search(r"^kind: ClusterRole$", doc, re.M):
            block = doc[doc.index("\nrules:\n") :]
            rules: list[dict[str, Any]] = yaml.safe_load(block)["rules"]
            return rules
    raise AssertionError("no ClusterRole")


WRITE_VERBS = {"create", "update", "patch", "delete", "deletecollection", "escalate", "bind", "impersonate"}
SERVICE_ACCOUNT = {"kind": "ServiceAccount", "name": "warmpool-operator", "namespace": "kube-system"}


def _grants(rules: list[dict[str, Any]]) -> set[tuple[str, str, str, str]]:
    """(apiGroup, resource, verb, resourceName or "*") for every combination a rule list grants."""
    return {
        (group, resource, verb, name)
        for rule in rules
        for group in rule["apiGroups"]
        for resource in rule["resources"]
        for verb in rule["verbs"]
        for name in rule.get("resourceNames") or ["*"]
    }


def test_chart_clusterrole_template_has_exactly_the_base_rules() -> None:
    base = _rules_block((BASE / "rbac.yaml").read_text())
    chart = _rules_block((CHART / "templates" / "rbac.yaml").read_text())
    assert chart == base


def test_base_rbac_is_least_privilege() -> None:
    docs = {
        (d["kind"], d["metadata"].get("namespace", ""), d["metadata"]["name"]): d for d in _load(BASE / "rbac.yaml")
    }
    assert set(docs) == {
        ("ServiceAccount", "kube-system", "warmpool-operator"),
        ("ClusterRole", "", "warmpool-operator"),
        ("ClusterRoleBinding", "", "warmpool-operator"),
        ("Role", "kube-system", "warmpool-operator-target"),
        ("RoleBinding", "kube-system", "warmpool-operator-target"),
        ("Role", "default", "warmpool-operator-events"),
        ("RoleBinding", "default", "warmpool-operator-events"),
    }
    cluster = _grants(docs[("ClusterRole", "", "warmpool-operator")]["rules"])
    # Cluster-wide, the only writes are to the policies (kopf's finalizer and annotations) and their status.
    assert {g for g in cluster if g[2] in WRITE_VERBS} == {
        ("warmpool.io", "warmpoolpolicies", "patch", "*"),
        ("warmpool.io", "warmpoolpolicies/status", "patch", "*"),
    }
    # No DaemonSets, Events, Secrets, ConfigMaps or wildcards cluster-wide; no get where list suffices.
    assert not {g for g in cluster if g[1] in {"daemonsets", "events", "secrets", "configmaps"}}
    assert not any("*" in g[:3] for g in cluster)
    assert {(g[0], g[1]) for g in cluster if g[2] == "get"} == set()
    # The target: get and patch on kube-system/aws-node, through a namespaced Role; and GET through the pod
    # proxy in that namespace only, for ipamd's metrics (WARMPOOL_IPAMD_METRICS=proxy).
    assert _grants(docs[("Role", "kube-system", "warmpool-operator-target")]["rules"]) == {
        ("apps", "daemonsets", "get", "aws-node"),
        ("apps", "daemonsets", "patch", "aws-node"),
        ("", "pods/proxy", "get", "*"),
    }
    # Events: create, in the namespace they are posted to (warmpool.events and kopf both use `default`).
    assert _grants(docs[("Role", "default", "warmpool-operator-events")]["rules"]) == {("", "events", "create", "*")}
    assert events.EVENT_NAMESPACE == "default"
    for kind, namespace, name in docs:
        if kind.endswith("Binding"):
            binding = docs[(kind, namespace, name)]
            assert binding["subjects"] == [SERVICE_ACCOUNT]
            assert binding["roleRef"]["name"] == name
            assert (binding["roleRef"]["kind"], namespace) in {("ClusterRole", ""), ("Role", namespace)}


def test_peering_rbac_is_only_for_its_own_object() -> None:
    docs = {d["kind"]: d for d in _load(REPO / "deploy" / "kustomize" / "components" / "peering" / "rbac.yaml")}
    peering = yaml.safe_load(
        (REPO / "deploy" / "kustomize" / "components" / "peering" / "clusterkopfpeering.yaml").read_text()
    )
    assert _grants(docs["ClusterRole"]["rules"]) == {
        ("kopf.dev", "clusterkopfpeerings", "list", "*"),
        ("kopf.dev", "clusterkopfpeerings", "watch", "*"),
        ("kopf.dev", "clusterkopfpeerings", "patch", peering["metadata"]["name"]),
    }
    assert docs["ClusterRoleBinding"]["subjects"] == [SERVICE_ACCOUNT]


def test_every_resource_kopf_serves_is_listed_and_watched() -> None:
    """kopf lists and watches each resource a handler is registered for; timers and daemons add a finalizer,
    which is a patch of the object itself."""
    import kopf

    import warmpool.handlers  # noqa: F401  (registers the handlers)

    registry = kopf.get_default_registry()
    cluster = _grants(_rules_block((BASE / "rbac.yaml").read_text()))
    served = [
        *registry._indexing.get_all_handlers(),
        *registry._watching.get_all_handlers(),
        *registry._changing.get_all_handlers(),
    ]
    spawning = registry._spawning.get_all_handlers()
    assert served or spawning
    for handler in [*served, *spawning]:
        group, plural = handler.selector.group or "", handler.selector.any_name
        for verb in ("list", "watch"):
            assert (group, plural, verb, "*") in cluster, (handler.id, verb)
    for handler in spawning:
        assert handler.requires_finalizer
        group, plural = handler.selector.group or "", handler.selector.any_name
        assert (group, plural, "patch", "*") in cluster, handler.id


def _load(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def test_chart_admission_policy_is_the_base_file() -> None:
    copy = CHART / "files" / "admission-policy.yaml"
    assert copy.read_bytes() == (BASE / "admission-policy.yaml").read_bytes(), (
        f"{copy.relative_to(REPO)} is stale: cp deploy/kustomize/base/admission-policy.yaml {copy.relative_to(REPO)}"
    )


def test_admission_policies_match_the_operator_and_its_identity() -> None:
    """The CEL literals agree with the code: the four targets, the default container, kopf's prefix, the user."""
    docs = {(d["kind"], d["metadata"]["name"]): d for d in _load(BASE / "admission-policy.yaml")}
    daemonset = docs[("ValidatingAdmissionPolicy", "warmpool-operator-daemonset-env")]["spec"]
    policy = docs[("ValidatingAdmissionPolicy", "warmpool-operator-policy-spec")]["spec"]
    variables = {v["name"]: v["expression"] for v in daemonset["variables"]}
    assert variables["targets"] == "[" + ", ".join(f"'{v.value}'" for v in v1alpha1.Variable) + "]"
    default_container = v1alpha1.TargetRef.model_fields["container"].default
    assert variables["managedContainers"] == f"['{default_container}']"
    assert {v["name"]: v["expression"] for v in policy["variables"]}["prefix"] == f"'{startup.ANNOTATION_PREFIX}/'"
    user = f"system:serviceaccount:{SERVICE_ACCOUNT['namespace']}:{SERVICE_ACCOUNT['name']}"
    for spec in (daemonset, policy):
        assert spec["matchConditions"] == [
            {"name": "operator-service-account", "expression": f"request.userInfo.username == '{user}'"}
        ]
        assert spec["failurePolicy"] == "Fail"
        assert {op for rule in spec["matchConstraints"]["resourceRules"] for op in rule["operations"]} == {
            "CREATE",
            "UPDATE",
            "DELETE",
        }
        assert spec["validations"]
        for validation in spec["validations"]:
            assert validation["messageExpression"]
    for name in ("warmpool-operator-daemonset-env", "warmpool-operator-policy-spec"):
        binding = docs[("ValidatingAdmissionPolicyBinding", name)]["spec"]
        assert binding == {"policyName": name, "validationActions": ["Deny"]}
    assert "admission-policy.yaml" in yaml.safe_load((BASE / "kustomization.yaml").read_text())["resources"]


def test_versions_agree() -> None:
    version = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["version"]
    chart = yaml.safe_load((CHART / "Chart.yaml").read_text())
    assert chart["appVersion"] == version
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    deployment = yaml.safe_load((BASE / "deployment.yaml").read_text())
    image = deployment["spec"]["template"]["spec"]["containers"][0]["image"]
    assert image == f"{values['image']['repository']}:{version}"
    assert re.search(rf"^ARG VERSION={re.escape(version)}$", (REPO / "Dockerfile").read_text(), re.M)


def test_dockerfile_is_multi_stage_non_root_and_shell_free() -> None:
    text = (REPO / "Dockerfile").read_text()
    lines = [line.strip() for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11-slim", text, re.M)
    stages = [line for line in lines if line.startswith("FROM ")]
    assert stages == ["FROM ${PYTHON_IMAGE} AS build", "FROM ${PYTHON_IMAGE} AS runtime"]
    runtime = lines[lines.index(stages[1]) :]
    users = [line for line in runtime if line.startswith("USER ")]
    assert users == ["USER 65532:65532"]  # numeric, so the kubelet can verify runAsNonRoot
    # The last instruction: exec form (no shell), `warmpool run`.
    entrypoint = runtime[-1]
    assert entrypoint.startswith("ENTRYPOINT [")
    assert json.loads(entrypoint.removeprefix("ENTRYPOINT ")) == ["/opt/warmpool/bin/warmpool", "run"]
    assert not any(line.startswith("CMD") for line in runtime)
    for label in ("title", "source", "version", "revision", "licenses"):
        assert f"org.opencontainers.image.{label}=" in text
    # The venv is built from the build stage's wheels only, in the runtime stage.
    assert "--no-index" in text
    assert "from=build" in text
    # What the build context must contain is not ignored.
    ignore = (REPO / ".dockerignore").read_text().splitlines()
    assert ignore[1:4] == ["*", "!pyproject.toml", "!README.md"] or {"!pyproject.toml", "!operator/"} <= set(ignore)


def test_deployment_matches_the_image_and_settings() -> None:
    """The base Deployment: env names are real settings, ports are the settings' defaults, hardened pod."""
    deployment = yaml.safe_load((BASE / "deployment.yaml").read_text())
    pod = deployment["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    env_names = {e["name"] for e in container["env"]}
    fields = {f"WARMPOOL_{name.upper()}" for name in Settings.model_fields}
    assert env_names <= fields
    defaults = Settings()
    ports = {p["name"]: p["containerPort"] for p in container["ports"]}
    assert ports == {"healthz": defaults.liveness_port, "metrics": defaults.metrics_port}
    assert container["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "healthz"}
    assert deployment["spec"]["replicas"] == 1
    assert deployment["spec"]["strategy"] == {"type": "Recreate"}
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["securityContext"]["readOnlyRootFilesystem"] is True
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert "args" not in container
    assert "command" not in container
    annotations = deployment["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/port"] == str(defaults.metrics_port)


def test_example_policy_is_valid() -> None:
    body = yaml.safe_load((REPO / "deploy" / "examples" / "warmpoolpolicy.yaml").read_text())
    policy = v1alpha1.WarmPoolPolicy.model_validate(body)
    assert policy.api_version == v1alpha1.API_VERSION
    assert policy.kind == v1alpha1.KIND
    assert policy.spec.dry_run is True  # a first policy must not patch aws-node
