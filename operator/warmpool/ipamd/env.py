"""How ipamd reads its targets from the aws-node environment, and which settings warmpool must never write.

Parsing follows `getWarmENITarget`, `getWarmIPTarget`, `getMinimumIPTarget` and `getWarmPrefixTarget` in
pkg/ipamd/ipamd.go: Go's `strconv.Atoi` (optional sign, decimal digits, nothing else; no spaces), and a
negative or unparsable value falls back to the default. Booleans follow `strconv.ParseBool`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from warmpool.ipamd.limits import InstanceLimits, IpMode

WARM_ENI_TARGET = "WARM_ENI_TARGET"
WARM_IP_TARGET = "WARM_IP_TARGET"
MINIMUM_IP_TARGET = "MINIMUM_IP_TARGET"
WARM_PREFIX_TARGET = "WARM_PREFIX_TARGET"
ENABLE_PREFIX_DELEGATION = "ENABLE_PREFIX_DELEGATION"
TARGET_NAMES = (WARM_ENI_TARGET, WARM_IP_TARGET, MINIMUM_IP_TARGET, WARM_PREFIX_TARGET)

DEFAULT_WARM_ENI_TARGET = 1
DEFAULT_WARM_PREFIX_TARGET = 0  # the code default; the shipped manifests set 1

_ATOI = re.compile(r"[+-]?[0-9]+")
_INT64_MAX = 2**63 - 1
_TRUE = {"1", "t", "T", "TRUE", "true", "True"}
_FALSE = {"0", "f", "F", "FALSE", "false", "False"}


@dataclass(frozen=True, slots=True)
class IpamdTargets:
    """The four targets as ipamd holds them after parsing (0 = not set, except WARM_ENI_TARGET)."""

    warm_eni: int = DEFAULT_WARM_ENI_TARGET
    warm_ip: int = 0
    minimum_ip: int = 0
    warm_prefix: int = DEFAULT_WARM_PREFIX_TARGET

    @property
    def ip_targets_defined(self) -> bool:
        """`warmIPTargetsDefined`: either IP target non-zero means they alone decide."""
        return self.warm_ip != 0 or self.minimum_ip != 0

    def as_env(self) -> dict[str, str]:
        return {
            WARM_ENI_TARGET: str(self.warm_eni),
            WARM_IP_TARGET: str(self.warm_ip),
            MINIMUM_IP_TARGET: str(self.minimum_ip),
            WARM_PREFIX_TARGET: str(self.warm_prefix),
        }


def go_atoi(text: str) -> int | None:
    """`strconv.Atoi`: None where Go returns an error (spaces, underscores, decimals, int64 overflow)."""
    if not _ATOI.fullmatch(text):
        return None
    value = int(text)
    return value if -_INT64_MAX - 1 <= value <= _INT64_MAX else None


def go_parse_bool(text: str) -> bool | None:
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    return None


def _target(env: Mapping[str, str], name: str, default: int) -> int:
    raw = env.get(name)
    if raw is None:
        return default
    value = go_atoi(raw)
    return default if value is None or value < 0 else value


def parse_env(env: Mapping[str, str]) -> IpamdTargets:
    """The targets ipamd would run with, given the aws-node container's env."""
    return IpamdTargets(
        warm_eni=_target(env, WARM_ENI_TARGET, DEFAULT_WARM_ENI_TARGET),
        warm_ip=_target(env, WARM_IP_TARGET, 0),
        minimum_ip=_target(env, MINIMUM_IP_TARGET, 0),
        warm_prefix=_target(env, WARM_PREFIX_TARGET, DEFAULT_WARM_PREFIX_TARGET),
    )


def mode_from_env(env: Mapping[str, str]) -> IpMode:
    """ENABLE_PREFIX_DELEGATION as `utils.GetBoolAsStringEnvVar` reads it (unparsable -> false)."""
    return IpMode.PREFIX if go_parse_bool(env.get(ENABLE_PREFIX_DELEGATION, "")) else IpMode.SECONDARY


def parse_settings(text: str) -> dict[str, str]:
    """'WARM_IP_TARGET=2,MINIMUM_IP_TARGET=5' -> env entries. Raises ValueError on a malformed pair or a name
    that is not one of the four targets (a typo would otherwise silently test the defaults)."""
    out: dict[str, str] = {}
    for part in (p.strip() for p in text.split(",")):
        if not part:
            continue
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or name not in TARGET_NAMES:
            raise ValueError(f"{part!r}: expected NAME=VALUE with NAME one of {', '.join(TARGET_NAMES)}")
        out[name] = value.strip()
    if not out:
        raise ValueError(f"{text!r}: no settings given")
    return out


def invalid_values(env: Mapping[str, str]) -> list[str]:
    """Target entries ipamd would silently replace by its default: negative or not an integer."""
    problems = []
    for name in TARGET_NAMES:
        raw = env.get(name)
        if raw is None:
            continue
        value = go_atoi(raw)
        if value is None:
            problems.append(f"{name}={raw!r} is not an integer: ipamd silently uses its default")
        elif value < 0:
            problems.append(f"{name}={raw} is negative: ipamd silently uses its default")
    return problems


def unsafe_settings(
    targets: IpamdTargets,
    mode: IpMode,
    smallest_limits: InstanceLimits | None,
    *,
    env: Mapping[str, str] | None = None,
    allow_freeze: bool = False,
) -> list[str]:
    """Why these targets must not be written (empty when they are fine). See "Settings the operator must never
    write" in reference/vpc-cni.md. `smallest_limits` is the instance type in scope with the fewest IPs per ENI;
    `env`, when given, is also checked for raw values ipamd would ignore; `allow_freeze` permits a
    MINIMUM_IP_TARGET without WARM_IP_TARGET when the policy asks for exactly that."""
    problems = invalid_values(env) if env is not None else []
    if targets.minimum_ip > 0 and targets.warm_ip == 0 and not allow_freeze:
        problems.append(
            f"MINIMUM_IP_TARGET={targets.minimum_ip} without WARM_IP_TARGET freezes nodes at the minimum: "
            "every further pod waits for an EC2 call"
        )
    if mode is IpMode.PREFIX and targets.warm_prefix == 0 and not targets.ip_targets_defined:
        problems.append(
            "prefix mode with WARM_PREFIX_TARGET, WARM_IP_TARGET and MINIMUM_IP_TARGET all 0: aws-node does not start"
        )
    if smallest_limits is not None:
        eni_ips = smallest_limits.ips_per_eni(mode)
        if targets.warm_ip > eni_ips:
            problems.append(
                f"WARM_IP_TARGET={targets.warm_ip} is above one ENI's {eni_ips} IPs on "
                f"{smallest_limits.instance_type}: new ENIs take minutes to become usable (VPC CNI issue #1872)"
            )
    return problems
