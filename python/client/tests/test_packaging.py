"""What users of the built distribution get: a typed package, an SDK that needs no CLI stack,
and types that mypy sees in their code. Each check runs a tool in a subprocess, offline."""

import importlib.util
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest

CLIENT = Path(__file__).resolve().parents[1]
"""The folder of the client distribution (its pyproject.toml)."""


def _needs(module: str) -> None:
    """Skip unless ``module`` is installed: without it there is no offline way to check."""
    if importlib.util.find_spec(module) is None:
        pytest.skip(f"{module} is not installed (pip install -e 'python/client[dev]')")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The client's wheel, built from this tree by its backend, without network access."""
    _needs("hatchling")
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            *(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation"),
            *("--no-index", "--quiet", "--wheel-dir", str(out), str(CLIENT)),
        ],
        check=True,
        timeout=120,
    )
    (built,) = out.glob("modelcatalog-*.whl")
    return built


def test_wheel_is_typed(wheel: Path) -> None:
    """The wheel ships the py.typed marker, so type checkers read the SDK's annotations."""
    names = zipfile.ZipFile(wheel).namelist()
    assert "modelcatalog/py.typed" in names
    assert "modelcatalog/_sync_client.py" in names


BLOCK_CLI_STACK = """
import importlib.abc, sys

class NoCliStack(importlib.abc.MetaPathFinder):
    # As if only `pip install modelcatalog` had run: the [cli] extra's packages are missing.
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in {"click", "rich"}:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None

sys.meta_path.insert(0, NoCliStack())
"""


def test_sdk_needs_neither_click_nor_rich(tmp_path: Path) -> None:
    """Without the [cli] extra the SDK imports, and both clients can be made and closed."""
    script = BLOCK_CLI_STACK + textwrap.dedent(
        """
        import asyncio
        import modelcatalog
        from modelcatalog import AsyncClient, Client, StatusCode, v1

        with Client("127.0.0.1:50051", insecure=True, retries=0) as client:
            assert client.token is None

        async def main():
            async with AsyncClient("127.0.0.1:50051", insecure=True) as client:
                assert client.token is None

        asyncio.run(main())
        assert not {"click", "rich"} & {name.partition(".")[0] for name in sys.modules}
        print("ok")
        """
    )
    result = subprocess.run(
        [sys.executable, "-I", "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout == "ok\n"


def test_the_command_line_without_its_extra_says_how_to_install_it(tmp_path: Path) -> None:
    """Without the [cli] extra the `modelcatalog` entry point exits 1 with one line naming
    the extra, not a traceback."""
    script = BLOCK_CLI_STACK + "from modelcatalog.cli import main\nmain(['--help'])\n"
    result = subprocess.run(
        [sys.executable, "-I", "-c", script],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert result.stderr == (
        "error: the modelcatalog command line needs click, which comes with its [cli] extra;"
        " install it with: pip install 'modelcatalog[cli]'\n"
    )


USER_SCRIPT = """
import asyncio
from pathlib import Path

import modelcatalog
from modelcatalog import AsyncClient, Client


def with_the_sync_client(client: Client) -> None:
    model = client.get_model("m1", timeout=5.0)
    reveal_type(model)
    for version in client.list_model_versions(model.id):
        reveal_type(version)
    saved = client.download(model.id, 1, Path("."))
    reveal_type(saved.path)
    name: int = model.name


async def with_the_async_client(client: AsyncClient) -> None:
    async for folder in client.list_folders():
        reveal_type(folder)
    try:
        await client.upload("m1", "model.onnx", progress=lambda done, total: None)
    except modelcatalog.Unavailable as error:
        reveal_type(error.status)
"""


def test_mypy_sees_the_sdk_types(tmp_path: Path) -> None:
    """mypy --strict on a user's script reads the SDK's types, and reports misuse of them."""
    _needs("mypy")
    (tmp_path / "user.py").write_text(USER_SCRIPT)
    result = subprocess.run(
        [
            *(sys.executable, "-m", "mypy", "--strict", "--no-error-summary"),
            *("--cache-dir", str(tmp_path / ".mypy_cache"), "user.py"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    revealed = [
        line.partition("Revealed type is ")[2].strip('"')
        for line in result.stdout.splitlines()
        if "Revealed type is" in line
    ]
    assert revealed == [
        "modelcatalog._gen.modelcatalog.v1.Model",
        "modelcatalog._gen.modelcatalog.v1.ModelVersion",
        "pathlib.Path",
        "modelcatalog._gen.modelcatalog.v1.Folder",
        "modelcatalog._exceptions.StatusCode",
    ], result.stdout
    assert 'Incompatible types in assignment (expression has type "str"' in result.stdout
    assert result.stdout.count("error:") == 1, result.stdout
