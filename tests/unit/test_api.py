"""The WarmPoolPolicy models: defaults, every validation rule, and the generated CRD."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pydantic
import pytest
import yaml

from tests.policy_cases import BAD_SPECS, GOOD_SPECS
from warmpool.api import formats, v1alpha1
from warmpool.api.crd import PRINTER_COLUMNS, build_crd, render_crd_yaml

REPO = Path(__file__).resolve().parents[2]


def test_defaults_are_the_documented_ones() -> None:
    spec = v1alpha1.WarmPoolPolicySpec()
    assert (spec.target_ref.namespace, spec.target_ref.name, spec.target_ref.container) == (
        "kube-system",
        "aws-node",
        "aws-node",
    )
    assert spec.mode is v1alpha1.Mode.AUTO
    assert spec.managed_variables == [v1alpha1.Variable.WARM_IP_TARGET, v1alpha1.Variable.MINIMUM_IP_TARGET]
    assert spec.churn.burst_quantile == 0.999
    assert [m.min for m in spec.manage] == [0, 0]  # 0 lets WARM_IP_TARGET hand the pool to whole ENIs
    assert v1alpha1.parse_duration(spec.churn.burst_window) == 30
    assert spec.subnet_reserve == 0.2
    assert v1alpha1.parse_duration(spec.rollout.cooldown) == 6 * 3600
    assert spec.dry_run is False
    assert spec.paused is False


@pytest.mark.parametrize("name", GOOD_SPECS)
def test_good_specs_parse(name: str) -> None:
    spec = v1alpha1.WarmPoolPolicySpec.model_validate(GOOD_SPECS[name])
    # Round trip through the wire form keeps every value.
    again = v1alpha1.WarmPoolPolicySpec.model_validate(spec.model_dump(by_alias=True))
    assert again == spec


@pytest.mark.parametrize("name", BAD_SPECS)
def test_bad_specs_are_rejected_with_a_readable_message(name: str) -> None:
    case = BAD_SPECS[name]
    with pytest.raises(pydantic.ValidationError) as error:
        v1alpha1.WarmPoolPolicySpec.model_validate(case.spec)
    assert case.model_message in str(error.value)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("30s", 30),
        ("5m", 300),
        ("1h30m", 5400),
        ("500ms", 0.5),
        ("1.5h", 5400),
        ("0s", 0),
        ("1h0m0s1ms", 3600.001),
        ("0.000000001s", 1e-9),
    ],
)
def test_parse_duration(text: str, seconds: float) -> None:
    assert v1alpha1.parse_duration(text) == pytest.approx(seconds, abs=1e-12)


@pytest.mark.parametrize("text", ["", "10", "1d", "-5s", "5 s", "s", "30m1h", "1us", ".5s", "1h\n", "9999999h"])
def test_parse_duration_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="not a duration"):
        v1alpha1.parse_duration(text)


def test_committed_crd_matches_the_models() -> None:
    committed = (REPO / "crds" / "warmpoolpolicies.yaml").read_text()
    assert committed == render_crd_yaml(), "crds/warmpoolpolicies.yaml is stale: run `warmpool crd > crds/...`"


def _schema_at(schema: dict[str, Any], path: str) -> dict[str, Any] | None:
    node: dict[str, Any] | None = schema
    for part in re.sub(r"\[[^\]]*\]", "", path).strip(".").split("."):
        if node is None:
            return None
        if node.get("type") == "array":
            node = node["items"]
        node = (node.get("properties") or {}).get(part)
    return node


@pytest.mark.parametrize("column", PRINTER_COLUMNS, ids=lambda c: c["name"])
def test_printer_columns_point_at_real_fields(column: dict[str, Any]) -> None:
    root = build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    path = column["jsonPath"]
    if path.startswith(".metadata."):
        return
    field = _schema_at(root, path)
    assert field is not None, f"{column['name']} points at {path}, which the schema does not have"
    expected = {
        "string": "string",
        "integer": "integer",
        "number": "number",
        "boolean": "boolean",
        "date": "string",
    }[column["type"]]
    assert field["type"] == expected


def test_crd_schema_is_structural() -> None:
    """No $ref/anyOf/allOf/title left, and every object lists properties or preserves unknown fields."""
    text = yaml.safe_dump(build_crd())
    for forbidden in ("$ref", "anyOf", "allOf", "oneOf", "title:", "$defs"):
        assert forbidden not in text

    def walk(node: Any, where: str) -> None:
        if isinstance(node, dict):
            if "properties" in node:
                assert node.get("type") == "object", where
                assert "additionalProperties" not in node, where
            for key, value in node.items():
                walk(value, f"{where}.{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{where}[{i}]")

    walk(build_crd(), "crd")


def test_every_cross_field_rule_is_in_the_crd() -> None:
    spec_schema = build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert spec_schema["x-kubernetes-validations"] == [r.as_cel() for r in v1alpha1.SPEC_RULES]


def _rules_in(node: Any) -> list[dict[str, str]]:
    if isinstance(node, dict):
        found = list(node.get("x-kubernetes-validations", []))
        return found + [r for k, v in node.items() if k != "x-kubernetes-validations" for r in _rules_in(v)]
    if isinstance(node, list):
        return [r for v in node for r in _rules_in(v)]
    return []


def test_every_rule_message_is_covered_by_a_bad_case() -> None:
    """Each CEL rule in the CRD is exercised by at least one bad case, so the API-server tests reach it."""
    messages = {r["message"] for r in _rules_in(build_crd())}
    covered = {m for m in messages if any(m in case.message or case.message in m for case in BAD_SPECS.values())}
    assert messages - covered == set()


def test_rule_messages_say_what_to_type() -> None:
    """No raw regular expression reaches a person: rules carry messages, and the spec has no patterns."""
    for rule in _rules_in(build_crd()):
        assert "^" not in rule["message"], rule
        assert "[0-9]" not in rule["message"], rule
    spec = build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert "pattern" not in yaml.safe_dump(spec)


def test_spec_default_satisfies_its_own_rules() -> None:
    spec_schema = build_crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    assert v1alpha1.WarmPoolPolicySpec.model_validate(spec_schema["default"]) == v1alpha1.WarmPoolPolicySpec()


def test_summarize_orders_variables() -> None:
    values = {v1alpha1.Variable.MINIMUM_IP_TARGET: 20, v1alpha1.Variable.WARM_IP_TARGET: 3}
    assert v1alpha1.summarize(values) == "WARM_IP_TARGET=3,MINIMUM_IP_TARGET=20"


@pytest.mark.parametrize(
    ("kind", "value", "valid"),
    [
        (formats.KubeFormat.DNS1123_LABEL, "kube-system", True),
        (formats.KubeFormat.DNS1123_LABEL, "0", True),
        (formats.KubeFormat.DNS1123_LABEL, "a" * 63, True),
        (formats.KubeFormat.DNS1123_LABEL, "a" * 64, False),
        (formats.KubeFormat.DNS1123_LABEL, "Kube", False),
        (formats.KubeFormat.DNS1123_LABEL, "-a", False),
        (formats.KubeFormat.DNS1123_LABEL, "a.b", False),
        (formats.KubeFormat.DNS1123_LABEL, "", False),
        (formats.KubeFormat.DNS1123_SUBDOMAIN, "a.b-c.d", True),
        (formats.KubeFormat.DNS1123_SUBDOMAIN, "a..b", False),
        (formats.KubeFormat.DNS1123_SUBDOMAIN, "a/b", False),
        (formats.KubeFormat.DNS1123_SUBDOMAIN, ".".join(["a" * 63] * 4), False),  # 255 characters
        (formats.KubeFormat.QUALIFIED_NAME, "app", True),
        (formats.KubeFormat.QUALIFIED_NAME, "A.b_c-9", True),
        (formats.KubeFormat.QUALIFIED_NAME, "example.com/Name", True),
        (formats.KubeFormat.QUALIFIED_NAME, "Example.com/name", False),
        (formats.KubeFormat.QUALIFIED_NAME, "/name", False),
        (formats.KubeFormat.QUALIFIED_NAME, "example.com/", False),
        (formats.KubeFormat.QUALIFIED_NAME, "a/b/c", False),
        (formats.KubeFormat.QUALIFIED_NAME, "_a", False),
        (formats.KubeFormat.LABEL_VALUE, "", True),
        (formats.KubeFormat.LABEL_VALUE, "Spot_1.x", True),
        (formats.KubeFormat.LABEL_VALUE, "a/b", False),
        (formats.KubeFormat.LABEL_VALUE, "v" * 64, False),
        (formats.KubeFormat.LABEL_VALUE, "é", False),
    ],
)
def test_kubernetes_formats(kind: formats.KubeFormat, value: str, valid: bool) -> None:
    """The answers of k8s.io/apimachinery's validators (the API server's CEL format library uses them)."""
    assert formats.CHECKS[kind](value) is valid


def test_no_duration_the_api_accepts_overflows_go() -> None:
    """The largest string of the safe duration pattern stays within Go's int64 nanoseconds."""
    largest = "999999.999999999h9999999.999999999m999999999.999999999s999999999.999999999ms"
    ns = formats.duration_ns(largest)
    assert ns is not None
    assert ns < 2**63 - 1
    assert formats.duration_ns("9" * 7 + "h") is None
