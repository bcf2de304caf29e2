"""A local stand-in for the EKS add-on API (moto has none), for tests and the dev fleet.

It speaks EKS's REST JSON protocol for the four calls warmpool uses (DescribeAddon, UpdateAddon,
DescribeAddonConfiguration, DescribeUpdate), so boto3's `eks` client works against it with `endpoint_url`, and
it does to the real API server what EKS does for the vpc-cni add-on: it server-side applies the aws-node
DaemonSet as field manager `eks`, with the add-on's default env overlaid by `configurationValues.env`.

How EKS resolves a conflict with a field another manager changed (VPC CNI issue #2607), reproduced here with
the API server's own conflict detection:
- OVERWRITE: apply with force; the other manager loses the field, the add-on's value comes back.
- NONE: apply without force; a conflict fails the update (ConfigurationConflict), nothing changes.
- PRESERVE: apply without force; the env entries in conflict are left out of the apply and keep the other
  manager's values, the rest is applied.

An update is InProgress until the worker has applied it (after `update_seconds`, or when a test releases it
with `hold()`/`release()`), then Successful or Failed, as DescribeUpdate and DescribeAddon show.
"""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse

import jsonschema
import yaml
from kubernetes import client

from warmpool_dev.e2e.kube import AWS_NODE_ENV, aws_node_daemonset

ADDON_NAME = "vpc-cni"
ADDON_VERSION = "v1.19.2-eksbuild.1"
ACCOUNT = "123456789012"
FIELD_MANAGER = "eks"
APPLY_PATCH = "application/apply-patch+yaml"
# Labels the add-on's objects carry, beside the `eks` field manager (what detection may look at).
ADDON_LABELS = {"app.kubernetes.io/managed-by": "EKS", "app.kubernetes.io/instance": "aws-vpc-cni"}

# The env variables the vpc-cni add-on's configuration schema accepts (a subset of the real one; every value a
# string, unknown names rejected, as EKS does).
SCHEMA_ENV_NAMES = sorted(
    {e["name"] for e in AWS_NODE_ENV if "value" in e}
    | {
        "WARM_IP_TARGET",
        "MINIMUM_IP_TARGET",
        "MAX_ENI",
        "AWS_VPC_K8S_CNI_CUSTOM_NETWORK_CFG",
        "ENI_CONFIG_LABEL_DEF",
        "DISABLE_TCP_EARLY_DEMUX",
        "POD_SECURITY_GROUP_ENFORCING_MODE",
    }
)
CONFIGURATION_SCHEMA: dict[str, Any] = {
    "$schema": "http://json-schema.org/draft-07/schema#",
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "env": {
            "type": "object",
            "additionalProperties": False,
            "properties": {name: {"type": "string"} for name in SCHEMA_ENV_NAMES},
        },
        "resources": {"type": "object"},
        "tolerations": {"type": "array"},
        "nodeAgent": {"type": "object"},
        "init": {"type": "object"},
    },
}


class AddonError(Exception):
    """An EKS error: HTTP status, `x-amzn-ErrorType`, message."""

    def __init__(self, status: int, kind: str, message: str) -> None:
        super().__init__(message)
        self.status, self.kind, self.message = status, kind, message


def parse_configuration(text: str) -> dict[str, Any]:
    """configurationValues as EKS reads them: JSON or YAML, an object, valid against the schema."""
    if not text.strip():
        return {}
    try:
        values = yaml.safe_load(text)  # JSON is YAML
    except yaml.YAMLError as error:
        raise AddonError(
            400, "InvalidParameterException", f"configurationValues is not JSON or YAML: {error}"
        ) from error
    if not isinstance(values, dict):
        raise AddonError(400, "InvalidParameterException", "configurationValues must be an object")
    try:
        jsonschema.validate(values, CONFIGURATION_SCHEMA)
    except jsonschema.ValidationError as error:
        where = "/".join(str(p) for p in error.absolute_path) or "(root)"
        raise AddonError(
            400,
            "InvalidParameterException",
            f"ConfigurationValue provided in request is not supported: {where}: {error.message}",
        ) from error
    return values


def conflicting_env(error: client.ApiException) -> set[str]:
    """Env names in a server-side apply conflict (the Status causes name fields such as
    `.spec.template.spec.containers[name="aws-node"].env[name="WARM_IP_TARGET"].value`)."""
    try:
        causes = json.loads(error.body or "{}").get("details", {}).get("causes", [])
    except ValueError:
        return set()
    return {m.group(1) for c in causes for m in [re.search(r'env\[name="([^"]+)"\]', c.get("field", ""))] if m}


@dataclass
class Update:
    id: str
    resolve_conflicts: str
    configuration_values: str | None
    created_at: float
    status: str = "InProgress"
    errors: list[dict[str, Any]] = field(default_factory=list)

    def to_api(self) -> dict[str, Any]:
        params = [{"type": "ResolveConflicts", "value": self.resolve_conflicts}]
        if self.configuration_values is not None:
            params.append({"type": "ConfigurationValues", "value": self.configuration_values})
        return {
            "id": self.id,
            "status": self.status,
            "type": "AddonUpdate",
            "params": params,
            "createdAt": self.created_at,
            "errors": self.errors,
        }


@dataclass
class Addon:
    cluster: str
    region: str
    configuration_values: str = ""
    status: str = "ACTIVE"
    created_at: float = field(default_factory=time.time)
    modified_at: float = field(default_factory=time.time)
    issues: list[dict[str, Any]] = field(default_factory=list)
    arn_suffix: str = field(default_factory=lambda: uuid.uuid4().hex[:12])

    def to_api(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "addonName": ADDON_NAME,
            "clusterName": self.cluster,
            "status": self.status,
            "addonVersion": ADDON_VERSION,
            "health": {"issues": self.issues},
            "addonArn": f"arn:aws:eks:{self.region}:{ACCOUNT}:addon/{self.cluster}/{ADDON_NAME}/{self.arn_suffix}",
            "createdAt": self.created_at,
            "modifiedAt": self.modified_at,
            "tags": {},
            "owner": "aws",
            "publisher": "eks",
        }
        if self.configuration_values:
            body["configurationValues"] = self.configuration_values
        return body


class EksAddonEndpoint:
    """`start()` serves on loopback and installs the add-on (the aws-node DaemonSet, applied as `eks`);
    `stop()` stops serving. One cluster, one add-on (vpc-cni)."""

    def __init__(
        self,
        api: client.ApiClient,
        cluster: str = "dev",
        region: str = "us-east-1",
        namespace: str = "kube-system",
        update_seconds: float = 1.0,
    ) -> None:
        self.api = api
        self.namespace = namespace
        self.update_seconds = update_seconds
        self.addon = Addon(cluster=cluster, region=region)
        self.updates: dict[str, Update] = {}
        self.applied: list[str] = []  # update ids in the order the worker finished them
        self._lock = threading.Lock()
        self._released = threading.Event()
        self._released.set()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # ----- lifecycle -----

    @property
    def endpoint_url(self) -> str:
        assert self._server is not None, "not started"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def start(self, install: bool = True) -> EksAddonEndpoint:
        if install:
            self.install()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="eks-addon", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._released.set()  # let a held worker finish
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()

    def install(self, configuration_values: str = "") -> None:
        """What CreateAddon does: the whole aws-node DaemonSet applied as `eks` (taking every field)."""
        config = parse_configuration(configuration_values)
        self.addon.configuration_values = configuration_values
        self._apply(config, force=True, leave_out=set())

    # ----- test controls -----

    def hold(self) -> None:
        """Updates stay InProgress until `release()`."""
        self._released.clear()

    def release(self) -> None:
        self._released.set()

    def wait_idle(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while any(u.status == "InProgress" for u in self.updates.values()):
            if time.monotonic() > deadline:
                raise TimeoutError("an add-on update is still in progress")
            time.sleep(0.05)

    # ----- the API -----

    def describe_addon(self, cluster: str, name: str) -> dict[str, Any]:
        self._check(cluster, name)
        with self._lock:
            return {"addon": self.addon.to_api()}

    def describe_configuration(self, name: str, version: str) -> dict[str, Any]:
        if name != ADDON_NAME or version != ADDON_VERSION:
            raise AddonError(404, "ResourceNotFoundException", f"no add-on {name} at version {version}")
        return {"addonName": name, "addonVersion": version, "configurationSchema": json.dumps(CONFIGURATION_SCHEMA)}

    def describe_update(self, cluster: str, update_id: str, name: str | None) -> dict[str, Any]:
        self._check(cluster, name or ADDON_NAME)
        with self._lock:
            found = self.updates.get(update_id)
            if found is None:
                raise AddonError(404, "ResourceNotFoundException", f"No update found for ID: {update_id}")
            return {"update": found.to_api()}

    def update_addon(self, cluster: str, name: str, body: Mapping[str, Any]) -> dict[str, Any]:
        self._check(cluster, name)
        resolve = body.get("resolveConflicts", "NONE")
        if resolve not in ("OVERWRITE", "NONE", "PRESERVE"):
            raise AddonError(400, "InvalidParameterException", f"resolveConflicts {resolve!r} is not supported")
        values = body.get("configurationValues")
        if values is not None:
            parse_configuration(values)  # refused before anything changes
        with self._lock:
            if self.addon.status == "UPDATING":
                raise AddonError(409, "ResourceInUseException", f"Addon {ADDON_NAME} is currently being updated")
            update = Update(str(uuid.uuid4()), resolve, values, time.time())
            self.updates[update.id] = update
            self.addon.status = "UPDATING"
        threading.Thread(target=self._work, args=(update,), name=f"eks-update-{update.id[:8]}", daemon=True).start()
        return {"update": update.to_api()}

    # ----- what EKS does behind the API -----

    def _check(self, cluster: str, name: str) -> None:
        if cluster != self.addon.cluster:
            raise AddonError(404, "ResourceNotFoundException", f"No cluster found for name: {cluster}.")
        if name != ADDON_NAME:
            raise AddonError(404, "ResourceNotFoundException", f"No addon: {name} found in cluster: {cluster}")

    def _work(self, update: Update) -> None:
        time.sleep(self.update_seconds)
        self._released.wait()
        text = update.configuration_values
        if text is None:
            text = self.addon.configuration_values
        config = parse_configuration(text)
        errors: list[dict[str, Any]] = []
        try:
            if update.resolve_conflicts == "OVERWRITE":
                self._apply(config, force=True, leave_out=set())
            else:
                try:
                    self._apply(config, force=False, leave_out=set())
                except client.ApiException as error:
                    if error.status != HTTPStatus.CONFLICT:
                        raise
                    names = conflicting_env(error)
                    if update.resolve_conflicts == "NONE" or not names:
                        errors.append(_conflict_error(self.namespace, names))
                    else:  # PRESERVE: the entries another manager changed keep its values
                        self._apply(config, force=False, leave_out=names)
        except Exception as error:  # anything else fails the update, as EKS reports it
            errors.append({"errorCode": "Unknown", "errorMessage": str(error)[:500], "resourceIds": []})
        with self._lock:
            update.errors = errors
            update.status = "Failed" if errors else "Successful"
            if not errors:
                self.addon.configuration_values = text
                self.addon.issues = []
                self.addon.status = "ACTIVE"
            else:
                self.addon.issues = [
                    {"code": "ConfigurationConflict", "message": e["errorMessage"], "resourceIds": e["resourceIds"]}
                    for e in errors
                    if e["errorCode"] == "ConfigurationConflict"
                ]
                self.addon.status = "UPDATE_FAILED"
            self.addon.modified_at = time.time()
            self.applied.append(update.id)

    def _apply(self, config: Mapping[str, Any], force: bool, leave_out: set[str]) -> None:
        overrides: dict[str, str] = dict(config.get("env") or {})
        env: list[dict[str, Any]] = []
        for entry in AWS_NODE_ENV:
            name = entry["name"]
            if name in leave_out:
                continue
            env.append({"name": name, "value": overrides.pop(name)} if name in overrides else dict(entry))
        env += [{"name": k, "value": v} for k, v in sorted(overrides.items()) if k not in leave_out]
        body = aws_node_daemonset(self.namespace, env=env)
        body["metadata"]["labels"] = {**body["metadata"]["labels"], **ADDON_LABELS}
        client.AppsV1Api(self.api).patch_namespaced_daemon_set(
            "aws-node", self.namespace, body, field_manager=FIELD_MANAGER, force=force, _content_type=APPLY_PATCH
        )


def _conflict_error(namespace: str, names: set[str]) -> dict[str, Any]:
    what = ", ".join(sorted(names)) or "fields"
    return {
        "errorCode": "ConfigurationConflict",
        "errorMessage": f"Conflicts found when trying to apply. Will not continue due to resolve conflicts mode. "
        f"Conflicts: {what} (another field manager changed them)",
        "resourceIds": [f"DaemonSet.apps {namespace}/aws-node env {n}" for n in sorted(names)],
    }


_ROUTES = [
    ("GET", re.compile(r"^/clusters/([^/]+)/addons/([^/]+)$"), "describe_addon"),
    ("POST", re.compile(r"^/clusters/([^/]+)/addons/([^/]+)/update$"), "update_addon"),
    ("GET", re.compile(r"^/addons/configuration-schemas$"), "describe_configuration"),
    ("GET", re.compile(r"^/clusters/([^/]+)/updates/([^/]+)$"), "describe_update"),
]


def _handler_for(endpoint: EksAddonEndpoint) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:  # keep test output clean
            pass

        def do_GET(self) -> None:
            self._dispatch("GET")

        def do_POST(self) -> None:
            self._dispatch("POST")

        def _dispatch(self, method: str) -> None:
            url = urlparse(self.path)
            query = {k: v[0] for k, v in parse_qs(url.query).items()}
            try:
                for verb, pattern, action in _ROUTES:
                    found = pattern.match(url.path)
                    if verb == method and found:
                        args = [unquote(a) for a in found.groups()]
                        self._reply(200, self._call(action, args, query))
                        return
                raise AddonError(404, "ResourceNotFoundException", f"no route for {method} {url.path}")
            except AddonError as error:
                self._reply(error.status, {"message": error.message}, error.kind)

        def _call(self, action: str, args: list[str], query: dict[str, str]) -> dict[str, Any]:
            if action == "describe_addon":
                return endpoint.describe_addon(args[0], args[1])
            if action == "update_addon":
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                return endpoint.update_addon(args[0], args[1], body)
            if action == "describe_configuration":
                return endpoint.describe_configuration(query.get("addonName", ""), query.get("addonVersion", ""))
            return endpoint.describe_update(args[0], args[1], query.get("addonName"))

        def _reply(self, status: int, body: Mapping[str, Any], error_type: str | None = None) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            if error_type:
                self.send_header("x-amzn-ErrorType", error_type)
            self.end_headers()
            self.wfile.write(data)

    return Handler
