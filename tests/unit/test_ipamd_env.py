"""ipamd's parsing of its four targets and its mode, as Go's strconv does it."""

from __future__ import annotations

import pytest

from warmpool.api.v1alpha1 import Variable
from warmpool.ipamd.env import (
    IpamdTargets,
    go_atoi,
    go_parse_bool,
    invalid_values,
    max_eni_from_env,
    mode_from_env,
    parse_env,
    parse_settings,
)
from warmpool.ipamd.limits import IpMode


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
        ("TRUE", IpMode.PREFIX),
        ("True", IpMode.PREFIX),
        ("t", IpMode.PREFIX),
        ("yes", IpMode.SECONDARY),
        ("", IpMode.SECONDARY),
        (" true", IpMode.SECONDARY),  # ParseBool takes no spaces: unparsable -> the default, false
        ("true ", IpMode.SECONDARY),
        ("tRUE", IpMode.SECONDARY),
        ("0", IpMode.SECONDARY),
        ("F", IpMode.SECONDARY),
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


def test_mode_from_env_unset_is_secondary() -> None:
    assert mode_from_env({}) is IpMode.SECONDARY


@pytest.mark.parametrize(
    ("text", "value"),
    [
        ("0", 0),
        ("00", 0),
        ("+7", 7),
        ("-7", -7),
        ("007", 7),
        ("9223372036854775807", 2**63 - 1),
        ("-9223372036854775808", -(2**63)),
        ("9223372036854775808", None),  # out of int64: ErrRange
        ("-9223372036854775809", None),
        ("", None),
        ("+", None),
        ("-", None),
        (" 5", None),
        ("5 ", None),
        ("5\n", None),
        ("1_000", None),
        ("0x10", None),
        ("1e3", None),
        ("\u0665", None),  # an Arabic-Indic digit: Python's int() takes it, Go's Atoi does not
        ("++5", None),
    ],
)
def test_go_atoi(text: str, value: int | None) -> None:
    assert go_atoi(text) == value


@pytest.mark.parametrize(
    ("text", "value"),
    [
        *[(t, True) for t in ("1", "t", "T", "TRUE", "true", "True")],
        *[(f, False) for f in ("0", "f", "F", "FALSE", "false", "False")],
        *[(x, None) for x in ("", " true", "yes", "on", "tRuE", "2", "true\n")],
    ],
)
def test_go_parse_bool(text: str, value: bool | None) -> None:
    assert go_parse_bool(text) is value


def test_targets_by_name() -> None:
    targets = IpamdTargets(warm_eni=2, warm_ip=3)
    assert targets.get("WARM_IP_TARGET") == 3
    assert targets.get(Variable.WARM_ENI_TARGET) == 2
    changed = targets.with_values({Variable.MINIMUM_IP_TARGET: 9, "WARM_IP_TARGET": 0})
    assert changed == IpamdTargets(warm_eni=2, warm_ip=0, minimum_ip=9)
    assert parse_env(changed.as_env()) == changed


def test_invalid_values_name_the_default_ipamd_uses() -> None:
    env = {
        "WARM_ENI_TARGET": "x",
        "WARM_IP_TARGET": "-2",
        "MINIMUM_IP_TARGET": "99999999999999999999",
        "WARM_PREFIX_TARGET": "1",
    }
    problems = invalid_values(env)
    assert len(problems) == 3
    assert "WARM_ENI_TARGET='x' is not an integer: ipamd silently uses 1" in problems[0]
    assert "negative" in problems[1]
    assert "64-bit" in problems[2]


@pytest.mark.parametrize(
    ("raw", "expected"),
    [(None, None), ("1", 1), ("+3", 3), ("0", None), ("-1", None), (" 2", None), ("x", None)],
)
def test_max_eni_from_env(raw: str | None, expected: int | None) -> None:
    assert max_eni_from_env({} if raw is None else {"MAX_ENI": raw}) == expected
