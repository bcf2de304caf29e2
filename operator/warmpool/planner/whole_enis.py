"""Stage "whole ENIs": when the #1872 cap (VPC CNI before v1.11.4, or of unknown version) keeps every
WARM_IP_TARGET below the demand, both IP targets 0 let WARM_ENI_TARGET size the pool: ipamd then keeps whole
ENIs spare, at least the cap's IPs on the smallest type and more on every larger one.

Never in prefix mode (all targets 0 there stops aws-node), never when the policy's bounds forbid 0 or its own
maximum is what binds, never when a MINIMUM_IP_TARGET someone else set would then freeze nodes, never when the
env after it would be unsafe or the subnets cannot afford it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from warmpool.api.v1alpha1 import Variable, WarmPoolPolicySpec
from warmpool.ipamd.env import IpamdTargets
from warmpool.ipamd.limits import InstanceLimits, IpMode
from warmpool.ipamd.safety import check_env, merge_env
from warmpool.ipamd.version import CniVersion
from warmpool.planner.caps import Caps
from warmpool.planner.clamps import Draft
from warmpool.planner.subnets import SubnetFit, fit_subnets
from warmpool.snapshot import ClusterSnapshot, SubnetInfo


def whole_enis_cover_more(
    spec: WarmPoolPolicySpec,
    mode: IpMode,
    managed: Sequence[Variable],
    current: IpamdTargets,
    need: int,
    caps: Caps,
) -> bool:
    """Whether to leave the pool to whole ENIs: secondary-IP mode, the warm need beyond the #1872 cap (not
    beyond a policy maximum: that limit is the policy's choice), both IP targets free to be 0, and a
    WARM_ENI_TARGET of at least 1 in effect to take over."""
    if mode is not IpMode.SECONDARY or not caps.one_eni_binds:
        return False
    if Variable.WARM_IP_TARGET not in managed or current.warm_eni < 1:
        return False
    if Variable.MINIMUM_IP_TARGET not in managed and current.minimum_ip > 0:
        return False
    for v in (Variable.WARM_IP_TARGET, Variable.MINIMUM_IP_TARGET):
        bounds = spec.bounds(v)
        if bounds is not None and v in managed and bounds.min > 0:
            return False
    warm_bounds = spec.bounds(Variable.WARM_IP_TARGET)
    policy_max = warm_bounds.max if warm_bounds is not None else None
    return need > caps.warm_ip and (policy_max is None or policy_max > caps.warm_ip)


def whole_eni_fallback(
    spec: WarmPoolPolicySpec,
    snapshot: ClusterSnapshot,
    limits: Mapping[str, InstanceLimits],
    subnets: Mapping[str, SubnetInfo],
    mode: IpMode,
    draft: Draft,
    current_env: Mapping[str, str],
    current: IpamdTargets,
    need: int,
    caps: Caps,
    cni_version: CniVersion | None,
) -> SubnetFit | None:
    """The draft with both IP targets 0, fitted to the subnets; None when whole ENIs are not the answer."""
    managed = list(draft.values)
    if not whole_enis_cover_more(spec, mode, managed, current, need, caps):
        return None
    values = {
        v: n
        for v, n in {**draft.values, Variable.WARM_IP_TARGET: 0, Variable.MINIMUM_IP_TARGET: 0}.items()
        if v in managed
    }
    spare = current.warm_eni * caps.eni_ips
    reasons = dict(draft.reasons)
    reasons[Variable.WARM_IP_TARGET] = (
        f"0 (not set): no WARM_IP_TARGET within the cap of {caps.warm_ip} ({caps.why(Variable.WARM_IP_TARGET)}) "
        f"covers the demand of {need}; with both IP targets 0 ipamd keeps WARM_ENI_TARGET={current.warm_eni} "
        f"whole ENIs spare, at least {spare} IPs on every node and more on larger types",
    )
    if Variable.MINIMUM_IP_TARGET in values:
        reasons[Variable.MINIMUM_IP_TARGET] = ("0 (not set): whole ENIs size the pool (see WARM_IP_TARGET)",)
    fit = fit_subnets(spec, snapshot, limits, subnets, mode, Draft(values, reasons, dict.fromkeys(values, 0)), current)
    if fit.pressure is not None:
        return None  # the subnets cannot afford whole ENIs
    # Whole ENIs hand the pool to WARM_ENI_TARGET as it stands on the DaemonSet: it must be a value ipamd reads
    # and the instances can hold, as if written now.
    relied_on = [*values, *([Variable.WARM_ENI_TARGET] if Variable.WARM_ENI_TARGET in current_env else [])]
    known = [limits[t] for t in sorted({n.instance_type for n in snapshot.nodes}) if t in limits]
    if not check_env(merge_env(current_env, values), known, cni_version, written=relied_on).safe:
        return None
    return fit
