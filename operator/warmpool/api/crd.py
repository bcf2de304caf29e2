"""Generates the WarmPoolPolicy CustomResourceDefinition from the pydantic models.

pydantic emits JSON Schema 2020-12; the API server wants a *structural* OpenAPI v3.0 schema: no `$ref`, no
`anyOf` for optional fields, `additionalProperties` never beside `properties`, boolean `exclusiveMinimum`. This
module rewrites the one into the other and adds what only a CRD has (printer columns, subresources).
"""

from __future__ import annotations

from typing import Any

import yaml
from pydantic.json_schema import GenerateJsonSchema, JsonSchemaValue
from pydantic_core import core_schema, to_jsonable_python

from warmpool.api import v1alpha1

# Keys of JSON Schema that a structural CRD schema accepts (plus the x-kubernetes-* extensions).
_KEPT_KEYS = {
    "type",
    "format",
    "description",
    "default",
    "enum",
    "minimum",
    "maximum",
    "exclusiveMinimum",
    "exclusiveMaximum",
    "minLength",
    "maxLength",
    "pattern",
    "minItems",
    "maxItems",
    "minProperties",
    "maxProperties",
    "items",
    "properties",
    "required",
    "additionalProperties",
    "nullable",
}


class _DefaultsFromFactories(GenerateJsonSchema):
    """Also emit defaults that come from `default_factory`, so the API server fills nested objects in."""

    def default_schema(self, schema: core_schema.WithDefaultSchema) -> JsonSchemaValue:
        factory = schema.get("default_factory")
        if factory is not None and not schema.get("default_factory_takes_data"):
            inner = self.generate_inner(schema["schema"])
            value = to_jsonable_python(factory(), by_alias=True, exclude_none=True)  # type: ignore[call-arg]
            return {**inner, "default": value}
        return super().default_schema(schema)


def _structural(node: Any, defs: dict[str, Any]) -> Any:
    """Inline references and rewrite one JSON Schema node into its structural OpenAPI v3 form."""
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = defs[node["$ref"].rsplit("/", 1)[-1]]
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return _structural(merged, defs)
    if "anyOf" in node:
        # Optional[X] is anyOf [X, null]: the field may be absent, so keep X (and the outer description).
        variants = [v for v in node["anyOf"] if v.get("type") != "null"]
        if len(variants) != 1:
            raise ValueError(f"cannot express a union in a structural schema: {node}")
        outer = {k: v for k, v in node.items() if k not in ("anyOf", "default")}
        if node.get("default") is not None:
            outer["default"] = node["default"]
        return _structural({**variants[0], **outer}, defs)

    out: dict[str, Any] = {}
    for key, value in node.items():
        if key.startswith("x-kubernetes-"):
            out[key] = value
        elif key not in _KEPT_KEYS:
            continue
        elif key == "properties":
            out[key] = {name: _structural(sub, defs) for name, sub in value.items()}
        elif key == "items":
            out[key] = _structural(value, defs)
        elif key == "additionalProperties":
            if isinstance(value, dict) and value:
                out[key] = _structural(value, defs)
        elif key == "exclusiveMinimum":
            out["minimum"], out["exclusiveMinimum"] = value, True
        elif key == "exclusiveMaximum":
            out["maximum"], out["exclusiveMaximum"] = value, True
        else:
            out[key] = value
    if out.get("x-kubernetes-preserve-unknown-fields"):
        out.pop("additionalProperties", None)
        out["type"] = "object"
    if "properties" in out:
        out["type"] = "object"
        out.pop("additionalProperties", None)
    return out


def _strip_defaults(node: Any) -> Any:
    """Status is written by the operator only; server-side defaults there would only hide bugs."""
    if isinstance(node, dict):
        return {k: _strip_defaults(v) for k, v in node.items() if k != "default"}
    if isinstance(node, list):
        return [_strip_defaults(v) for v in node]
    return node


def _schema_of(model: type[Any]) -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True, schema_generator=_DefaultsFromFactories)
    defs = raw.pop("$defs", {})
    result: dict[str, Any] = _structural(raw, defs)
    return result


PRINTER_COLUMNS: list[dict[str, Any]] = [
    {"name": "Mode", "type": "string", "jsonPath": ".status.mode"},
    {"name": "Applied", "type": "string", "jsonPath": ".status.appliedSummary"},
    {"name": "Nodes", "type": "integer", "jsonPath": ".status.nodes"},
    {"name": "Ready", "type": "string", "jsonPath": '.status.conditions[?(@.type=="Ready")].status'},
    {"name": "Last Change", "type": "date", "jsonPath": ".status.lastAppliedTime"},
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
    {"name": "Recommended", "type": "string", "jsonPath": ".status.recommendedSummary", "priority": 1},
    {"name": "Pods", "type": "integer", "jsonPath": ".status.podsObserved", "priority": 1},
    {"name": "Burst", "type": "number", "jsonPath": ".status.burst.covered", "priority": 1},
    {"name": "DryRun", "type": "boolean", "jsonPath": ".spec.dryRun", "priority": 1},
    # Measured (ipamd's metrics) beside estimated (the operator's model), per node, over the sampled nodes.
    {"name": "Measured-Idle", "type": "number", "jsonPath": ".status.measured.idleIpsPerNode", "priority": 1},
    {"name": "Estimated-Idle", "type": "number", "jsonPath": ".status.measured.estimatedIdleIpsPerNode", "priority": 1},
    {"name": "No-IP-Errors", "type": "integer", "jsonPath": ".status.measured.noIpErrors", "priority": 1},
    {"name": "Measured", "type": "string", "jsonPath": ".status.measured.state", "priority": 1},
]


def build_crd() -> dict[str, Any]:
    spec_schema = _schema_of(v1alpha1.WarmPoolPolicySpec)
    # A full default (not `{}`): the API server checks the CEL rules against the default as written.
    spec_schema["default"] = v1alpha1.WarmPoolPolicySpec().model_dump(by_alias=True, exclude_none=True, mode="json")
    status_schema = _strip_defaults(_schema_of(v1alpha1.WarmPoolPolicyStatus))
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {
            "name": f"{v1alpha1.PLURAL}.{v1alpha1.GROUP}",
            "labels": {"app.kubernetes.io/name": "warmpool-operator"},
        },
        "spec": {
            "group": v1alpha1.GROUP,
            "names": {
                "kind": v1alpha1.KIND,
                "listKind": f"{v1alpha1.KIND}List",
                "plural": v1alpha1.PLURAL,
                "singular": v1alpha1.SINGULAR,
                "shortNames": v1alpha1.SHORT_NAMES,
                "categories": ["aws", "networking"],
            },
            # Cluster-scoped: a policy tunes a cluster-wide DaemonSet from cluster-wide node and pod churn;
            # a namespace would suggest a tenancy boundary that does not exist.
            "scope": "Cluster",
            "versions": [
                {
                    "name": v1alpha1.VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": PRINTER_COLUMNS,
                    "schema": {
                        "openAPIV3Schema": {
                            "type": "object",
                            "description": "WarmPoolPolicy right-sizes the AWS VPC CNI warm IP pool of one "
                            "aws-node DaemonSet from observed node and pod churn.",
                            "properties": {
                                "apiVersion": {"type": "string"},
                                "kind": {"type": "string"},
                                "metadata": {"type": "object"},
                                "spec": spec_schema,
                                "status": status_schema,
                            },
                        }
                    },
                }
            ],
        },
    }


def render_crd_yaml() -> str:
    header = "# Generated by `warmpool crd` from operator/warmpool/api/v1alpha1.py. Do not edit by hand.\n"
    return header + yaml.safe_dump(build_crd(), sort_keys=False, width=120)
