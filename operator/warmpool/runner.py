"""Starts kopf with warmpool's handlers, logging and endpoints."""

from __future__ import annotations

import logging
import secrets
import sys

from warmpool.settings import Settings


class _QuietTicks(logging.Filter):
    """Drops kopf's "Timer 'plan_policy' succeeded." on every tick: it says nothing the plan's own log line
    does not. Kept at DEBUG, where every detail is wanted."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (
            record.levelno == logging.INFO
            and str(record.msg).endswith(" succeeded.")
            and record.msg.startswith("Timer ")
        )


def configure_logging(settings: Settings) -> None:
    handler = logging.StreamHandler(sys.stderr)
    if settings.log_format == "json":
        from pythonjsonlogger.json import JsonFormatter

        handler.setFormatter(
            JsonFormatter("%(asctime)s %(levelname)s %(name)s %(message)s", rename_fields={"levelname": "level"})
        )
    else:
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)-7s %(name)s: %(message)s"))
    root = logging.getLogger()
    if settings.log_level != "DEBUG":
        handler.addFilter(_QuietTicks())
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level)
    # The kubernetes client logs every request body at DEBUG; keep it quiet unless asked for.
    logging.getLogger("kubernetes").setLevel(max(logging.INFO, root.level))


def run_operator(settings: Settings) -> None:
    """Blocks until the operator is stopped (SIGTERM/SIGINT)."""
    import kopf

    from warmpool import handlers
    from warmpool.metrics import start_metrics_server

    configure_logging(settings)
    handlers.configure(settings)
    if settings.metrics_port:
        start_metrics_server(settings.metrics_port)
    liveness = f"http://0.0.0.0:{settings.liveness_port}/healthz" if settings.liveness_port else None
    priority = settings.priority
    if settings.peering and priority is None:
        priority = secrets.randbelow(2**31 - 1) + 1
    kopf.run(
        clusterwide=True,
        standalone=settings.peering is None,
        peering_name=settings.peering,
        priority=priority,
        liveness_endpoint=liveness,
    )
