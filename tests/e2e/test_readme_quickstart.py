"""The README quickstart, taken from README.md itself and run as a newcomer pastes it: twice."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

from .conftest import RunningServer

README = Path(__file__).resolve().parents[2] / "README.md"
PASSWORD = "correct horse battery"


def quickstart_lines() -> list[str]:
    """The lines of the shell block a user pastes in the second terminal of the quickstart."""
    section = README.read_text(encoding="utf-8").split("## Quickstart", 1)[1]
    blocks = re.findall(r"```shell\n(.*?)```", section, flags=re.DOTALL)
    pasted = next(block for block in blocks if "modelcatalog signup" in block)
    return [line for line in pasted.splitlines() if line.strip()]


def as_script(lines: list[str]) -> str:
    """The pasted lines as one bash script: each password prompt answered from stdin, as a
    person typing it would, and the venv already on PATH (the test runs inside it)."""
    script = ["set -euo pipefail"]
    for line in lines:
        if line.startswith("source .venv/bin/activate"):
            continue
        if re.match(r"modelcatalog (signup|login) ", line):
            line += ' <<<"$QUICKSTART_PASSWORD"'
        script.append(line)
    return "\n".join(script)


def test_the_quickstart_runs_twice_in_a_row(server: RunningServer, tmp_path: Path) -> None:
    """Pasting the README quickstart twice in one directory succeeds both times, ending in
    `identical` each time."""
    assert shutil.which("modelcatalog"), "the modelcatalog command is not installed"
    (tmp_path / "modelcatalog-data").symlink_to(server.data_dir)
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith("MODELCATALOG_")},
        "HOME": str(tmp_path / "home"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        # The README's server listens on the default address; this one on a free port.
        "MODELCATALOG_SERVER": server.address,
        "QUICKSTART_PASSWORD": PASSWORD,
    }
    script = as_script(quickstart_lines())
    for attempt in (1, 2):
        run = subprocess.run(
            ["bash", "-c", script],
            cwd=tmp_path,
            env=environment,
            capture_output=True,
            text=True,
            timeout=300,
        )
        assert run.returncode == 0, f"run {attempt}:\n{run.stdout}\n{run.stderr}"
        assert run.stdout.strip().endswith("identical"), f"run {attempt}: {run.stdout}"
        assert "Traceback" not in run.stderr, run.stderr
        assert "Warning" not in run.stderr, run.stderr
