"""Shared test configuration: every test is time-bounded (pytest-timeout,
set in pyproject.toml) and warnings are errors."""

pytest_plugins = ["tuple_paths"]
