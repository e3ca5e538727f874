"""The Python examples of README.md ("From Python") and python/client/README.md run as written,
in order, against the real server over TLS: only the address and the certificate path change."""

from __future__ import annotations

import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import RunningServer

ROOT = Path(__file__).resolve().parents[2]

DOCUMENTS = {
    "README.md": ("### From Python\n", "modelcatalog-data/tls/server.crt", 2),
    "python/client/README.md": ("## Using the SDK\n", "ca.pem", 5),
}
"""Each document: where its Python examples start, the certificate path they name, and how
many there are from there on."""


def python_examples(document: str, after: str) -> list[str]:
    """The ```python blocks of ``document`` that follow the heading ``after`` (up to the next
    heading of the same level)."""
    text = (ROOT / document).read_text()
    section = text[text.index(after) + len(after) :]
    level = after.split(" ", 1)[0]
    end = re.search(rf"^{level} ", section, flags=re.MULTILINE)
    return re.findall(r"```python\n(.*?)```", section[: end.start() if end else None], re.DOTALL)


@pytest.mark.parametrize("document", sorted(DOCUMENTS))
def test_python_examples_run_in_order(server: RunningServer, tmp_path: Path, document: str) -> None:
    """Each example exits 0, in the order a reader follows them, on one fresh server."""
    after, ca_cert, count = DOCUMENTS[document]
    examples = python_examples(document, after)
    assert len(examples) == count
    (tmp_path / "resnet50.onnx").write_bytes(random.Random(1).randbytes(3 * 1024 * 1024 + 17))
    for number, example in enumerate(examples, 1):
        code = example.replace('"127.0.0.1:50051"', repr(server.address)).replace(
            f'"{ca_cert}"', repr(str(server.ca_cert))
        )
        result = subprocess.run(
            [sys.executable, "-c", code],
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert result.returncode == 0, f"example {number}:\n{example}\n{result.stderr}"
    assert (tmp_path / "copy.onnx").read_bytes() == (tmp_path / "resnet50.onnx").read_bytes()
