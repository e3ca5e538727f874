"""Test runs spread over pytest-xdist workers (as tox runs unit, e2e and e2e-scaleout): each
service starts once for all the workers, and a test marked ``alone`` overlaps no other test."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import services

TESTING = str(Path(services.__file__).parent)

SERVICE_SCRIPT = """
import pathlib, sys
command, env_file = sys.argv[1], pathlib.Path(sys.argv[2])
with open({log!r}, "a") as log:
    log.write(command + "\\n")
if command == "start":
    env_file.write_text("export FAKE_SERVICE_URL=fake://started\\n")
"""

SERVICE_CONFTEST = """
import sys
sys.path.insert(0, {testing!r})
from services import _Service, share_with_workers

FAKE = _Service([sys.executable, {script!r}], ("FAKE_SERVICE_URL",), lambda: True)


def pytest_configure(config):
    share_with_workers(config, FAKE)
"""

SERVICE_TESTS = """
import os
from conftest import FAKE
from services import running


def test_the_service_runs():
    with running(FAKE) as environment:
        assert environment == {{"FAKE_SERVICE_URL": "fake://started"}}
    with open({log!r}, "a") as log:
        log.write("used by " + os.environ["PYTEST_XDIST_WORKER"] + "\\n")
"""

ALONE_CONFTEST = """
import sys
sys.path.insert(0, {testing!r})
from alone import alone_when_marked
"""

#: A test of the inner suite: it logs its start and end around some work.
ALONE_TEST = """
import time
import pytest


{mark}
def test_{name}():
    with open({log!r}, "a") as log:
        log.write("begin {name}\\n")
    time.sleep(0.5)  # the work another test might overlap
    with open({log!r}, "a") as log:
        log.write("end {name}\\n")
"""


def run_distributed(suite: Path, *options: str) -> None:
    """Runs the suite in ``suite`` on two workers, outside this run's own pytest settings."""
    environment = {
        name: value for name, value in os.environ.items() if not name.startswith("PYTEST_")
    }
    run = subprocess.run(
        [sys.executable, "-m", "pytest", "-n", "2", "-p", "no:cacheprovider", *options],
        cwd=suite,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stdout + run.stderr


def test_two_workers_share_one_start_and_stop_of_a_service(tmp_path: Path) -> None:
    log = tmp_path / "service.log"
    script = tmp_path / "service.py"
    script.write_text(SERVICE_SCRIPT.format(log=str(log)))
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "conftest.py").write_text(SERVICE_CONFTEST.format(testing=TESTING, script=str(script)))
    (suite / "test_fake.py").write_text(textwrap.dedent(SERVICE_TESTS.format(log=str(log))))
    run_distributed(suite, "--dist", "each")
    lines = log.read_text().splitlines()
    assert sorted(lines) == ["start", "stop", "used by gw0", "used by gw1"]
    assert (lines[0], lines[-1]) == ("start", "stop")


def test_a_test_marked_alone_overlaps_no_other(tmp_path: Path) -> None:
    log = tmp_path / "tests.log"
    suite = tmp_path / "suite"
    suite.mkdir()
    (suite / "conftest.py").write_text(ALONE_CONFTEST.format(testing=TESTING))
    names = ["first", "second", "measured", "third", "fourth"]
    for name in names:
        mark = '@pytest.mark.alone("measures")' if name == "measured" else ""
        test = ALONE_TEST.format(mark=mark, name=name, log=str(log))
        (suite / f"test_{name}.py").write_text(test)
    run_distributed(suite, "--dist", "load")
    lines = log.read_text().splitlines()
    start = lines.index("begin measured")
    assert lines[start + 1] == "end measured", lines
    others = [line for line in lines if "measured" not in line]
    overlapping = any(
        others[index].startswith("begin") and others[index + 1].startswith("begin")
        for index in range(len(others) - 1)
    )
    assert overlapping, f"the other tests ran one at a time: nothing was spread ({lines})"
