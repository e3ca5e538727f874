"""An embedded server starts without importing an S3 client: aiobotocore, botocore and aiohttp
took 0.43 s of the 1.8 s every start spent importing (``python -X importtime``).

Checked in a fresh interpreter that imports what the server process imports and opens a local
blob store, so an eager import added anywhere on that way fails here.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

S3_CLIENT_STACK = ("aiobotocore", "botocore", "aiohttp", "modelcatalog_server.storage.s3")

_PROBE = """
import asyncio, json, sys
from modelcatalog_server import __main__
from modelcatalog_server.app import open_blob_store
from modelcatalog_server.storage.locations import blob_location

asyncio.run(open_blob_store(blob_location(sys.argv[1]), max_blob_bytes=1 << 20))
print(json.dumps(sorted(sys.modules)))
"""


def test_an_embedded_server_loads_no_s3_client(tmp_path: Path) -> None:
    """Opening blobs in a local directory leaves the S3 client stack unloaded."""
    done = subprocess.run(
        [sys.executable, "-c", _PROBE, str(tmp_path / "blobs")],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    modules = json.loads(done.stdout)
    assert "modelcatalog_server.app" in modules
    loaded = [m for m in modules if any(m == p or m.startswith(f"{p}.") for p in S3_CLIENT_STACK)]
    assert loaded == []
