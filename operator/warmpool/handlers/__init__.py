"""kopf handler registration. Importing this package registers every handler; the modules stay thin and
delegate to the observe, planner and apply layers."""

from __future__ import annotations

from warmpool.settings import Settings

_settings: Settings | None = None


def configure(settings: Settings) -> None:
    global _settings
    _settings = settings


def current_settings() -> Settings:
    return _settings or Settings()


from warmpool.handlers import observe, policy, startup  # noqa: E402  (registration by import)

__all__ = ["configure", "current_settings", "observe", "policy", "startup"]
