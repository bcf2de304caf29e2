"""The aws-node entrypoint's own start-up checks (`validateEnvVars` in cmd/aws-vpc-cni/main.go).

When one fails, the container exits before ipamd starts: aws-node never becomes ready on the node, and a
DaemonSet rollout of such an env stops every node from networking new pods. The checks read the env as the
entrypoint does, which is not always how ipamd reads it later: the prefix-mode check compares the three
targets with "0" as strings, so " 5" or "+5" count as zero and "00" or "abc" as set.
"""

from __future__ import annotations

from collections.abc import Mapping

from warmpool.ipamd.env import (
    ENABLE_PREFIX_DELEGATION,
    MINIMUM_IP_TARGET,
    WARM_IP_TARGET,
    WARM_PREFIX_TARGET,
    go_atoi,
    go_bool_env,
)

PLUGIN_LOG_FILE = "AWS_VPC_K8S_PLUGIN_LOG_FILE"
VETH_PREFIX = "AWS_VPC_K8S_CNI_VETHPREFIX"
ENABLE_POD_ENI = "ENABLE_POD_ENI"
POD_SG_ENFORCING_MODE = "POD_SECURITY_GROUP_ENFORCING_MODE"
IP_COOLDOWN_PERIOD = "IP_COOLDOWN_PERIOD"
ENI_MTU = "AWS_VPC_ENI_MTU"
POD_MTU = "POD_MTU"
ENABLE_IPV6 = "ENABLE_IPv6"

_DEFAULT_MTU = 9001
_MIN_MTU_V4 = 576
_MIN_MTU_V6 = 1280
_RESERVED_VETH_PREFIXES = ("eth", "lo", "vlan")
_PREFIX_TARGETS = (WARM_IP_TARGET, WARM_PREFIX_TARGET, MINIMUM_IP_TARGET)


def go_string_le(a: str, b: str) -> bool:
    """Go's `a <= b` on strings: byte-wise over UTF-8."""
    return a.encode("utf-8", "surrogatepass") <= b.encode("utf-8", "surrogatepass")


def prefix_targets_all_zero(env: Mapping[str, str]) -> bool:
    """The entrypoint's prefix-mode rule: WARM_IP_TARGET, WARM_PREFIX_TARGET and MINIMUM_IP_TARGET (unset read
    as "0") all compare `<= "0"` as strings. True for "", "0", "-1", " 5", "+5"; false for "00", "1", "abc"."""
    return all(go_string_le(env.get(name, "0"), "0") for name in _PREFIX_TARGETS)


def start_refusals(env: Mapping[str, str]) -> list[tuple[str, str]]:
    """Why the aws-node entrypoint would exit with this env, as (variable, message); empty when it starts.
    Every failing check is listed, though the entrypoint stops at the first."""
    out: list[tuple[str, str]] = []
    if env.get(PLUGIN_LOG_FILE) == "stdout":
        out.append((PLUGIN_LOG_FILE, f"{PLUGIN_LOG_FILE} cannot be stdout"))
    veth = env.get(VETH_PREFIX, "eni")
    if len(veth.encode("utf-8", "surrogatepass")) > 4:
        out.append((VETH_PREFIX, f"{VETH_PREFIX}={veth!r} is longer than 4 characters"))
    if veth in _RESERVED_VETH_PREFIXES:
        out.append((VETH_PREFIX, f"{VETH_PREFIX}={veth!r} is reserved"))
    if go_bool_env(env, ENABLE_POD_ENI, False):
        sg_mode = env.get(POD_SG_ENFORCING_MODE, "strict")
        if sg_mode not in ("strict", "standard"):
            out.append((POD_SG_ENFORCING_MODE, f"{POD_SG_ENFORCING_MODE}={sg_mode!r} is not strict or standard"))
    cooldown = env.get(IP_COOLDOWN_PERIOD)
    if cooldown is not None:
        value = go_atoi(cooldown)
        if value is None or value < 0:
            out.append((IP_COOLDOWN_PERIOD, f"{IP_COOLDOWN_PERIOD}={cooldown!r} is not a non-negative integer"))
    ipv6 = go_bool_env(env, ENABLE_IPV6, False)
    low = _MIN_MTU_V6 if ipv6 else _MIN_MTU_V4
    for name in (ENI_MTU, POD_MTU):
        raw = env.get(name)
        if raw is None:
            continue  # the default, 9001, is valid
        mtu = go_atoi(raw)
        if mtu is None:
            out.append((name, f"{name}={raw!r} is not an integer"))
        elif not low <= mtu <= _DEFAULT_MTU:
            out.append((name, f"{name}={raw} is outside {low}..{_DEFAULT_MTU} ({'IPv6' if ipv6 else 'IPv4'})"))
    if go_bool_env(env, ENABLE_PREFIX_DELEGATION, False) and prefix_targets_all_zero(env):
        shown = ", ".join(f"{n}={env[n]!r}" if n in env else f"{n} unset" for n in _PREFIX_TARGETS)
        out.append(
            (
                WARM_PREFIX_TARGET,
                f'prefix mode with WARM_PREFIX_TARGET, WARM_IP_TARGET and MINIMUM_IP_TARGET all <= "0" as text '
                f"({shown})",
            )
        )
    return out
