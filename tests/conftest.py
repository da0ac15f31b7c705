"""Shared test configuration: pytester drives the gradcheck pytest plugin in tests/test_plugin.py."""

pytest_plugins = ["pytester"]
