"""The hypothesis profile CI runs: derandomized, no example database (a run depends on nothing but the code)."""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

from tests.hypothesis_profiles import examples


@pytest.mark.skipif(os.environ.get("HYPOTHESIS_PROFILE", "ci") != "ci", reason="another profile was asked for")
def test_ci_profile_is_loaded_by_default() -> None:
    assert settings.default.derandomize
    assert settings.default.database is None
    assert examples(300) == 300  # a property keeps its own count


def test_dev_profile_draws_at_random_and_more() -> None:
    dev = settings.get_profile("dev")
    assert not dev.derandomize
    assert dev.max_examples >= 3000
