"""Fixture plugins shared by every test directory."""

pytest_plugins = ["tests.fixtures.moto"]
