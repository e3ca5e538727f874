"""The Go client (clients/go) runs the README scenarios against the real server over TLS.

Go and its gRPC libraries come from Debian's packages (``scripts/install-go``); the module
builds offline from them through ``clients/go/vendor-debian``, with a build cache of its own.
"""

from __future__ import annotations

import os
import re
import subprocess

import pytest

from ..server_process import RunningServer
from .conftest import CLIENTS, REPOSITORY, toolchain

GO_CLIENT = CLIENTS / "go"
INSTALL_HINT = "scripts/install-go installs it with Debian's Go packages"
GO_TIMEOUT_SECONDS = 600
SCENARIOS = {
    "TestCreateModelWithoutFolderPermission",
    "TestCreateModelAfterGrantFolderPermission",
    "TestListOnlyAuthorizedModels",
    "TestUploadThenDownloadIsIdentical",
    "TestErrorInfoReasonIsDecoded",
    "TestRunUploadsAndDownloadsTheFile",
    "TestReadOnlyAccessToken",
}


def run(command: list[str], environment: dict[str, str] | None = None) -> str:
    """Runs ``command`` in clients/go and returns its output; fails the test with it otherwise."""
    result = subprocess.run(
        command,
        cwd=GO_CLIENT,
        env=environment,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=GO_TIMEOUT_SECONDS,
        check=False,
    )
    if result.returncode != 0:
        pytest.fail(f"{' '.join(command)} exited with {result.returncode}:\n{result.stdout}")
    return result.stdout


@pytest.fixture(scope="module")
def go_environment(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The environment of an offline Go build against the vendored Debian sources."""
    toolchain("go", INSTALL_HINT)
    run([str(GO_CLIENT / "vendor-debian")])
    scratch = tmp_path_factory.mktemp("go")
    return {
        **os.environ,
        "GOFLAGS": "-mod=vendor",
        "GOPROXY": "off",
        "GOCACHE": str(scratch / "cache"),
        "GOPATH": str(scratch / "path"),
    }


def test_go_client_runs_the_scenarios(
    server: RunningServer, go_environment: dict[str, str]
) -> None:
    """go vet is clean and every Go scenario test runs, none skipped, and passes."""
    run(["go", "vet", "./..."], go_environment)
    output = run(
        ["go", "test", "-count=1", "-v", "./..."],
        {
            **go_environment,
            "MODELCATALOG_ADDRESS": server.address,
            "MODELCATALOG_CA_CERT": str(server.ca_cert),
        },
    )
    assert "--- SKIP" not in output, output
    assert set(re.findall(r"^--- PASS: (\w+)", output, re.MULTILINE)) == SCENARIOS, output


def test_go_code_is_gofmt_formatted(go_environment: dict[str, str]) -> None:
    """gofmt would change no Go file of the client, generated or handwritten."""
    gofmt = toolchain("gofmt", INSTALL_HINT)
    assert run([gofmt, "-l", "catalog", "cmd", "gen"], go_environment) == ""


def test_generated_go_code_is_current() -> None:
    """The committed clients/go/gen equals what Buf generates from the protos now."""
    toolchain("buf", "pip install -e 'python/client[dev]' brings it")
    for plugin in ("protoc-gen-go", "protoc-gen-go-grpc"):
        toolchain(plugin, INSTALL_HINT)
    run([str(REPOSITORY / "scripts" / "check-generated-go")])
