"""Operator settings, from flags and `WARMPOOL_*` environment variables (pydantic-settings)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="WARMPOOL_", extra="ignore")

    # Kubernetes
    kubeconfig: str | None = Field(None, description="Path to a kubeconfig; in-cluster config when unset.")
    namespace: str = Field("kube-system", description="Namespace the operator runs in (Events, peering).")
    peering: str | None = Field(None, description="kopf peering name for hot standby; standalone when unset.")
    priority: int | None = Field(
        None,
        description="kopf peering priority; the highest live peer works, the others stand by. Random when unset "
        "and peering is on, because peers of equal priority would pause each other.",
    )
    field_manager: str = "warmpool"

    # AWS
    aws_region: str | None = Field(None, description="EC2 region; from the usual AWS settings when unset.")
    ec2_endpoint_url: str | None = Field(None, description="Override the EC2 endpoint (tests use moto).")
    ec2_cache_ttl_seconds: float = Field(300.0, gt=0, description="How long EC2 answers are reused.")
    ec2_max_attempts: int = Field(5, ge=1, le=20)

    # The EKS managed add-on: when it owns aws-node's env, values go through eks:UpdateAddon.
    eks_cluster_name: str | None = Field(None, description="EKS cluster name, for the add-on API.")
    eks_addon_name: str = Field("vpc-cni", description="The add-on that manages aws-node.")
    eks_addon_daemonset: str = Field(
        "kube-system/aws-node",
        description="namespace/name of the DaemonSet the add-on manages (only it goes through it).",
    )
    eks_endpoint_url: str | None = Field(None, description="Override the EKS endpoint (tests use a local one).")
    eks_update_wait_seconds: float = Field(
        20.0, ge=0, le=300, description="How long one pass follows an add-on update before leaving it to the next."
    )

    # ipamd's own metrics (port 61678 of each aws-node pod), read for status.measured: the pool as it is, beside
    # the operator's estimate. Off the planning path: a failed scrape never holds a plan.
    ipamd_metrics: Literal["proxy", "direct", "off"] = Field(
        "proxy",
        description="How to reach ipamd's metrics: `proxy` through the API server's pod proxy (RBAC get "
        "pods/proxy in the target namespace; the path AWS's cni-metrics-helper uses), `direct` to the pod's IP "
        "(aws-node is hostNetwork: the node's IP; needs the operator pod to reach the nodes on that port), "
        "or `off`.",
    )
    ipamd_metrics_port: int = Field(61678, ge=1, le=65535, description="ipamd's metrics port.")
    ipamd_scrape_interval_seconds: float = Field(
        60.0, ge=5, le=3600, description="At most one scrape round per interval."
    )
    ipamd_scrape_nodes_per_type: int = Field(
        10, ge=1, le=1000, description="Nodes sampled per instance type (the same ones each round)."
    )
    ipamd_scrape_concurrency: int = Field(8, ge=1, le=64, description="Scrapes in flight at once.")
    ipamd_scrape_timeout_seconds: float = Field(5.0, gt=0, le=60, description="Per-node scrape timeout.")

    # Process
    log_format: Literal["text", "json"] = "text"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    liveness_port: int = Field(8080, ge=0, le=65535, description="0 disables the liveness endpoint.")
    metrics_port: int = Field(9090, ge=0, le=65535, description="0 disables Prometheus metrics.")
    stale_after_seconds: float = Field(
        600.0, gt=0, description="Liveness fails when no policy was planned for this long."
    )
