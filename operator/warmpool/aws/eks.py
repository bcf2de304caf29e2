"""The EKS add-on API, for clusters where the vpc-cni managed add-on owns aws-node's env: read the add-on and its
configuration values, start an UpdateAddon, follow the update. Three calls (plus DescribeUpdate), all on the one
add-on; blocking boto3, so callers run them in a thread."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from warmpool.settings import Settings

# Update states as EKS names them.
UPDATE_IN_PROGRESS = "InProgress"
UPDATE_SUCCESSFUL = "Successful"
ADDON_UPDATING = "UPDATING"


class AddonUnavailable(Exception):
    """The add-on API did not answer or refused; `code` is EKS's error code (or the botocore class)."""

    def __init__(self, message: str, code: str = "") -> None:
        super().__init__(message)
        self.code = code


@dataclass(frozen=True, slots=True)
class AddonInfo:
    name: str
    cluster: str
    status: str  # ACTIVE, UPDATING, UPDATE_FAILED, DEGRADED, ...
    version: str
    arn: str
    configuration_values: str  # as EKS holds them: JSON or YAML text, "" when none

    @property
    def updating(self) -> bool:
        return self.status == ADDON_UPDATING


@dataclass(frozen=True, slots=True)
class UpdateInfo:
    id: str
    status: str  # InProgress, Successful, Failed, Cancelled
    errors: tuple[str, ...] = field(default_factory=tuple)  # "ErrorCode: message"

    @property
    def done(self) -> bool:
        return self.status != UPDATE_IN_PROGRESS


def build_eks_client(settings: Settings) -> Any:
    config = Config(retries={"mode": "standard", "total_max_attempts": 3}, connect_timeout=3, read_timeout=10)
    session = boto3.session.Session(region_name=settings.aws_region)
    return session.client("eks", endpoint_url=settings.eks_endpoint_url, config=config)


class EksAddonClient:
    """`client` replaces the boto3 client (tests); otherwise one is built on first use."""

    def __init__(self, settings: Settings, client: Any = None) -> None:
        self._settings = settings
        self._client = client
        self._lock = threading.Lock()
        self._schemas: dict[str, dict[str, Any]] = {}
        # Found when the settings leave the name out (warmpool.aws.cluster_name): the name, and where it came
        # from or why it was not found.
        self.discovered: str | None = None
        self.discovery: str = ""
        self.discovery_tried: set[str] = set()  # instance ids whose tags were read

    @property
    def cluster(self) -> str | None:
        return self._settings.eks_cluster_name or self.discovered

    @property
    def addon_name(self) -> str:
        return self._settings.eks_addon_name

    @property
    def daemonset(self) -> str:
        """namespace/name of the DaemonSet the add-on manages."""
        return self._settings.eks_addon_daemonset

    def describe_addon(self) -> AddonInfo:
        reply = self._call("describe_addon", clusterName=self._cluster(), addonName=self.addon_name)
        addon = reply.get("addon") or {}
        return AddonInfo(
            name=str(addon.get("addonName", self.addon_name)),
            cluster=str(addon.get("clusterName", self._cluster())),
            status=str(addon.get("status", "")),
            version=str(addon.get("addonVersion", "")),
            arn=str(addon.get("addonArn", "")),
            configuration_values=str(addon.get("configurationValues") or ""),
        )

    def update_configuration(self, configuration_values: str) -> UpdateInfo:
        """UpdateAddon with the whole new configuration values; PRESERVE keeps any entry another field manager
        changed by hand instead of failing the update or resetting it."""
        reply = self._call(
            "update_addon",
            clusterName=self._cluster(),
            addonName=self.addon_name,
            configurationValues=configuration_values,
            resolveConflicts="PRESERVE",
        )
        return _update(reply)

    def configuration_schema(self, version: str) -> dict[str, Any]:
        """The add-on version's JSON schema of configuration values (cached: a version's schema never changes)."""
        if version not in self._schemas:
            reply = self._call("describe_addon_configuration", addonName=self.addon_name, addonVersion=version)
            try:
                schema = json.loads(reply.get("configurationSchema") or "{}")
            except ValueError as error:
                raise AddonUnavailable(
                    f"the add-on's configuration schema is not JSON: {error}", "BadSchema"
                ) from error
            self._schemas[version] = schema if isinstance(schema, dict) else {}
        return self._schemas[version]

    def describe_update(self, update_id: str) -> UpdateInfo:
        reply = self._call("describe_update", name=self._cluster(), updateId=update_id, addonName=self.addon_name)
        return _update(reply)

    def _cluster(self) -> str:
        cluster = self.cluster
        if not cluster:
            why = f" ({self.discovery})" if self.discovery else ""
            raise AddonUnavailable(
                f"the EKS cluster name is unknown{why}: set WARMPOOL_EKS_CLUSTER_NAME (Helm value eks.clusterName)",
                "ClusterNameUnset",
            )
        return cluster

    def _call(self, operation: str, **kwargs: Any) -> dict[str, Any]:
        with self._lock:
            if self._client is None:
                self._client = build_eks_client(self._settings)
            boto = self._client
        try:
            reply: dict[str, Any] = getattr(boto, operation)(**kwargs)
        except ClientError as error:
            code = str(error.response.get("Error", {}).get("Code", "ClientError"))
            message = str(error.response.get("Error", {}).get("Message", error))
            raise AddonUnavailable(f"eks:{_action(operation)} failed: {code}: {message}", code) from error
        except BotoCoreError as error:
            raise AddonUnavailable(f"eks:{_action(operation)} failed: {error}", type(error).__name__) from error
        return reply


def _action(operation: str) -> str:
    return "".join(part.title() for part in operation.split("_"))


def _update(reply: dict[str, Any]) -> UpdateInfo:
    update = reply.get("update") or {}
    errors = tuple(f"{e.get('errorCode', 'Unknown')}: {e.get('errorMessage', '')}" for e in update.get("errors") or [])
    return UpdateInfo(id=str(update.get("id", "")), status=str(update.get("status", "")), errors=errors)
