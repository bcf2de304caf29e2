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

from warmpool.api import v1alpha1
from warmpool.aws import ec2
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

    policy = json.loads((REPO / "deploy" / "iam-policy.json").read_text())
    actions: set[str] = set()
    for statement in policy["Statement"]:
        assert statement["Effect"] == "Allow"
        assert "NotAction" not in statement
        assert "NotResource" not in statement
        # EC2 Describe* calls support no resource-level permissions: "*" is the only resource they accept.
        assert statement["Resource"] == "*"
        actions.update(statement["Action"])
    assert actions == {f"ec2:{op}" for op in fake.operations}


def _rules_block(text: str) -> list[dict[str, Any]]:
    """The `rules:` list of the ClusterRole document in a manifest or (template-free part of a) chart template."""
    for doc in text.split("\n---\n"):
        if re.search(r"^kind: ClusterRole$", doc, re.M):
            block = doc[doc.index("\nrules:\n") :]
            rules: list[dict[str, Any]] = yaml.safe_load(block)["rules"]
            return rules
    raise AssertionError("no ClusterRole")


def test_chart_clusterrole_template_has_exactly_the_base_rules() -> None:
    base = _rules_block((BASE / "rbac.yaml").read_text())
    chart = _rules_block((CHART / "templates" / "rbac.yaml").read_text())
    assert chart == base
    # Only aws-node may be patched; nothing may touch Secrets, ConfigMaps or any write beyond patch.
    writes = [r for r in base if set(r["verbs"]) & {"patch", "update", "create", "delete", "deletecollection"}]
    assert {(tuple(r["apiGroups"]), tuple(r["resources"])) for r in writes} == {
        (("warmpool.io",), ("warmpoolpolicies",)),
        (("warmpool.io",), ("warmpoolpolicies/status",)),
        (("apps",), ("daemonsets",)),
        (("", "events.k8s.io"), ("events",)),
        (("kopf.dev",), ("clusterkopfpeerings",)),
    }
    ds_write = next(r for r in writes if r["resources"] == ["daemonsets"])
    assert ds_write["resourceNames"] == ["aws-node"]
    assert not any("secrets" in r["resources"] or "*" in r["resources"] + r["verbs"] for r in base)


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
