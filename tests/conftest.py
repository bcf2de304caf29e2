"""Fixture plugins shared by every test directory; hypothesis profiles (see tests/hypothesis_profiles.py)."""

import tests.hypothesis_profiles  # noqa: F401  (registers and loads the profile before tests are collected)

pytest_plugins = ["tests.fixtures.moto"]
