"""Figure (5): wall time of ``modelcatalog --help`` and ``modelcatalog model list``.

Each command is a fresh process, as a user runs it, timed from start to exit; the baseline is
the same interpreter starting and doing nothing (``python -c pass``). ``model list`` talks to
our server as a user who has one model, configured by ``MODELCATALOG_*`` variables and an
empty home directory (no config file). Bytecode is cached (in the work directory), as an
installed CLI has it, whatever the environment says (``PYTHONDONTWRITEBYTECODE`` would time
compiling our modules on every start); an untimed first run of each command fills the cache.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
import sys
import time

from modelcatalog import AsyncClient

from ._report import Comparison
from ._session import PASSWORD, Session

COMPARISONS = [
    Comparison("cli", "cli --help", "python -c pass", "ms", "lower", max_value=150),
    Comparison("cli", "cli model list", "python -c pass", "ms", "lower"),
]


async def run(bench: Session) -> None:
    server = bench.ours.server
    async with AsyncClient(server.address, ca_cert=server.ca_cert) as client:
        await client.sign_up("cli", PASSWORD)
        await client.sign_in("cli", PASSWORD)
        folder = await client.create_folder("cli")
        await client.create_model(folder.id, "one")
        token = client.token
    assert token is not None
    home = bench.work / "cli-home"
    home.mkdir()
    environment = {
        **{name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"},
        "PYTHONPYCACHEPREFIX": str(bench.work / "cli-bytecode"),
        "HOME": str(home),
        "MODELCATALOG_SERVER": server.address,
        "MODELCATALOG_CA_CERT": str(server.ca_cert),
        "MODELCATALOG_TOKEN": token,
    }
    command = shutil.which("modelcatalog")
    assert command, "the modelcatalog CLI is not installed in this environment"
    commands = {
        "python -c pass": [sys.executable, "-c", "pass"],
        "cli --help": [command, "--help"],
        "cli model list": [command, "model", "list"],
    }
    for argv in commands.values():
        await asyncio.to_thread(_wall_ms, argv, environment)
    for _ in range(bench.sizes.repetitions):
        for name, argv in commands.items():
            elapsed = await asyncio.to_thread(_wall_ms, argv, environment)
            bench.results.add(name, elapsed)


def _wall_ms(argv: list[str], environment: dict[str, str]) -> float:
    started = time.perf_counter()
    completed = subprocess.run(argv, env=environment, capture_output=True, check=False)
    elapsed = 1000 * (time.perf_counter() - started)
    assert completed.returncode == 0, completed.stderr.decode(errors="replace")
    return elapsed
