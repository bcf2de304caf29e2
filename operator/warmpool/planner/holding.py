"""Whether a change of the targets changes what the nodes hold.

In prefix mode ipamd holds whole /28 prefixes, so a new WARM_PREFIX_TARGET, WARM_IP_TARGET or MINIMUM_IP_TARGET
often leaves every node with the same prefixes (e.g. WARM_IP_TARGET 2 -> 4 on nodes with 3 pods: one prefix
either way). Such a change costs an aws-node rollout on every node and buys nothing. The answer comes from
ipamd's own pool arithmetic (`warmpool.ipamd.pool.steady_state`), node type by node type, at every pod count
the nodes will pass through before the next change (from what they run now, through a burst, up to the peak
expected); nothing here restates it. Only at the pods they run now would be too narrow: at night, WARM_IP_TARGET
6 and 10 hold one /28 on a node of 3 pods, yet the morning ramp fills the node faster than ipamd refills it.

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


def pods_by_type(
    nodes: Iterable[tuple[str, int]], reach: int = 0, peaks: Mapping[str, int] | None = None
) -> dict[str, set[int]]:
    """The pod counts each instance type's nodes will pass through before the next change: from each observed
    node's pods (instance type, pods) up to `reach` more (the pod starts ipamd must absorb before it refills,
    e.g. the covered demand: a WARM_IP_TARGET that holds the same /28s at 3 pods may not at 3 + a burst), and
    from the type's fewest observed pods up to its expected peak (e.g. the demand profile's most IPs held over
    the coming cooldown), when known."""
    out: dict[str, set[int]] = {}
    for instance_type, pods in nodes:
        low = max(pods, 0)
        out.setdefault(instance_type, set()).update(range(low, low + max(reach, 0) + 1))
    for instance_type, peak in (peaks or {}).items():
        if instance_type in out:
            out[instance_type].update(range(min(out[instance_type]), max(peak, 0) + 1))
    return out
