"""The liveness probe fails when policies exist but planning has stalled."""

from __future__ import annotations

import time
from types import SimpleNamespace

import kopf
import pytest

from warmpool.handlers.policy import planning_is_alive
from warmpool.settings import Settings


def memo_with(last_plan: float | None, policies: bool = True) -> SimpleNamespace:
    state = SimpleNamespace(last_plan=last_plan)
    ctx = SimpleNamespace(
        settings=Settings(stale_after_seconds=600),
        started_at=time.time() - 3600,
        policies={"uid": state} if policies else {},
    )
    return SimpleNamespace(ctx=ctx)


async def test_fresh_planning_is_alive() -> None:
    result = await planning_is_alive(memo=memo_with(time.time() - 30))
    assert result["seconds_since_last_plan"] == pytest.approx(30, abs=5)


async def test_stalled_planning_fails_the_probe() -> None:
    with pytest.raises(kopf.PermanentError, match="no policy planned"):
        await planning_is_alive(memo=memo_with(time.time() - 3600))


async def test_no_policies_is_healthy() -> None:
    assert await planning_is_alive(memo=memo_with(None, policies=False)) == {}
