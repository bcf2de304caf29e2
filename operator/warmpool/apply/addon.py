"""Applying through the EKS managed add-on, when the vpc-cni add-on owns aws-node's env.

A direct server-side apply over entries the add-on owns is undone by the next add-on update (resolveConflicts
OVERWRITE) or makes it fail (NONE) (VPC CNI issue #2607). So on such clusters the values go where EKS keeps
them: the add-on's `configurationValues.env`, set with eks:UpdateAddon. EKS then applies them to the
DaemonSet itself, as field manager `eks`, and the entries stay the add-on's.

Pure parts (detection, choosing the route, merging configuration values, checking them against the add-on's
schema) and one blocking function that talks to EKS (`update_through_addon`, run in a thread)."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import yaml

from warmpool.api.v1alpha1 import Variable
from warmpool.apply.daemonset import view

ADDON_MANAGER = "eks"
MANAGED_BY_LABEL = "app.kubernetes.io/managed-by"
EKS_KEY_PREFIX = "eks.amazonaws.com/"


class Route(StrEnum):
    DAEMONSET = "DaemonSet"  # server-side apply of the env entries, field manager warmpool
    EKS_ADDON = "EksAddon"  # eks:UpdateAddon configurationValues


class ConfigurationError(ValueError):
    """The add-on's current configuration values cannot be read or would not accept ours: nothing is sent."""


def addon_markers(ds: Mapping[str, Any], container: str) -> list[str]:
    """Signs that the EKS add-on manages this DaemonSet's env, each as a short phrase for status and Events."""
    markers = []
    owned = sorted(name for name, managers in view(ds, container).owners.items() if ADDON_MANAGER in managers)
    if owned:
        markers.append(f"env entries owned by field manager {ADDON_MANAGER} ({', '.join(owned)})")
    meta = ds.get("metadata") or {}
    labels: Mapping[str, str] = meta.get("labels") or {}
    annotations: Mapping[str, str] = meta.get("annotations") or {}
    if str(labels.get(MANAGED_BY_LABEL, "")).lower() == "eks":
        markers.append(f"label {MANAGED_BY_LABEL}={labels[MANAGED_BY_LABEL]}")
    eks_keys = sorted(k for k in [*labels, *annotations] if k.startswith(EKS_KEY_PREFIX))
    if eks_keys:
        markers.append(f"{', '.join(eks_keys)} on the DaemonSet")
    return markers


def choose_route(apply_via: str, markers: Iterable[str], addon_api_configured: bool = True) -> Route:
    """`Auto` follows the DaemonSet: the add-on when it shows any sign of the add-on and the operator knows the
    cluster to call EKS for; else a direct apply (where entries owned by `eks` report ForeignOwner)."""
    if apply_via == Route.EKS_ADDON.value:
        return Route.EKS_ADDON
    if apply_via == Route.DAEMONSET.value:
        return Route.DAEMONSET
    return Route.EKS_ADDON if addon_api_configured and any(True for _ in markers) else Route.DAEMONSET


def parse_configuration(text: str) -> dict[str, Any]:
    """EKS takes configuration values as JSON or YAML text; none is an empty object."""
    if not text.strip():
        return {}
    try:
        values = yaml.safe_load(text)  # JSON is YAML
    except yaml.YAMLError as error:
        raise ConfigurationError(f"the add-on's configuration values are not JSON or YAML: {error}") from error
    if not isinstance(values, dict):
        raise ConfigurationError("the add-on's configuration values are not an object")
    env = values.get("env")
    if env is not None and not isinstance(env, dict):
        raise ConfigurationError("the add-on's configuration values hold an env that is not a map")
    return values


def merge_configuration(current: str, values: Mapping[Variable, int], release: Iterable[str] = ()) -> str:
    """The add-on's configuration values with our env entries set (and released ones removed); every other
    key and env entry is kept as it is. JSON, keys in their original order."""
    config = parse_configuration(current)
    env = {str(k): v for k, v in (config.get("env") or {}).items()}
    for name in release:
        env.pop(name, None)
    for variable, value in sorted(values.items(), key=lambda kv: kv[0].value):
        env[variable.value] = str(value)
    merged = dict(config)
    if env or "env" in config:
        merged["env"] = env
    return json.dumps(merged, separators=(",", ":"))


def env_of(configuration: str) -> dict[str, str]:
    return {str(k): str(v) for k, v in (parse_configuration(configuration).get("env") or {}).items()}


def schema_problems(schema: Mapping[str, Any], names: Iterable[str]) -> list[str]:
    """Env names the add-on version's configuration schema would refuse (EKS rejects the whole update)."""
    env_schema = (schema.get("properties") or {}).get("env")
    if not isinstance(env_schema, Mapping):
        return ["the add-on's configuration schema has no env"] if schema.get("properties") else []
    allowed = env_schema.get("properties") or {}
    if env_schema.get("additionalProperties", True) is not False:
        return []
    return [f"{n} is not in the add-on's configuration schema" for n in names if n not in allowed]


# ----- the calls (blocking: run in a thread) -----


@dataclass(frozen=True, slots=True)
class AddonResult:
    """What an attempt through the add-on came to. `status`: Successful / InProgress / Failed (the update),
    Busy (another update was running, nothing sent), Refused (nothing sent: bad values or the API said no)."""

    status: str
    message: str
    update_id: str = ""
    configuration_values: str = ""

    @property
    def sent(self) -> bool:
        return self.status in ("Successful", "InProgress", "Failed")


def update_through_addon(
    eks: Any,  # warmpool.aws.eks.EksAddonClient (kept duck-typed: the pure parts import no boto3)
    values: Mapping[Variable, int],
    release: Iterable[str],
    wait_seconds: float,
    sleep: Callable[[float], None] = time.sleep,
    clock: Callable[[], float] = time.monotonic,
) -> AddonResult:
    from warmpool.aws.eks import AddonUnavailable

    release = list(release)
    try:
        addon = eks.describe_addon()
        if addon.updating:
            return AddonResult("Busy", f"add-on {addon.name} is already being updated")
        names = [v.value for v in values]
        problems = schema_problems(eks.configuration_schema(addon.version), names)
        if problems:
            return AddonResult("Refused", "; ".join(problems))
        merged = merge_configuration(addon.configuration_values, values, release)
        update = eks.update_configuration(merged)
        deadline = clock() + wait_seconds
        while not update.done and clock() < deadline:
            sleep(1.0)
            update = eks.describe_update(update.id)
    except (AddonUnavailable, ConfigurationError) as error:
        return AddonResult("Refused", str(error))
    message = {
        "Successful": "EKS applied it",
        "InProgress": "EKS is still applying it; the next pass follows it",
    }.get(update.status, f"EKS reports {update.status}: {'; '.join(update.errors) or 'no detail'}")
    return AddonResult(update.status, message, update.id, merged)


def follow_update(eks: Any, update_id: str) -> tuple[str, str]:
    """(status, message) of an earlier update, for the pass after the one that started it."""
    from warmpool.aws.eks import AddonUnavailable

    try:
        update = eks.describe_update(update_id)
    except AddonUnavailable as error:
        return "Unknown", str(error)
    return update.status, "; ".join(update.errors)
