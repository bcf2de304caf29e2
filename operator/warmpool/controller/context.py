"""Long-lived operator state kept in kopf's memo: clients, the watched cluster, and each policy's step memory."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from warmpool.aws import Ec2Client
from warmpool.observe.cluster import ClusterView
from warmpool.settings import Settings
from warmpool.step import PolicyMemory


@dataclass
class OperatorContext:
    settings: Settings
    api: Any  # kubernetes.client.ApiClient
    ec2: Ec2Client
    cluster: ClusterView  # nodes and pods, from the operator's own watches
    started_at: float
    policies: dict[str, PolicyMemory] = field(default_factory=dict)  # policy uid -> what the step remembers
    scraper: Any = None  # warmpool.measured.scrape.IpamdScraper; None when reading ipamd's metrics is off
    eks: Any = None  # warmpool.aws.eks.EksAddonClient, made on first use (clusters on the add-on route only)
