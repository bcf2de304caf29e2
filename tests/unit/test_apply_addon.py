"""The EKS add-on route's pure parts: detecting the add-on, choosing the route, merging configuration values
without losing anything, checking them against the add-on's schema; and the update call's outcomes with a
scripted EKS client."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from warmpool.api.v1alpha1 import Variable
from warmpool.apply.addon import (
    ConfigurationError,
    Route,
    addon_markers,
    choose_route,
    env_of,
    merge_configuration,
    schema_problems,
    update_through_addon,
)
from warmpool.apply.daemonset import view
from warmpool.aws.eks import AddonInfo, AddonUnavailable, UpdateInfo

W, M = Variable.WARM_IP_TARGET, Variable.MINIMUM_IP_TARGET


def daemonset(managers: dict[str, list[str]], labels: dict[str, str] | None = None) -> dict[str, Any]:
    """An aws-node DaemonSet whose env entries are owned as given (manager -> env names)."""
    managed = []
    for manager, names in managers.items():
        env = {f'k:{{"name":"{n}"}}': {".": {}, "f:name": {}, "f:value": {}} for n in names}
        fields = {"f:spec": {"f:template": {"f:spec": {"f:containers": {'k:{"name":"aws-node"}': {"f:env": env}}}}}}
        managed.append({"manager": manager, "operation": "Apply", "fieldsV1": fields})
    return {
        "metadata": {"name": "aws-node", "labels": labels or {}, "managedFields": managed},
        "spec": {"template": {"spec": {"containers": [{"name": "aws-node", "env": []}]}}},
    }


def test_markers_name_what_shows_the_add_on() -> None:
    assert addon_markers(daemonset({"kubectl": ["WARM_ENI_TARGET"]}), "aws-node") == []
    found = addon_markers(daemonset({"eks": ["WARM_PREFIX_TARGET", "WARM_ENI_TARGET"]}), "aws-node")
    assert found == ["env entries owned by field manager eks (WARM_ENI_TARGET, WARM_PREFIX_TARGET)"]
    labelled = daemonset({}, labels={"app.kubernetes.io/managed-by": "EKS", "eks.amazonaws.com/component": "vpc-cni"})
    assert addon_markers(labelled, "aws-node") == [
        "label app.kubernetes.io/managed-by=EKS",
        "eks.amazonaws.com/component on the DaemonSet",
    ]
    # Another container's entries do not count.
    assert addon_markers(daemonset({"eks": ["X"]}), "other") == []


@pytest.mark.parametrize(
    ("apply_via", "markers", "route"),
    [
        ("Auto", [], Route.DAEMONSET),
        ("Auto", ["env entries owned by field manager eks (WARM_ENI_TARGET)"], Route.EKS_ADDON),
        ("DaemonSet", ["label app.kubernetes.io/managed-by=EKS"], Route.DAEMONSET),
        ("EksAddon", [], Route.EKS_ADDON),
    ],
)
def test_route(apply_via: str, markers: list[str], route: Route) -> None:
    assert choose_route(apply_via, markers) is route


def test_auto_stays_direct_when_the_cluster_is_unknown() -> None:
    markers = ["env entries owned by field manager eks (WARM_ENI_TARGET)"]
    assert choose_route("Auto", markers, addon_api_configured=False) is Route.DAEMONSET
    assert choose_route("EksAddon", markers, addon_api_configured=False) is Route.EKS_ADDON


def test_merge_keeps_every_other_value() -> None:
    current = json.dumps(
        {"env": {"AWS_VPC_K8S_CNI_LOGLEVEL": "INFO", "WARM_IP_TARGET": "9"}, "resources": {"requests": {"cpu": "25m"}}}
    )
    merged = json.loads(merge_configuration(current, {W: 3, M: 12}))
    assert merged == {
        "env": {"AWS_VPC_K8S_CNI_LOGLEVEL": "INFO", "WARM_IP_TARGET": "3", "MINIMUM_IP_TARGET": "12"},
        "resources": {"requests": {"cpu": "25m"}},
    }
    assert list(merged) == ["env", "resources"]  # the original order


def test_merge_reads_yaml_and_empty_and_releases() -> None:
    assert env_of(merge_configuration("", {W: 2})) == {"WARM_IP_TARGET": "2"}
    yaml_text = "env:\n  WARM_ENI_TARGET: '2'\n  MINIMUM_IP_TARGET: '10'\ntolerations: []\n"
    merged = json.loads(merge_configuration(yaml_text, {W: 4}, release=["MINIMUM_IP_TARGET"]))
    assert merged == {"env": {"WARM_ENI_TARGET": "2", "WARM_IP_TARGET": "4"}, "tolerations": []}


@pytest.mark.parametrize("bad", ["[1, 2]", "env: [a]", "{not: json: nor yaml", "42"])
def test_unreadable_configuration_is_an_error(bad: str) -> None:
    with pytest.raises(ConfigurationError):
        merge_configuration(bad, {W: 1})


def test_schema_problems() -> None:
    closed = {"properties": {"env": {"additionalProperties": False, "properties": {"WARM_IP_TARGET": {}}}}}
    assert schema_problems(closed, ["WARM_IP_TARGET"]) == []
    assert schema_problems(closed, ["MINIMUM_IP_TARGET"]) == [
        "MINIMUM_IP_TARGET is not in the add-on's configuration schema"
    ]
    assert schema_problems({"properties": {"env": {"type": "object"}}}, ["ANY"]) == []
    assert schema_problems({"properties": {"resources": {}}}, ["WARM_IP_TARGET"]) == [
        "the add-on's configuration schema has no env"
    ]


class ScriptedEks:
    """Answers like EKS would, from a script: the add-on's state and the states an update goes through."""

    def __init__(self, status: str = "ACTIVE", config: str = "", updates: list[str] | None = None) -> None:
        self.addon = AddonInfo("vpc-cni", "dev", status, "v1.19.2-eksbuild.1", "arn:x", config)
        self.states = list(updates or ["InProgress", "Successful"])
        self.sent: list[str] = []

    def describe_addon(self) -> AddonInfo:
        return self.addon

    def configuration_schema(self, version: str) -> dict[str, Any]:
        return {"properties": {"env": {"additionalProperties": False, "properties": {"WARM_IP_TARGET": {}}}}}

    def update_configuration(self, values: str) -> UpdateInfo:
        self.sent.append(values)
        return UpdateInfo("u1", self._next())

    def describe_update(self, update_id: str) -> UpdateInfo:
        state = self._next()
        return UpdateInfo(update_id, state, ("ConfigurationConflict: x",) if state == "Failed" else ())

    def _next(self) -> str:
        """The next state; the last one repeats."""
        return self.states.pop(0) if len(self.states) > 1 else self.states[0]


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_update_followed_until_done() -> None:
    eks, clock = ScriptedEks(config='{"env":{"AWS_VPC_K8S_CNI_LOGLEVEL":"INFO"}}'), FakeClock()
    result = update_through_addon(eks, {W: 3}, [], wait_seconds=10, sleep=clock.sleep, clock=clock)
    assert (result.status, result.update_id) == ("Successful", "u1")
    assert json.loads(eks.sent[0]) == {"env": {"AWS_VPC_K8S_CNI_LOGLEVEL": "INFO", "WARM_IP_TARGET": "3"}}


def test_update_left_in_progress_after_the_wait() -> None:
    eks, clock = ScriptedEks(updates=["InProgress"]), FakeClock()
    result = update_through_addon(eks, {W: 3}, [], wait_seconds=5, sleep=clock.sleep, clock=clock)
    assert result.status == "InProgress"
    assert result.sent
    assert clock.now == 5.0  # bounded: the next pass follows it


def test_nothing_sent_when_busy_refused_or_unreachable() -> None:
    busy = ScriptedEks(status="UPDATING")
    assert update_through_addon(busy, {W: 3}, [], wait_seconds=0).status == "Busy"
    assert busy.sent == []
    refused = ScriptedEks()
    result = update_through_addon(refused, {M: 3}, [], wait_seconds=0)
    assert (result.status, result.sent, refused.sent) == ("Refused", False, [])
    bad = ScriptedEks(config="[1]")
    assert update_through_addon(bad, {W: 3}, [], wait_seconds=0).status == "Refused"

    class Unreachable(ScriptedEks):
        def describe_addon(self) -> AddonInfo:
            raise AddonUnavailable("eks:DescribeAddon failed: AccessDeniedException: no", "AccessDeniedException")

    result = update_through_addon(Unreachable(), {W: 3}, [], wait_seconds=0)
    assert result.status == "Refused"
    assert "AccessDenied" in result.message


def test_failed_update_reports_eks_errors() -> None:
    eks = ScriptedEks(updates=["InProgress", "Failed"])
    result = update_through_addon(eks, {W: 3}, [], wait_seconds=10, sleep=lambda _: None)
    assert result.status == "Failed"
    assert "ConfigurationConflict" in result.message


def test_the_add_on_entries_are_not_foreign_when_writing_through_it() -> None:
    seen = view(daemonset({"eks": ["WARM_IP_TARGET"], "argocd-controller": ["MINIMUM_IP_TARGET"]}), "aws-node")
    assert seen.foreign_owners([W, M]) == {"WARM_IP_TARGET": ["eks"], "MINIMUM_IP_TARGET": ["argocd-controller"]}
    # Through the add-on, eks's entries are ours to set; a GitOps owner still is not.
    assert dataclasses.replace(seen, writer="eks").foreign_owners([W, M]) == {
        "MINIMUM_IP_TARGET": ["argocd-controller"]
    }
