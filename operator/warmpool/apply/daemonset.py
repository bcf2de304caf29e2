"""Reading the aws-node DaemonSet and describing the change to it. Pure functions over the object's dict form;
the API calls live in `warmpool.apply.client`."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from warmpool.api.v1alpha1 import Variable

FIELD_MANAGER = "warmpool"
# Field managers that would revert or fight a change to the env: the EKS managed add-on and GitOps tools.
REVERTING_MANAGERS = (
    "eks",
    "argocd-controller",
    "argocd-application-controller",
    "kustomize-controller",
    "helm-controller",
    "helm",
    "flux",
)


@dataclass(frozen=True, slots=True)
class EnvEntry:
    value: str | None  # None when the entry uses valueFrom
    value_from: bool = False


@dataclass(frozen=True, slots=True)
class DaemonSetView:
    """What warmpool needs to know about the target DaemonSet."""

    env: dict[str, EnvEntry]
    owners: dict[str, list[str]]  # env name -> field managers owning its value
    warmpool_applied_at: float | None  # managedFields time of warmpool's apply, if any
    rollout_in_progress: bool
    rollout_message: str
    generation: int
    container_found: bool
    image: str = ""  # the container's image: tells whether it runs ipamd, and which VPC CNI version
    extra: dict[str, Any] = field(default_factory=dict)
    # The field manager a write goes through: `eks` when values go through the EKS add-on (its entries are then
    # not foreign), else warmpool's own.
    writer: str = FIELD_MANAGER

    def plain_env(self) -> dict[str, str]:
        return {k: v.value for k, v in self.env.items() if v.value is not None}

    def foreign_owners(self, variables: Iterable[Variable], writer: str | None = None) -> dict[str, list[str]]:
        """Managed variables whose env entry is also owned by a manager that would revert our change (`writer`:
        the manager the write goes through, when not the view's own)."""
        through = writer or self.writer
        found: dict[str, list[str]] = {}
        for v in variables:
            others = [m for m in self.owners.get(v.value, []) if m not in (FIELD_MANAGER, through) and _reverts(m)]
            if others:
                found[v.value] = others
        return found


def _reverts(manager: str) -> bool:
    return any(manager == m or manager.startswith(m + "-") for m in REVERTING_MANAGERS)


def _container(ds: Mapping[str, Any], name: str) -> Mapping[str, Any] | None:
    containers = ds.get("spec", {}).get("template", {}).get("spec", {}).get("containers") or []
    return next((c for c in containers if c.get("name") == name), None)


def _env_owners(ds: Mapping[str, Any], container: str) -> tuple[dict[str, list[str]], float | None]:
    """Walk managedFields (fieldsV1) to find who owns each env entry of one container."""
    container_key = "k:" + json.dumps({"name": container}, separators=(",", ":"))
    owners: dict[str, list[str]] = {}
    applied_at: float | None = None
    for entry in ds.get("metadata", {}).get("managedFields") or []:
        manager = entry.get("manager", "")
        fields = entry.get("fieldsV1") or {}
        env = (
            fields.get("f:spec", {})
            .get("f:template", {})
            .get("f:spec", {})
            .get("f:containers", {})
            .get(container_key, {})
            .get("f:env", {})
        )
        for key in env:
            if key.startswith("k:"):
                name = json.loads(key[2:]).get("name")
                if name:
                    owners.setdefault(name, []).append(manager)
        if manager == FIELD_MANAGER and entry.get("operation") == "Apply" and entry.get("time"):
            applied_at = datetime.fromisoformat(entry["time"].replace("Z", "+00:00")).timestamp()
    return owners, applied_at


def rollout_state(ds: Mapping[str, Any]) -> tuple[bool, str]:
    """Whether a previous template change is still rolling out over the nodes."""
    generation = ds.get("metadata", {}).get("generation", 0)
    status = ds.get("status") or {}
    observed = status.get("observedGeneration", 0)
    desired = status.get("desiredNumberScheduled", 0)
    updated = status.get("updatedNumberScheduled", 0)
    available = status.get("numberAvailable", 0)
    if observed < generation:
        return True, f"the DaemonSet controller has not yet seen generation {generation} (at {observed})"
    if updated < desired:
        return True, f"{updated} of {desired} aws-node pods updated"
    if available < desired:
        return True, f"{available} of {desired} aws-node pods available"
    return False, f"{desired} aws-node pods up to date"


def view(ds: Mapping[str, Any], container: str) -> DaemonSetView:
    found = _container(ds, container)
    env: dict[str, EnvEntry] = {}
    for item in (found or {}).get("env") or []:
        if "valueFrom" in item:
            env[item["name"]] = EnvEntry(value=None, value_from=True)
        else:
            env[item["name"]] = EnvEntry(value=str(item.get("value", "")))
    owners, applied_at = _env_owners(ds, container)
    in_progress, message = rollout_state(ds)
    return DaemonSetView(
        env=env,
        owners=owners,
        warmpool_applied_at=applied_at,
        rollout_in_progress=in_progress,
        rollout_message=message,
        generation=ds.get("metadata", {}).get("generation", 0),
        container_found=found is not None,
        image=str((found or {}).get("image") or ""),
    )


def apply_body(namespace: str, name: str, container: str, values: Mapping[Variable, int]) -> dict[str, Any]:
    """The server-side apply configuration: only the env entries warmpool owns. Entries left out of it that
    warmpool owned before are removed by the API server (ownership released, ipamd falls back to its default)."""
    env = [{"name": v.value, "value": str(n)} for v, n in sorted(values.items(), key=lambda kv: kv[0].value)]
    return {
        "apiVersion": "apps/v1",
        "kind": "DaemonSet",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"template": {"spec": {"containers": [{"name": container, "env": env}]}}},
    }
