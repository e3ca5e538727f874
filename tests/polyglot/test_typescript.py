"""The TypeScript client (clients/typescript): its generated code is current, and its node:test
suite runs the README scenarios against the real server process over TLS.

Node packages come from the lockfile (``scripts/install-node-deps``, which ``.ci/run`` calls);
a checkout without ``node_modules`` gets them here with ``npm ci``.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from ..server_process import RunningServer
from .conftest import CLIENTS, REPOSITORY, toolchain

CLIENT = CLIENTS / "typescript"
NODE_HINT = "Node.js 20 or newer: apt-get install nodejs npm"
INSTALL_TIMEOUT_SECONDS = 600
RUN_TIMEOUT_SECONDS = 300


def run(
    command: list[str],
    *,
    cwd: Path,
    env: dict[str, str] | None = None,
    timeout: float = RUN_TIMEOUT_SECONDS,
) -> str:
    """Runs ``command`` and returns its output; fails the test with that output otherwise."""
    result = subprocess.run(
        command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    output = result.stdout + result.stderr
    if result.returncode != 0:
        pytest.fail(f"{' '.join(command)} exited with {result.returncode}:\n{output}")
    return output


@pytest.fixture(scope="module")
def npm() -> str:
    """npm, with the client's packages installed from the lockfile and the client compiled."""
    toolchain("node", NODE_HINT)
    npm = toolchain("npm", NODE_HINT)
    if not (CLIENT / "node_modules").is_dir():
        run([npm, "ci", "--no-audit", "--no-fund"], cwd=CLIENT, timeout=INSTALL_TIMEOUT_SECONDS)
    run([npm, "run", "build"], cwd=CLIENT)
    return npm


def test_generated_typescript_is_current(npm: str) -> None:
    """The committed clients/typescript/src/gen is exactly what the protos generate now."""
    toolchain("buf", "the dev extra of python/client installs buf-bin")
    run([str(REPOSITORY / "scripts" / "check-generated-typescript")], cwd=REPOSITORY)


def test_typescript_client_runs_the_readme_scenarios(npm: str, server: RunningServer) -> None:
    """Every node:test scenario passes against the real server, trusting its self-signed CA."""
    env = {
        **os.environ,
        "MODELCATALOG_ADDRESS": server.address,
        "MODELCATALOG_CA_CERT": str(server.ca_cert),
        "NODE_EXTRA_CA_CERTS": str(server.ca_cert),
    }
    output = run([npm, "test"], cwd=CLIENT, env=env)
    assert "# fail 0" in output, output
    assert "# pass 0" not in output, output
