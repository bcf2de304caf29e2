"""Kubernetes credentials for both kopf and the kubernetes client, from one place (settings.kubeconfig or the
in-cluster ServiceAccount)."""

from __future__ import annotations

from typing import Any

import kopf
from kubernetes import client, config

from warmpool.settings import Settings


def load_configuration(settings: Settings) -> client.Configuration:
    configuration = client.Configuration()
    if settings.kubeconfig:
        config.load_kube_config(config_file=settings.kubeconfig, client_configuration=configuration)
    else:
        try:
            config.load_incluster_config(client_configuration=configuration)
        except config.ConfigException:
            config.load_kube_config(client_configuration=configuration)
    return configuration


def api_client(settings: Settings) -> client.ApiClient:
    return client.ApiClient(load_configuration(settings))


def connection_info(configuration: client.Configuration) -> kopf.ConnectionInfo:
    """kopf's view of the same credentials. Read afresh on each (re-)login, so rotated tokens are picked up."""
    token: Any = (configuration.api_key or {}).get("authorization") or (configuration.api_key or {}).get("BearerToken")
    scheme, _, value = str(token or "").partition(" ")
    return kopf.ConnectionInfo(
        server=configuration.host,
        ca_path=configuration.ssl_ca_cert,
        insecure=not configuration.verify_ssl,
        username=configuration.username or None,
        password=configuration.password or None,
        scheme=scheme or None if value else None,
        token=value or None,
        certificate_path=configuration.cert_file,
        private_key_path=configuration.key_file,
        default_namespace=None,
    )
