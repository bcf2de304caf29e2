"""KWOK end-to-end tests. They take minutes (the operator's clock is real and some of its rules are fixed in
real seconds), so they run only when asked: `WARMPOOL_E2E=1 pytest tests/e2e -m e2e`."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from warmpool_dev.e2e.harness import KwokEnv

pytestmark = pytest.mark.e2e


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    if os.environ.get("WARMPOOL_E2E") == "1":
        return
    skip = pytest.mark.skip(reason="KWOK e2e runs take minutes: set WARMPOOL_E2E=1 to run them")
    for item in items:
        if "tests/e2e/" in str(item.fspath).replace(os.sep, "/"):
            item.add_marker(skip)


@pytest.fixture
def kwok_env() -> Iterator[KwokEnv]:
    with KwokEnv(rollout_delay=5.0) as env:
        yield env


@pytest.fixture
def kwok_env_with_ipamd() -> Iterator[KwokEnv]:
    """KWOK with the project's ipamd model behind a metrics endpoint per node, the operator scraping it."""
    with KwokEnv(rollout_delay=5.0, ipamd_models=True, scrape_interval=10.0) as env:
        yield env
