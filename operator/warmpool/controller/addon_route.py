"""The apply edge's choice between a direct server-side apply and the EKS managed add-on, and the add-on's part of
a pass: follow the update an earlier pass started, hold while the add-on is updating (like a rollout in
progress), and write through eks:UpdateAddon. The values themselves are decided elsewhere; this only carries
them. Blocking boto3 calls run in a thread so the event loop never waits on EKS."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from warmpool.api.v1alpha1 import Variable, WarmPoolPolicySpec, summarize
from warmpool.apply.addon import ADDON_MANAGER, AddonResult, Route, addon_markers, choose_route, follow_update
from warmpool.apply.addon import update_through_addon as _update_through_addon
from warmpool.apply.daemonset import FIELD_MANAGER, DaemonSetView, view
from warmpool.aws.cluster_name import discover
from warmpool.aws.ec2 import Ec2Client
from warmpool.aws.eks import UPDATE_IN_PROGRESS, AddonUnavailable, EksAddonClient
from warmpool.observe.facts import NodeFacts

log = logging.getLogger("warmpool.addon")


@dataclass
class AddonPass:
    """The add-on's state for one pass. `hold` is set when no change may go out now (an update is running, or
    the add-on cannot be read); `status` is the policy's `addonUpdate` to report."""

    route: Route
    markers: list[str] = field(default_factory=list)
    hold: str | None = None
    problem: str | None = None
    status: dict[str, Any] | None = None
    events: list[tuple[str, str, str]] = field(default_factory=list)

    @property
    def writer(self) -> str:
        """The field manager the write goes through."""
        return ADDON_MANAGER if self.route is Route.EKS_ADDON else FIELD_MANAGER


def client(ctx: Any) -> EksAddonClient:
    """The operator's EKS client (`OperatorContext.eks`), made on first use."""
    if ctx.eks is None:
        ctx.eks = EksAddonClient(ctx.settings)
    eks: EksAddonClient = ctx.eks
    return eks


async def find_cluster_name(
    eks: EksAddonClient,
    ec2: Ec2Client,
    spec: WarmPoolPolicySpec,
    ds: Mapping[str, Any],
    nodes: list[NodeFacts],
) -> None:
    """When the settings leave the cluster name out and the add-on may be the route (it shows on the DaemonSet,
    or the policy asks for it), look for it: aws-node's env, node labels, the EC2 tags of nodes not asked about
    before. Found once, kept (a cluster's name never changes)."""
    if eks.cluster is not None:
        return
    wanted = spec.rollout.apply_via.value == Route.EKS_ADDON.value or addon_markers(ds, spec.target_ref.container)
    if not wanted:
        return
    env = view(ds, spec.target_ref.container).plain_env()
    pairs = [(dict(n.labels), n.instance_id) for n in nodes]
    found = await asyncio.to_thread(discover, env, pairs, ec2, eks.discovery_tried)
    if found.name:
        eks.discovered, eks.discovery = found.name, found.source
        log.info("EKS cluster name %r from %s", found.name, found.source)
    elif found.source and found.source != eks.discovery:
        eks.discovery = found.source
        log.warning("EKS cluster name unknown: %s", found.source)


async def prepare(
    eks: EksAddonClient,
    spec: WarmPoolPolicySpec,
    ds: Mapping[str, Any],
    ds_view: DaemonSetView,
    old_status: Mapping[str, Any],
) -> tuple[AddonPass, DaemonSetView]:
    """Choose the route; on the add-on route, follow the last update and read the add-on. Returns the target's
    view with an add-on update in progress shown as a rollout in progress, so the same guard holds it."""
    markers = addon_markers(ds, spec.target_ref.container)
    # The add-on manages one DaemonSet: a policy aimed at another never writes through it.
    target = f"{spec.target_ref.namespace}/{spec.target_ref.name}"
    addon_target = eks.daemonset == target
    state = AddonPass(
        choose_route(spec.rollout.apply_via.value, markers, eks.cluster is not None and addon_target), markers
    )
    if state.route is Route.DAEMONSET:
        return state, ds_view
    ds_view = dataclasses.replace(ds_view, writer=ADDON_MANAGER)  # the add-on's own entries are not foreign
    if not addon_target:
        state.problem = f"applyVia EksAddon: the {eks.addon_name} add-on manages {eks.daemonset}, not {target}"
        state.hold = state.problem
        return state, ds_view
    previous = old_status.get("addonUpdate")
    if isinstance(previous, Mapping):
        state.status = dict(previous)
        if previous.get("status") == UPDATE_IN_PROGRESS and previous.get("id"):
            status, detail = await asyncio.to_thread(follow_update, eks, str(previous["id"]))
            state.status["status"] = status
            if status == "Successful":
                state.status["message"] = "EKS applied it"
                state.events.append(
                    ("Normal", "AddonUpdated", f"EKS applied {previous.get('values')} ({previous['id']})")
                )
            elif status not in (UPDATE_IN_PROGRESS, "Unknown"):
                state.status["message"] = detail or status
                state.events.append(
                    ("Warning", "AddonUpdateFailed", f"eks:UpdateAddon {previous['id']} {status}: {detail}")
                )
    try:
        addon = await asyncio.to_thread(eks.describe_addon)
    except AddonUnavailable as error:
        state.problem = f"values go through the EKS add-on ({'; '.join(markers) or 'applyVia: EksAddon'}): {error}"
        state.hold = str(error)
        return state, ds_view
    if addon.updating:
        state.hold = f"EKS add-on {addon.name} update in progress"
        ds_view = dataclasses.replace(ds_view, rollout_in_progress=True, rollout_message=state.hold)
    return state, ds_view


async def write(
    eks: EksAddonClient,
    values: Mapping[Variable, int],
    release: Iterable[str],
    wait_seconds: float,
    started: str,
) -> tuple[AddonResult, dict[str, Any], list[tuple[str, str, str]]]:
    """eks:UpdateAddon with the values merged into the add-on's configuration; (result, addonUpdate status,
    Events)."""
    result = await asyncio.to_thread(_update_through_addon, eks, values, list(release), wait_seconds)
    summary = summarize(values)
    events: list[tuple[str, str, str]] = []
    status: dict[str, Any] = {}
    if result.sent:
        status = {
            "id": result.update_id,
            "status": result.status,
            "values": summary,
            "message": result.message,
            "startedTime": started,
        }
        if result.status == "Failed":
            events.append(("Warning", "AddonUpdateFailed", f"eks:UpdateAddon {summary}: {result.message}"))
        else:
            events.append(
                ("Normal", "Applied", f"set {summary} in the EKS add-on's configuration values: {result.message}")
            )
    else:
        events.append(("Warning", "AddonUpdateRefused", f"{summary} not sent to the EKS add-on: {result.message}"))
    return result, status, events
