"""Whether a change of the targets changes what the nodes hold.

In prefix mode ipamd holds whole /28 prefixes, so a new WARM_PREFIX_TARGET, WARM_IP_TARGET or MINIMUM_IP_TARGET
often leaves every node with the same prefixes (e.g. WARM_IP_TARGET 2 -> 4 on nodes with 3 pods: one prefix
either way). Such a change costs an aws-node rollout on every node and buys nothing. The answer comes from
ipamd's own pool arithmetic (`warmpool.ipamd.pool.steady_state`), node type by node type, at the pod counts
the nodes have and are expected to reach; nothing here restates it.

Secondary-IP mode holds single IPs, where a changed target nearly always changes what is held, and its timing
(cooling IPs, bursts) matters more than the steady state: the check only answers for prefix mode.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from warmpool.ipamd.env import max_eni_from_env, parse_env
from warmpool.ipamd.limits import InstanceLimits, IpMode
from warmpool.ipamd.pool import steady_state


def holds_same(
    mode: IpMode,
    before_env: Mapping[str, str],
    after_env: Mapping[str, str],
    limits: Mapping[str, InstanceLimits],
    pods_by_type: Mapping[str, Iterable[int]],
) -> bool:
    """True when, in prefix mode, every node type in `pods_by_type` settles on the same pool (ENIs, IPs and
    prefixes held) under `after_env` as under `before_env`, at each of its pod counts. False in secondary-IP
    mode, with no nodes, or for a type whose limits are unknown (the change is then judged by the other guards)."""
    before, after = parse_env(before_env), parse_env(after_env)
    if mode is not IpMode.PREFIX or not pods_by_type:
        return False
    if before == after:
        return True
    max_before, max_after = max_eni_from_env(before_env), max_eni_from_env(after_env)
    for instance_type, counts in pods_by_type.items():
        lim = limits.get(instance_type)
        if lim is None:
            return False
        runs = lim.runs_mode(mode)  # a non-Nitro type runs secondary-IP mode even here
        old_lim, new_lim = lim.with_max_eni(max_before), lim.with_max_eni(max_after)
        for pods in sorted(set(counts)):
            if steady_state(old_lim, runs, before, pods) != steady_state(new_lim, runs, after, pods):
                return False
    return True


def pods_by_type(nodes: Iterable[tuple[str, int]], expected: Mapping[str, int] | None = None) -> dict[str, set[int]]:
    """Pod counts per instance type from (instance type, pods) of each observed node, plus the count each type
    is expected to reach (e.g. the demand profile's peak over the coming cooldown), when known."""
    out: dict[str, set[int]] = {}
    for instance_type, pods in nodes:
        out.setdefault(instance_type, set()).add(max(pods, 0))
    for instance_type, pods in (expected or {}).items():
        if instance_type in out:
            out[instance_type].add(max(pods, 0))
    return out
