"""The DaemonSet API calls: read it, and server-side apply the managed env entries."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kubernetes import client

from warmpool.api.v1alpha1 import Variable
from warmpool.apply.daemonset import FIELD_MANAGER, apply_body

APPLY_PATCH = "application/apply-patch+yaml"


class DaemonSetMissing(Exception):
    pass


def read_daemonset(api: client.ApiClient, namespace: str, name: str) -> dict[str, Any]:
    try:
        ds = client.AppsV1Api(api).read_namespaced_daemon_set(name, namespace)
    except client.ApiException as error:
        if error.status == 404:
            raise DaemonSetMissing(f"DaemonSet {namespace}/{name} not found") from error
        raise
    body: dict[str, Any] = api.sanitize_for_serialization(ds)
    return body


def apply_env(
    api: client.ApiClient,
    namespace: str,
    name: str,
    container: str,
    values: Mapping[Variable, int],
    force: bool,
) -> dict[str, Any]:
    """Server-side apply with field manager `warmpool`: the API server merges only these entries."""
    result = client.AppsV1Api(api).patch_namespaced_daemon_set(
        name,
        namespace,
        apply_body(namespace, name, container, values),
        field_manager=FIELD_MANAGER,
        force=force,
        _content_type=APPLY_PATCH,
    )
    body: dict[str, Any] = api.sanitize_for_serialization(result)
    return body
