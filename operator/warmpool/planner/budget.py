"""How many spare IPs a node holds under given targets, and what that costs each subnet.

NOTE for consolidation: `held_ips` restates ipamd's steady state (reference/vpc-cni.md, "When the pool grows")
only as far as the subnet budget needs it. `warmpool.ipamd.pool.steady_state` is meant to be the one copy of
these rules; once it lands, `held_ips` should call it and `targets_from_env` should use `warmpool.ipamd.env`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace

from warmpool.api.v1alpha1 import Variable
from warmpool.ipamd.limits import IPS_PER_PREFIX, InstanceLimits, IpMode

ENV_PREFIX_DELEGATION = "ENABLE_PREFIX_DELEGATION"


@dataclass(frozen=True, slots=True)
class Targets:
    """The four targets as ipamd reads them (0 = not set, except WARM_ENI_TARGET whose default is 1)."""

    warm_eni: int = 1
    warm_ip: int = 0
    minimum_ip: int = 0
    warm_prefix: int = 0

    @property
    def ip_targets_set(self) -> bool:
        # warmIPTargetsDefined: either IP target set means they alone decide.
        return self.warm_ip > 0 or self.minimum_ip > 0

    def get(self, variable: Variable) -> int:
        return {
            Variable.WARM_ENI_TARGET: self.warm_eni,
            Variable.WARM_IP_TARGET: self.warm_ip,
            Variable.MINIMUM_IP_TARGET: self.minimum_ip,
            Variable.WARM_PREFIX_TARGET: self.warm_prefix,
        }[variable]

    def with_values(self, values: Mapping[Variable, int]) -> Targets:
        fields = {
            Variable.WARM_ENI_TARGET: "warm_eni",
            Variable.WARM_IP_TARGET: "warm_ip",
            Variable.MINIMUM_IP_TARGET: "minimum_ip",
            Variable.WARM_PREFIX_TARGET: "warm_prefix",
        }
        return replace(self, **{fields[k]: v for k, v in values.items()})


def _env_int(env: Mapping[str, str], name: str, default: int) -> int:
    # ipamd falls back to its default on negative or unparsable values.
    try:
        value = int(env.get(name, "").strip())
    except ValueError:
        return default
    return value if value >= 0 else default


def targets_from_env(env: Mapping[str, str]) -> Targets:
    return Targets(
        warm_eni=_env_int(env, Variable.WARM_ENI_TARGET.value, 1),
        warm_ip=_env_int(env, Variable.WARM_IP_TARGET.value, 0),
        minimum_ip=_env_int(env, Variable.MINIMUM_IP_TARGET.value, 0),
        warm_prefix=_env_int(env, Variable.WARM_PREFIX_TARGET.value, 0),
    )


def prefix_delegation_enabled(env: Mapping[str, str]) -> bool:
    return env.get(ENV_PREFIX_DELEGATION, "").strip().lower() == "true"


def held_ips(limits: InstanceLimits, mode: IpMode, targets: Targets, pods: int) -> int:
    """IPs (free + assigned) a node with `pods` IP-consuming pods holds once ipamd has settled."""
    cap = limits.max_pod_ips(mode)
    pods = min(max(pods, 0), cap)
    if mode is IpMode.SECONDARY:
        if targets.ip_targets_set:
            total = max(pods + targets.warm_ip, targets.minimum_ip)
        else:
            # Whole ENIs: enough for the pods plus WARM_ENI_TARGET spare ones, at least the primary ENI.
            slots = limits.slots_per_eni
            enis = max(math.ceil(pods / slots) + targets.warm_eni, 1)
            total = min(enis, limits.max_enis) * slots
    else:
        if targets.ip_targets_set:
            prefixes = max(
                math.ceil((pods + targets.warm_ip) / IPS_PER_PREFIX),
                math.ceil(targets.minimum_ip / IPS_PER_PREFIX),
            )
        else:
            prefixes = max(math.ceil(pods / IPS_PER_PREFIX) + targets.warm_prefix, 1)
        total = prefixes * IPS_PER_PREFIX
    return min(total, cap)


def spare_ips(limits: InstanceLimits, mode: IpMode, targets: Targets, pods: int) -> int:
    """Held IPs no pod uses: what the warm pool takes from the subnet."""
    return max(held_ips(limits, mode, targets, pods) - min(max(pods, 0), limits.max_pod_ips(mode)), 0)
