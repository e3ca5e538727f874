"""The CLI starts fast: help, version and usage errors load only Click and the CLI's modules.

Each check runs in a fresh interpreter and reads ``sys.modules`` after the command, so an eager
import of the SDK stack added anywhere on the way (``modelcatalog/__init__.py``, a CLI module)
fails here. Wall time is measured by the benchmarks, never asserted in tests.
"""

import json
import os
import socket
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from modelcatalog.cli._errors import ExitCode

SDK_STACK = (
    "grpclib",
    "h2",
    "hpack",
    "google.protobuf",
    "google.rpc",
    "betterproto",
    "modelcatalog._gen",
    "modelcatalog.v1",
    "modelcatalog._client",
    "modelcatalog._transport",
)
"""What the SDK loads: the gRPC stack, protobuf and the generated contract."""

COMMAND_MODULES = tuple(
    f"modelcatalog.cli.{module}"
    for module in (
        "_accounts",
        "_tokens",
        "_folders",
        "_models",
        "_versions",
        "_aliases",
        "_access",
        "_audit",
        "_shell",
        "_completion",
    )
)
"""The modules of the root's commands, each loaded only when one of its commands is used."""

LATE_EXTRAS = ("rich", "asyncio", "hashlib", "_hashlib")
"""Loaded only by commands that talk to a server, draw a table or hash a file."""

ROOT_LATE = ("pathlib",)
"""Loaded by the commands' modules and to read the config file, not by the root's help."""

_PROBE = """
import json, sys
from modelcatalog.cli import main
try:
    main(sys.argv[2:])
except SystemExit as exit:
    code = exit.code
with open(sys.argv[1], "w") as report:
    json.dump({"code": code, "modules": sorted(sys.modules)}, report)
"""
"""Runs the console script's ``main`` and writes its exit code and the loaded modules."""


@dataclass
class Run:
    """What a CLI run in a fresh interpreter ended with."""

    exit_code: int
    stdout: str
    modules: list[str]

    def loaded(self, packages: tuple[str, ...]) -> list[str]:
        """The loaded modules that are one of ``packages`` or inside one."""
        return [m for m in self.modules if any(m == p or m.startswith(f"{p}.") for p in packages)]


@pytest.fixture
def run_cli(tmp_path: Path) -> Callable[..., Run]:
    """A function running ``modelcatalog ARGS`` in a fresh interpreter with an empty config."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith("MODELCATALOG_")}
    environ["XDG_CONFIG_HOME"] = str(tmp_path / "config")
    report = tmp_path / "report.json"

    def run(*args: str) -> Run:
        done = subprocess.run(
            [sys.executable, "-c", _PROBE, str(report), *args],
            env=environ,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        outcome = json.loads(report.read_text())
        return Run(outcome["code"] or 0, done.stdout, outcome["modules"])

    return run


@pytest.mark.parametrize(
    ("args", "own_modules"),
    [
        ([], []),
        (["--help"], []),
        (["--version"], []),
        (["model", "list", "--help"], ["_models"]),
        (["version", "upload", "--help"], ["_versions"]),
        (["shell", "--help"], ["_completion", "_shell"]),
    ],
)
def test_help_and_version_load_no_sdk(
    run_cli: Callable[..., Run], args: list[str], own_modules: list[str]
) -> None:
    """Help (root alone, --help, commands) and --version print without loading the SDK, Rich,
    asyncio or hashlib, nor the modules of commands other than the one asked about."""
    run = run_cli(*args)
    assert run.exit_code == 0
    assert run.stdout.strip()
    assert run.loaded(SDK_STACK + LATE_EXTRAS) == []
    assert run.loaded(COMMAND_MODULES) == [f"modelcatalog.cli.{name}" for name in own_modules]
    if not own_modules:
        assert run.loaded(ROOT_LATE) == []


@pytest.mark.parametrize(
    "args",
    [["nope"], ["folder", "show"], ["model", "list", "--bogus"], ["version", "show", "resnet"]],
)
def test_usage_errors_load_no_sdk(run_cli: Callable[..., Run], args: list[str]) -> None:
    """A usage error exits 2 without loading the SDK, Rich, asyncio or hashlib."""
    run = run_cli(*args)
    assert run.exit_code == ExitCode.USAGE
    assert run.loaded(SDK_STACK + LATE_EXTRAS) == []


def test_unreachable_server_loads_no_rich(run_cli: Callable[..., Run]) -> None:
    """`model list` against a closed port exits 7 and never loads Rich (nothing to draw)."""
    with socket.socket() as bound_not_listening:
        bound_not_listening.bind(("127.0.0.1", 0))
        port = bound_not_listening.getsockname()[1]
        run = run_cli("--server", f"127.0.0.1:{port}", "--insecure", "model", "list")
    assert run.exit_code == ExitCode.CONNECTION
    assert run.loaded(("grpclib", "modelcatalog._client"))
    assert run.loaded(("rich",)) == []


def test_sdk_names_load_on_first_access() -> None:
    """`import modelcatalog` loads no SDK stack; importing `AsyncClient` from it then does."""
    probe = (
        "import json, sys, modelcatalog\n"
        "before = sorted(sys.modules)\n"
        "from modelcatalog import AsyncClient, NotFound, v1\n"
        "from modelcatalog._client import AsyncClient as Real\n"
        "print(json.dumps([before, AsyncClient is Real, v1.FolderRole.OWNER == 3,"
        " issubclass(NotFound, modelcatalog.ModelCatalogError)]))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, timeout=60, check=True
    )
    before, same_client, contract_loaded, same_base = json.loads(done.stdout)
    assert Run(0, "", before).loaded(SDK_STACK) == []
    assert same_client
    assert contract_loaded
    assert same_base
