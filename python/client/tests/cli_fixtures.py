"""The CLI tests' fixtures, a pytest plugin: ``pytest_plugins = ["cli_fixtures"]``.

They live apart from ``cli_testing`` because test modules import that one directly, and
pytest cannot rewrite the asserts of a plugin imported before it is loaded as one.
"""

from pathlib import Path

import pytest
from cli_testing import CliHarness


@pytest.fixture
def new_harness(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> CliHarness:
    """The CLI against empty fakes, with its own config folder and nobody logged in."""
    return CliHarness(monkeypatch, tmp_path)


@pytest.fixture
def harness(new_harness: CliHarness) -> CliHarness:
    """The CLI against the fakes, logged in as alice."""
    assert new_harness.login().exit_code == 0
    return new_harness
