"""Kubernetes Events on the (cluster-scoped) policies.

kopf's own poster stamps `involvedObject.namespace: default` on cluster-scoped objects, which hides the events
from `kubectl describe wpp`; these leave the namespace empty, as the API conventions say, and live in `default`.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from kubernetes import client

EVENT_NAMESPACE = "default"
COMPONENT = "warmpool"


def post_event(api: client.ApiClient, body: Mapping[str, Any], event_type: str, reason: str, message: str) -> None:
    meta = body.get("metadata", {})
    now = datetime.now(UTC)
    event = {
        "apiVersion": "v1",
        "kind": "Event",
        "metadata": {"generateName": f"{meta.get('name', 'warmpool')}.", "namespace": EVENT_NAMESPACE},
        "involvedObject": {
            "apiVersion": body.get("apiVersion"),
            "kind": body.get("kind"),
            "name": meta.get("name"),
            "uid": meta.get("uid"),
        },
        "type": event_type,
        "reason": reason,
        "message": message[:1024],
        "firstTimestamp": now.isoformat(),
        "lastTimestamp": now.isoformat(),
        "count": 1,
        "source": {"component": COMPONENT},
        "reportingComponent": f"{COMPONENT}.io/operator",
        "reportingInstance": socket.gethostname()[:128],
    }
    client.CoreV1Api(api).create_namespaced_event(EVENT_NAMESPACE, event)
