"""Hypothesis profiles, loaded by tests/conftest.py before any test module is imported.

`ci` (the default): derandomized, so every run draws the same examples and CI never fails on a draw it has
not seen before; each test runs the examples it asks for. `dev`: random draws and at least 3,000 examples per
property, for hunting bugs locally: `HYPOTHESIS_PROFILE=dev .venv/bin/pytest tests/unit/...`.
"""

from __future__ import annotations

import os

from hypothesis import settings

# Every setting either profile relies on is spelled out: a profile inherits the settings that are the default
# when it is registered, and with the CI environment variable set hypothesis's own default is derandomized.
settings.register_profile("ci", derandomize=True, database=None, deadline=None, print_blob=True)
settings.register_profile("dev", derandomize=False, max_examples=3000, deadline=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


def examples(n: int) -> int:
    """A property's own number of examples, or the profile's when that is larger (the dev profile)."""
    return max(n, settings.default.max_examples)
