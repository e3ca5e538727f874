"""REAL SERVICE: the S3 blob store's behaviour tests (test_s3_blob_store.BEHAVIOUR_TESTS) again,
against the S3 service that MODELCATALOG_TEST_BLOB_URL and the AWS_* settings name — a
SeaweedFS from ``scripts/seaweedfs start FILE`` once FILE is sourced. Skipped, saying why,
when MODELCATALOG_TEST_BLOB_URL is not set. Each test works under its own key prefix.
"""

from __future__ import annotations

import os
import uuid

import pytest
import test_s3_blob_store as moto_tests

s3_store = moto_tests.s3_store

pytestmark = pytest.mark.skipif(
    not os.environ.get("MODELCATALOG_TEST_BLOB_URL"),
    reason="no real S3 service: MODELCATALOG_TEST_BLOB_URL is not set "
    "(run `scripts/seaweedfs start FILE` and `source FILE` first)",
)

for _test in moto_tests.BEHAVIOUR_TESTS:
    globals()[_test.__name__] = _test


@pytest.fixture
def s3_url() -> str:
    """A fresh prefix below the one MODELCATALOG_TEST_BLOB_URL names."""
    return f"{os.environ['MODELCATALOG_TEST_BLOB_URL'].rstrip('/')}/tests/{uuid.uuid4().hex}"
