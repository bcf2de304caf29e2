"""The last check before a write: the aws-node entrypoint's start-up checks, the VPC CNI version rule, and the
whole-env verdict. One table row per rule; each row fails if its rule is removed."""

from __future__ import annotations

import pytest

from warmpool.ipamd.entrypoint import go_string_le, prefix_targets_all_zero, start_refusals
from warmpool.ipamd.env import IpamdTargets
from warmpool.ipamd.limits import InstanceLimits, IpMode
from warmpool.ipamd.safety import ProblemKind, check_env, merge_env, unsafe_settings
from warmpool.ipamd.version import CniVersion, cni_version_from_image, eni_request_uncapped

T3_SMALL = InstanceLimits("t3.small", 3, 4, vcpus=2)  # 3 IPs per ENI, 9 pod IPs
M5_LARGE = InstanceLimits("m5.large", 3, 10, vcpus=2)  # 9 IPs per ENI, 27 pod IPs; prefix: 144 per ENI, 108 pods
M4_LARGE = InstanceLimits("m4.large", 2, 10, hypervisor="xen", vcpus=2)  # no prefix delegation
OLD = CniVersion(1, 11, 3)
NEW = CniVersion(1, 18, 3)
PD = {"ENABLE_PREFIX_DELEGATION": "true"}

# ----- the entrypoint's string comparison -----


@pytest.mark.parametrize(
    ("a", "le"),
    [
        ("", True),
        ("0", True),
        ("-1", True),
        (" 5", True),  # a space sorts before "0"
        ("+5", True),  # so does "+": Atoi would read 5, the entrypoint reads zero
        ("/", True),
        ("00", False),  # longer with the same start: greater
        ("1", False),
        ("abc", False),
        ("0 ", False),
        ("é", False),  # compared as UTF-8 bytes
    ],
)
def test_go_string_le_zero(a: str, le: bool) -> None:
    assert go_string_le(a, "0") is le


@pytest.mark.parametrize(
    ("env", "all_zero"),
    [
        ({}, True),  # unset reads as "0"
        ({"WARM_PREFIX_TARGET": ""}, True),  # set but empty: "" <= "0"
        ({"WARM_PREFIX_TARGET": "0", "WARM_IP_TARGET": "0", "MINIMUM_IP_TARGET": "0"}, True),
        ({"WARM_PREFIX_TARGET": "-1"}, True),
        ({"WARM_IP_TARGET": " 5"}, True),
        ({"MINIMUM_IP_TARGET": "+5"}, True),
        ({"WARM_PREFIX_TARGET": "00"}, False),
        ({"WARM_PREFIX_TARGET": "abc"}, False),
        ({"WARM_IP_TARGET": "3"}, False),
        ({"MINIMUM_IP_TARGET": "1"}, False),
        ({"WARM_ENI_TARGET": "5"}, True),  # not one of the three
    ],
)
def test_prefix_targets_all_zero_as_text(env: dict[str, str], all_zero: bool) -> None:
    assert prefix_targets_all_zero(env) is all_zero


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({}, None),
        (PD, "WARM_PREFIX_TARGET"),
        ({"ENABLE_PREFIX_DELEGATION": "1", "WARM_IP_TARGET": "0"}, "WARM_PREFIX_TARGET"),
        ({"ENABLE_PREFIX_DELEGATION": "t", "WARM_PREFIX_TARGET": "+1"}, "WARM_PREFIX_TARGET"),
        ({"ENABLE_PREFIX_DELEGATION": " true"}, None),  # not a Go boolean: secondary-IP mode, no prefix check
        ({**PD, "WARM_PREFIX_TARGET": "1"}, None),
        ({"AWS_VPC_K8S_PLUGIN_LOG_FILE": "stdout"}, "AWS_VPC_K8S_PLUGIN_LOG_FILE"),
        ({"AWS_VPC_K8S_CNI_VETHPREFIX": "abcde"}, "AWS_VPC_K8S_CNI_VETHPREFIX"),
        ({"AWS_VPC_K8S_CNI_VETHPREFIX": "eth"}, "AWS_VPC_K8S_CNI_VETHPREFIX"),
        ({"AWS_VPC_K8S_CNI_VETHPREFIX": "abcd"}, None),
        ({"ENABLE_POD_ENI": "true", "POD_SECURITY_GROUP_ENFORCING_MODE": "loose"}, "POD_SECURITY_GROUP_ENFORCING_MODE"),
        ({"ENABLE_POD_ENI": "false", "POD_SECURITY_GROUP_ENFORCING_MODE": "loose"}, None),
        ({"IP_COOLDOWN_PERIOD": "-1"}, "IP_COOLDOWN_PERIOD"),
        ({"IP_COOLDOWN_PERIOD": "30s"}, "IP_COOLDOWN_PERIOD"),
        ({"IP_COOLDOWN_PERIOD": "0"}, None),
        ({"AWS_VPC_ENI_MTU": "9002"}, "AWS_VPC_ENI_MTU"),
        ({"POD_MTU": "576"}, None),
        ({"POD_MTU": "576", "ENABLE_IPv6": "true"}, "POD_MTU"),  # IPv6 needs at least 1280
        ({"AWS_VPC_ENI_MTU": " 9001"}, "AWS_VPC_ENI_MTU"),
    ],
)
def test_start_refusals(env: dict[str, str], variable: str | None) -> None:
    refusals = start_refusals(env)
    assert [name for name, _ in refusals] == ([] if variable is None else [variable])


# ----- the VPC CNI version -----


@pytest.mark.parametrize(
    ("image", "version"),
    [
        ("602401143452.dkr.ecr.us-west-2.amazonaws.com/amazon-k8s-cni:v1.18.3-eksbuild.1", CniVersion(1, 18, 3)),
        ("amazon-k8s-cni:v1.11.4-rc1", CniVersion(1, 11, 4)),
        ("public.ecr.aws/eks/amazon-k8s-cni:1.12.0", CniVersion(1, 12, 0)),
        ("localhost:5000/amazon-k8s-cni:v1.10.1@sha256:" + "a" * 64, CniVersion(1, 10, 1)),
        ("localhost:5000/amazon-k8s-cni", None),  # the registry port is no tag
        ("amazon-k8s-cni@sha256:" + "a" * 64, None),
        ("amazon-k8s-cni:latest", None),
        ("amazon-k8s-cni:v1.18", None),
        ("", None),
        (None, None),
    ],
)
def test_cni_version_from_image(image: str | None, version: CniVersion | None) -> None:
    assert cni_version_from_image(image) == version


@pytest.mark.parametrize(
    ("version", "cautious", "uncapped"),
    [
        (CniVersion(1, 11, 3), True, True),
        (CniVersion(1, 11, 3), False, True),
        (CniVersion(1, 11, 4), True, False),  # PR #1975 is in v1.11.4 (read in the tag's source)
        (CniVersion(1, 12, 0), True, False),
        (CniVersion(2, 0, 0), True, False),
        (None, True, True),
        (None, False, False),
    ],
)
def test_eni_request_uncapped(version: CniVersion | None, cautious: bool, uncapped: bool) -> None:
    assert eni_request_uncapped(version, cautious=cautious) is uncapped


# ----- the whole-env verdict -----


def kinds(env: dict[str, str], limits: list[InstanceLimits] | None = None, **kw: object) -> set[ProblemKind]:
    verdict = check_env(env, [T3_SMALL] if limits is None else limits, **kw)  # type: ignore[arg-type]
    return {p.kind for p in verdict.problems}


W = ProblemKind.WONT_START
Z = ProblemKind.PREFIX_ALL_ZERO
F = ProblemKind.FREEZE
I = ProblemKind.IGNORED  # noqa: E741
B = ProblemKind.BEYOND_LIMITS
S = ProblemKind.SLOW_NEW_ENIS


@pytest.mark.parametrize(
    ("env", "limits", "version", "expected"),
    [
        # defaults: whole ENIs, safe
        ({}, [T3_SMALL], None, set()),
        ({"WARM_IP_TARGET": "2", "MINIMUM_IP_TARGET": "5"}, [T3_SMALL], None, set()),
        # freeze: a minimum without a warm target, whoever set it
        ({"MINIMUM_IP_TARGET": "5"}, [T3_SMALL], None, {F}),
        ({"MINIMUM_IP_TARGET": "5", "WARM_IP_TARGET": "abc"}, [T3_SMALL], None, {F, I}),
        ({"MINIMUM_IP_TARGET": "5", "WARM_IP_TARGET": "0"}, [T3_SMALL], None, {F}),
        # prefix mode: the entrypoint's text rule, and ipamd's parsed one
        ({"ENABLE_PREFIX_DELEGATION": "1", "WARM_IP_TARGET": "0", "MINIMUM_IP_TARGET": "0"}, [M5_LARGE], None, {W}),
        ({"ENABLE_PREFIX_DELEGATION": "TRUE", "WARM_PREFIX_TARGET": "00"}, [M5_LARGE], None, {Z}),
        ({"ENABLE_PREFIX_DELEGATION": "t", "WARM_PREFIX_TARGET": "abc"}, [M5_LARGE], None, {Z, I}),
        ({"ENABLE_PREFIX_DELEGATION": "True", "WARM_PREFIX_TARGET": "+1"}, [M5_LARGE], None, {W}),
        ({**PD, "WARM_PREFIX_TARGET": "1"}, [M5_LARGE], None, set()),
        ({**PD, "WARM_IP_TARGET": "3"}, [M5_LARGE], None, set()),
        ({" true": "x", "ENABLE_PREFIX_DELEGATION": " true"}, [M5_LARGE], None, set()),  # secondary-IP mode
        ({**PD, "WARM_PREFIX_TARGET": "00"}, [M4_LARGE], None, set()),  # non-Nitro: ipamd runs secondary IPs
        # values ipamd ignores
        ({"WARM_IP_TARGET": " 5"}, [T3_SMALL], None, {I}),
        ({"WARM_ENI_TARGET": "-1"}, [T3_SMALL], None, {I}),
        ({"WARM_ENI_TARGET": "99999999999999999999"}, [T3_SMALL], None, {I}),
        # instance limits, on the smallest type in scope, in the mode ipamd runs there
        ({"WARM_IP_TARGET": "10"}, [T3_SMALL, M5_LARGE], NEW, {B}),
        ({"WARM_IP_TARGET": "9", "MINIMUM_IP_TARGET": "10"}, [T3_SMALL], NEW, {B}),
        ({"WARM_ENI_TARGET": "4"}, [T3_SMALL], NEW, {B}),
        ({"WARM_ENI_TARGET": "3"}, [T3_SMALL], NEW, set()),
        ({**PD, "WARM_PREFIX_TARGET": "10"}, [T3_SMALL], NEW, {B}),  # 3 ENIs x 3 prefixes
        ({**PD, "WARM_IP_TARGET": "108"}, [M5_LARGE], NEW, set()),  # 110 max pods minus 2
        ({**PD, "WARM_IP_TARGET": "109"}, [M5_LARGE], NEW, {B}),
        ({**PD, "WARM_IP_TARGET": "20"}, [M5_LARGE, M4_LARGE], NEW, {B}),  # m4.large: 18 pod IPs, secondary
        # VPC CNI #1872: only before v1.11.4, or when the version is unknown
        ({"WARM_IP_TARGET": "4"}, [T3_SMALL], None, {S}),
        ({"WARM_IP_TARGET": "4"}, [T3_SMALL], OLD, {S}),
        ({"WARM_IP_TARGET": "4"}, [T3_SMALL], NEW, set()),
        ({"WARM_IP_TARGET": "3"}, [T3_SMALL], OLD, set()),
        ({"WARM_IP_TARGET": "1", "MINIMUM_IP_TARGET": "7"}, [T3_SMALL], OLD, {S}),  # above two ENIs' 6 IPs
        ({"WARM_IP_TARGET": "1", "MINIMUM_IP_TARGET": "6"}, [T3_SMALL], OLD, set()),
        ({"WARM_IP_TARGET": "1", "MINIMUM_IP_TARGET": "7"}, [T3_SMALL], NEW, set()),
        ({**PD, "WARM_PREFIX_TARGET": "4"}, [T3_SMALL], OLD, {S}),
        ({**PD, "WARM_PREFIX_TARGET": "3"}, [T3_SMALL], OLD, set()),
        ({**PD, "WARM_IP_TARGET": "48"}, [T3_SMALL], OLD, set()),
        ({**PD, "WARM_IP_TARGET": "49"}, [T3_SMALL], OLD, {S}),
        ({"WARM_IP_TARGET": "16"}, [M5_LARGE], None, {S}),  # the " true" repro's value on m5.large
        ({"WARM_IP_TARGET": "16"}, [], None, set()),  # no limits known: nothing to compare with
        # MAX_ENI lowers the ENIs ipamd uses (a Go integer >= 1; anything else is ignored)
        ({"WARM_IP_TARGET": "9", "MINIMUM_IP_TARGET": "10", "MAX_ENI": "1"}, [M5_LARGE], NEW, {B}),
        ({"WARM_IP_TARGET": "9", "MINIMUM_IP_TARGET": "10", "MAX_ENI": "2"}, [M5_LARGE], NEW, set()),
        ({"WARM_IP_TARGET": "9", "MINIMUM_IP_TARGET": "10", "MAX_ENI": "0"}, [M5_LARGE], NEW, set()),
        ({"WARM_IP_TARGET": "9", "MINIMUM_IP_TARGET": "10", "MAX_ENI": " 1"}, [M5_LARGE], NEW, set()),
        ({"WARM_ENI_TARGET": "2", "MAX_ENI": "1"}, [M5_LARGE], NEW, {B}),
    ],
)
def test_check_env(
    env: dict[str, str], limits: list[InstanceLimits], version: CniVersion | None, expected: set[ProblemKind]
) -> None:
    assert kinds(env, limits, cni_version=version) == expected


def test_check_env_reports_mode_and_parsed_targets() -> None:
    verdict = check_env({"ENABLE_PREFIX_DELEGATION": "1", "WARM_IP_TARGET": "3", "WARM_PREFIX_TARGET": " 2"})
    assert verdict.mode is IpMode.PREFIX
    assert verdict.targets == IpamdTargets(warm_ip=3)
    assert not verdict.safe  # " 2" is ignored
    assert verdict.problems[0].variable == "WARM_PREFIX_TARGET"


def test_value_problems_outside_the_write_are_notes() -> None:
    env = {"WARM_IP_TARGET": "2", "WARM_PREFIX_TARGET": "x", "WARM_ENI_TARGET": "50", "ENABLE_PREFIX_DELEGATION": "y"}
    verdict = check_env(env, [T3_SMALL], NEW, written=["WARM_IP_TARGET"])
    assert verdict.safe
    assert {(n.kind, n.variable) for n in verdict.notes} == {
        (I, "WARM_PREFIX_TARGET"),
        (B, "WARM_ENI_TARGET"),
        (I, "ENABLE_PREFIX_DELEGATION"),
    }
    # Outcomes count whoever set the values: a write rolls them out to every node.
    assert kinds({"MINIMUM_IP_TARGET": "5", "WARM_ENI_TARGET": "2"}, written=["WARM_ENI_TARGET"]) == {F}


def test_freeze_allowed_when_asked_for() -> None:
    assert kinds({"MINIMUM_IP_TARGET": "5"}, allow_freeze=True) == set()


def test_merge_env_writes_and_releases() -> None:
    current = {"WARM_IP_TARGET": "2", "MINIMUM_IP_TARGET": "5", "OTHER": "x"}
    merged = merge_env(current, {"MINIMUM_IP_TARGET": 7}, release=["WARM_IP_TARGET"])
    assert merged == {"MINIMUM_IP_TARGET": "7", "OTHER": "x"}
    assert current["WARM_IP_TARGET"] == "2"  # the input is left alone
    # Releasing WARM_IP_TARGET next to a minimum freezes nodes: the check sees the whole result.
    assert kinds(merged, [M5_LARGE]) == {F}


def test_messages_carry_the_numbers_and_the_version() -> None:
    (problem,) = check_env({"WARM_IP_TARGET": "16"}, [M5_LARGE], OLD).problems
    assert "WARM_IP_TARGET=16" in problem.message
    assert "one ENI's 9 IPs on m5.large" in problem.message
    assert "v1.11.3 is older than v1.11.4" in problem.message
    (problem,) = check_env({"WARM_IP_TARGET": "16"}, [M5_LARGE]).problems
    assert "unknown" in problem.message


def test_unsafe_settings_wrapper() -> None:
    assert "freezes" in unsafe_settings(IpamdTargets(minimum_ip=5), IpMode.SECONDARY, T3_SMALL)[0]
    assert unsafe_settings(IpamdTargets(minimum_ip=5), IpMode.SECONDARY, T3_SMALL, allow_freeze=True) == []
    assert "would not start" in unsafe_settings(IpamdTargets(), IpMode.PREFIX, T3_SMALL)[0]
    assert "#1872" in unsafe_settings(IpamdTargets(warm_ip=4), IpMode.SECONDARY, T3_SMALL)[0]
    assert unsafe_settings(IpamdTargets(warm_ip=4), IpMode.SECONDARY, None) == []
    env = {"WARM_IP_TARGET": "-2", "MINIMUM_IP_TARGET": "ten"}
    problems = unsafe_settings(IpamdTargets(), IpMode.SECONDARY, T3_SMALL, env=env)
    assert any("negative" in p for p in problems)
    assert any("not an integer" in p for p in problems)
