"""ipamd's parsing of its four targets, and the settings warmpool must never write."""

from __future__ import annotations

import pytest

from warmpool.ipamd.env import IpamdTargets, mode_from_env, parse_env, parse_settings, unsafe_settings
from warmpool.ipamd.limits import InstanceLimits, IpMode

T3_SMALL = InstanceLimits("t3.small", 3, 4, vcpus=2)


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, IpamdTargets(1, 0, 0, 0)),  # code defaults
        ({"WARM_ENI_TARGET": "-1"}, IpamdTargets(warm_eni=1)),  # negative -> default 1
        ({"WARM_ENI_TARGET": "abc"}, IpamdTargets(warm_eni=1)),  # unparsable -> default 1
        ({"WARM_ENI_TARGET": ""}, IpamdTargets(warm_eni=1)),
        ({"WARM_ENI_TARGET": "0"}, IpamdTargets(warm_eni=0)),
        ({"WARM_ENI_TARGET": "+2"}, IpamdTargets(warm_eni=2)),  # Atoi takes a sign
        ({"WARM_ENI_TARGET": " 2"}, IpamdTargets(warm_eni=1)),  # but no spaces
        ({"WARM_IP_TARGET": "1_0"}, IpamdTargets()),  # nor underscores, which Python's int() takes
        ({"WARM_IP_TARGET": "2.5"}, IpamdTargets()),
        ({"WARM_IP_TARGET": "-3", "MINIMUM_IP_TARGET": "-1"}, IpamdTargets()),  # negative -> unset
        ({"WARM_IP_TARGET": "3", "MINIMUM_IP_TARGET": "10"}, IpamdTargets(warm_ip=3, minimum_ip=10)),
        ({"WARM_PREFIX_TARGET": "x"}, IpamdTargets(warm_prefix=0)),
        ({"WARM_PREFIX_TARGET": "2"}, IpamdTargets(warm_prefix=2)),
        ({"WARM_IP_TARGET": "99999999999999999999"}, IpamdTargets()),  # int64 overflow is an Atoi error
    ],
)
def test_parse_env(env: dict[str, str], expected: IpamdTargets) -> None:
    assert parse_env(env) == expected


@pytest.mark.parametrize(
    ("targets", "defined"),
    [
        (IpamdTargets(), False),
        (IpamdTargets(warm_eni=3, warm_prefix=2), False),
        (IpamdTargets(warm_ip=1), True),
        (IpamdTargets(minimum_ip=1), True),
    ],
)
def test_ip_targets_defined(targets: IpamdTargets, defined: bool) -> None:
    assert targets.ip_targets_defined is defined


@pytest.mark.parametrize(
    ("value", "mode"),
    [
        ("true", IpMode.PREFIX),
        ("1", IpMode.PREFIX),
        ("T", IpMode.PREFIX),
        ("yes", IpMode.SECONDARY),
        ("", IpMode.SECONDARY),
    ],
)
def test_mode_from_env(value: str, mode: IpMode) -> None:
    assert mode_from_env({"ENABLE_PREFIX_DELEGATION": value}) is mode


def test_parse_settings() -> None:
    assert parse_settings("WARM_IP_TARGET=2, MINIMUM_IP_TARGET=5") == {"WARM_IP_TARGET": "2", "MINIMUM_IP_TARGET": "5"}
    with pytest.raises(ValueError, match="NAME=VALUE"):
        parse_settings("WARM_IP_TARGT=2")
    with pytest.raises(ValueError, match="NAME=VALUE"):
        parse_settings("WARM_IP_TARGET")
    with pytest.raises(ValueError, match="no settings"):
        parse_settings(" , ")


def test_unsafe_minimum_without_warm_ip() -> None:
    problems = unsafe_settings(IpamdTargets(minimum_ip=10), IpMode.SECONDARY, T3_SMALL)
    assert len(problems) == 1
    assert "freezes" in problems[0]
    assert unsafe_settings(IpamdTargets(minimum_ip=10), IpMode.SECONDARY, T3_SMALL, allow_freeze=True) == []
    assert unsafe_settings(IpamdTargets(warm_ip=1, minimum_ip=10), IpMode.SECONDARY, T3_SMALL) == []


def test_unsafe_prefix_all_zero() -> None:
    assert "does not start" in unsafe_settings(IpamdTargets(), IpMode.PREFIX, T3_SMALL)[0]
    assert unsafe_settings(IpamdTargets(warm_prefix=1), IpMode.PREFIX, T3_SMALL) == []
    assert unsafe_settings(IpamdTargets(warm_ip=4), IpMode.PREFIX, T3_SMALL) == []
    assert unsafe_settings(IpamdTargets(), IpMode.SECONDARY, T3_SMALL) == []


def test_unsafe_warm_ip_above_one_eni() -> None:
    # t3.small: 3 usable slots per ENI -> 3 IPs in secondary mode, 48 in prefix mode.
    assert unsafe_settings(IpamdTargets(warm_ip=3), IpMode.SECONDARY, T3_SMALL) == []
    assert "#1872" in unsafe_settings(IpamdTargets(warm_ip=4), IpMode.SECONDARY, T3_SMALL)[0]
    assert unsafe_settings(IpamdTargets(warm_ip=48), IpMode.PREFIX, T3_SMALL) == []
    assert unsafe_settings(IpamdTargets(warm_ip=49), IpMode.PREFIX, T3_SMALL) != []
    assert unsafe_settings(IpamdTargets(warm_ip=49), IpMode.PREFIX, None) == []


def test_unsafe_raw_values() -> None:
    env = {"WARM_IP_TARGET": "-2", "MINIMUM_IP_TARGET": "ten"}
    problems = unsafe_settings(parse_env(env), IpMode.SECONDARY, T3_SMALL, env=env)
    assert any("negative" in p for p in problems)
    assert any("not an integer" in p for p in problems)
