"""Operator start-up: kopf settings and the shared context in `memo`."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any

import kopf

from warmpool.api import v1alpha1

if TYPE_CHECKING:
    from warmpool.aws import Ec2Client
    from warmpool.observe.cluster import ClusterView

ANNOTATION_PREFIX = v1alpha1.GROUP
log = logging.getLogger("warmpool.startup")


@kopf.on.startup()
async def configure_kopf(settings: kopf.OperatorSettings, memo: kopf.Memo, **_: Any) -> None:
    from warmpool.handlers import current_settings

    # Keep kopf's own bookkeeping under our prefix, in annotations (never in the status we own).
    settings.persistence.finalizer = f"{ANNOTATION_PREFIX}/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=ANNOTATION_PREFIX)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=ANNOTATION_PREFIX, key="last-handled-configuration"
    )
    # Events for warnings and errors only: every-minute INFO events would flood the policy.
    settings.posting.level = logging.WARNING
    # Reconnect watches regularly so a silently dead connection is noticed.
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    settings.watching.connect_timeout = 30
    settings.networking.request_timeout = 60

    import time

    from warmpool.aws import Ec2Client
    from warmpool.controller.context import OperatorContext
    from warmpool.kubeclient import api_client, load_configuration
    from warmpool.metrics import register_ec2_stats
    from warmpool.observe.cluster import ClusterView

    operator_settings = current_settings()
    ec2 = Ec2Client(operator_settings)
    register_ec2_stats(ec2.stats)
    # Pods and Nodes come through the operator's own watches, with the same credentials as everything else.
    cluster = ClusterView(lambda: asyncio.to_thread(load_configuration, operator_settings))
    cluster.start()
    memo.ec2_head_start = asyncio.create_task(ask_ec2_early(cluster, ec2), name="warmpool-ec2-head-start")
    scraper = None
    if operator_settings.ipamd_metrics != "off":
        from warmpool.measured.scrape import IpamdScraper

        scraper = IpamdScraper(operator_settings, lambda: asyncio.to_thread(load_configuration, operator_settings))
        scraper.start()
    memo.ctx = OperatorContext(
        settings=operator_settings,
        api=api_client(operator_settings),
        ec2=ec2,
        cluster=cluster,
        started_at=time.time(),
        scraper=scraper,
    )


async def ask_ec2_early(cluster: ClusterView, ec2: Ec2Client) -> None:
    """Nodes list in seconds, pods can take a minute: meanwhile, ask EC2 what the first plan will ask about these
    nodes (instance types, instance subnets, free IPs), so that plan is answered from the cache. A head start
    only: whatever fails here the plan asks again."""
    await cluster.node_watch.synced.wait()
    nodes = cluster.nodes.all()
    types = sorted({n.instance_type for n in nodes if n.instance_type})
    instances = sorted({n.instance_id for n in nodes if n.instance_id and not n.eni_config})
    try:
        if types:
            await asyncio.to_thread(ec2.instance_limits, types)
        if instances:
            found = await asyncio.to_thread(ec2.subnets_for_instances, instances)
            subnets = sorted(set(found.values()))
            if subnets:
                await asyncio.to_thread(ec2.subnets, subnets)
    except Exception as error:  # the first plan reports EC2's problems itself
        log.info("EC2 head start failed (the first plan asks again): %s", error)


@kopf.on.cleanup()
async def stop_watches(memo: kopf.Memo, **_: Any) -> None:
    head_start = getattr(memo, "ec2_head_start", None)
    if head_start is not None:
        head_start.cancel()
    ctx = getattr(memo, "ctx", None)
    if ctx is not None:
        await ctx.cluster.stop()
        if ctx.scraper is not None:
            await ctx.scraper.stop()


@kopf.on.login()
def login(**_: Any) -> kopf.ConnectionInfo:
    from warmpool.handlers import current_settings
    from warmpool.kubeclient import connection_info, load_configuration

    return connection_info(load_configuration(current_settings()))
