"""How ipamd reads its targets and its mode from the aws-node environment.

Parsing follows `getWarmENITarget`, `getWarmIPTarget`, `getMinimumIPTarget` and `getWarmPrefixTarget` in
pkg/ipamd/ipamd.go: Go's `strconv.Atoi` (optional sign, decimal digits, nothing else; no spaces), and a
negative or unparsable value falls back to the default. Booleans follow `strconv.ParseBool`.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace
from typing import TypeVar

from warmpool.ipamd.limits import IpMode

WARM_ENI_TARGET = "WARM_ENI_TARGET"
WARM_IP_TARGET = "WARM_IP_TARGET"
MINIMUM_IP_TARGET = "MINIMUM_IP_TARGET"
WARM_PREFIX_TARGET = "WARM_PREFIX_TARGET"
ENABLE_PREFIX_DELEGATION = "ENABLE_PREFIX_DELEGATION"
MAX_ENI = "MAX_ENI"
TARGET_NAMES = (WARM_ENI_TARGET, WARM_IP_TARGET, MINIMUM_IP_TARGET, WARM_PREFIX_TARGET)

DEFAULT_WARM_ENI_TARGET = 1
DEFAULT_WARM_PREFIX_TARGET = 0  # the code default; the shipped manifests set 1

_ATOI = re.compile(r"[+-]?[0-9]+")
_INT64_MAX = 2**63 - 1
_NAME = TypeVar("_NAME", bound=str)  # an env name, or a str enum of them (api.v1alpha1.Variable)
_FIELDS = {
    WARM_ENI_TARGET: "warm_eni",
    WARM_IP_TARGET: "warm_ip",
    MINIMUM_IP_TARGET: "minimum_ip",
    WARM_PREFIX_TARGET: "warm_prefix",
}
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

    def get(self, name: str) -> int:
        """The value of one target by its env name."""
        value: int = getattr(self, _FIELDS[name])
        return value

    def with_values(self, values: Mapping[_NAME, int]) -> IpamdTargets:
        """These targets with some replaced, keyed by env name: what ipamd runs once they are written."""
        return replace(self, **{_FIELDS[name]: value for name, value in values.items()})

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
    """`strconv.ParseBool`: exactly 1 t T TRUE true True / 0 f F FALSE false False; None for anything else."""
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


def go_bool_env(env: Mapping[str, str], name: str, default: bool) -> bool:
    """`utils.GetBoolAsStringEnvVar`: unset or unparsable -> the default."""
    raw = env.get(name)
    if raw is None:
        return default
    value = go_parse_bool(raw)
    return default if value is None else value


def max_eni_from_env(env: Mapping[str, str]) -> int | None:
    """MAX_ENI as `getMaxENI` reads it: a Go integer of at least 1, else none (every ENI of the instance)."""
    value = go_atoi(env.get(MAX_ENI, ""))
    return value if value is not None and value >= 1 else None


def mode_from_env(env: Mapping[str, str]) -> IpMode:
    """The mode ipamd runs on a Nitro node: ENABLE_PREFIX_DELEGATION as `usePrefixDelegation` reads it ("1", "t",
    "TRUE" are true; " true", "yes" and "" are not, and fall back to false). On other nodes ipamd falls back to
    secondary IPs (`InstanceLimits.runs_mode`)."""
    return IpMode.PREFIX if go_bool_env(env, ENABLE_PREFIX_DELEGATION, False) else IpMode.SECONDARY


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


def ignored_value(name: str, raw: str) -> str | None:
    """Why ipamd would silently replace this target's value by its default (None when it reads the value)."""
    value = go_atoi(raw)
    default = DEFAULT_WARM_ENI_TARGET if name == WARM_ENI_TARGET else 0
    if value is None:
        if _ATOI.fullmatch(raw):
            return f"{name}={raw} is beyond the 64-bit integer range: ipamd silently uses {default}"
        return f"{name}={raw!r} is not an integer: ipamd silently uses {default}"
    if value < 0:
        return f"{name}={raw} is negative: ipamd silently uses {default}"
    return None


def invalid_values(env: Mapping[str, str], names: Iterable[str] = TARGET_NAMES) -> list[str]:
    """Target entries ipamd would silently replace by its default: not an integer, beyond int64, negative."""
    problems = []
    for name in names:
        raw = env.get(name)
        if raw is not None and (why := ignored_value(name, raw)) is not None:
            problems.append(why)
    return problems
