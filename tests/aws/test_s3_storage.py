"""The S3 document storage against a moto server: written once, locked, read by presigned URL."""

from __future__ import annotations

import base64
import datetime as dt
import hashlib

import httpx
import pytest
from botocore.exceptions import ClientError

from tests.aws.conftest import Stack
from tests.conftest import _free_port
from web import aws
from web.documents.storage import (
    InvalidKey,
    KeyChanged,
    KeyExists,
    KeyMissing,
    S3Storage,
    StorageError,
    sha256,
)

KEY = "delivery_note/2026/BL-2026-000001-0123456789abcdef.pdf"
FIRST = b"%PDF-1.7 the note as issued"


@pytest.fixture()
def storage(aws_stack: Stack) -> S3Storage:
    return S3Storage(aws_stack.settings)


def test_a_key_is_written_once_and_the_first_bytes_kept(
    storage: S3Storage, aws_stack: Stack
) -> None:
    assert not storage.exists(KEY)
    storage.put(KEY, FIRST)

    with pytest.raises(KeyExists):
        storage.put(KEY, b"%PDF-1.7 a forged note")

    assert storage.get(KEY) == FIRST
    assert storage.exists(KEY)
    versions = aws_stack.s3().list_object_versions(Bucket=storage.bucket, Prefix=KEY)
    assert len(versions["Versions"]) == 1  # the refused write left no version behind


def test_the_object_is_locked_in_compliance_mode_for_the_retention_years(
    storage: S3Storage, aws_stack: Stack
) -> None:
    storage.put(KEY, FIRST)
    head = aws_stack.s3().head_object(Bucket=storage.bucket, Key=KEY)

    assert head["ObjectLockMode"] == "COMPLIANCE"
    years = aws_stack.settings.retention_years
    ahead = head["ObjectLockRetainUntilDate"] - dt.datetime.now(dt.UTC)
    assert dt.timedelta(days=365 * years) <= ahead <= dt.timedelta(days=366 * years + 1)
    assert head["ContentType"] == "application/pdf"


def test_deleting_the_stored_version_is_refused(storage: S3Storage, aws_stack: Stack) -> None:
    storage.put(KEY, FIRST)
    s3 = aws_stack.s3()
    version = s3.head_object(Bucket=storage.bucket, Key=KEY)["VersionId"]

    with pytest.raises(ClientError) as refused:
        s3.delete_object(Bucket=storage.bucket, Key=KEY, VersionId=version)

    assert refused.value.response["Error"]["Code"] == "AccessDenied"
    assert storage.get(KEY) == FIRST


def test_the_sha256_is_kept_with_the_object(storage: S3Storage, aws_stack: Stack) -> None:
    storage.put(KEY, FIRST)
    head = aws_stack.s3().head_object(Bucket=storage.bucket, Key=KEY, ChecksumMode="ENABLED")
    assert base64.b64decode(head["ChecksumSHA256"]) == hashlib.sha256(FIRST).digest()


def test_a_presigned_url_reads_the_checked_version_for_url_seconds(
    storage: S3Storage, aws_stack: Stack
) -> None:
    storage.put(KEY, FIRST)

    url = storage.read_url(KEY, "BL-2026-000001.pdf", sha256=sha256(FIRST))

    assert url is not None and url.startswith(f"{aws_stack.settings.endpoint_url}/")
    assert f"X-Amz-Expires={aws_stack.settings.url_seconds}" in url
    answer = httpx.get(url)
    assert answer.status_code == 200 and answer.content == FIRST
    assert answer.headers["Content-Disposition"] == 'attachment; filename="BL-2026-000001.pdf"'
    assert answer.headers["Content-Type"] == "application/pdf"
    assert answer.headers["Cache-Control"] == "private, no-store"
    # Someone with write access bypasses the conditional put: a new version on top. The URL
    # given reads the version that was checked; a new URL is refused, the hash differs.
    forged = b"%PDF-1.7 forged"
    aws_stack.s3().put_object(
        Bucket=storage.bucket, Key=KEY, Body=forged, ChecksumAlgorithm="SHA256"
    )
    assert httpx.get(url).content == FIRST
    with pytest.raises(KeyChanged):
        storage.read_url(KEY, "BL-2026-000001.pdf", sha256=sha256(FIRST))
    # Written without a SHA-256, S3 cannot vouch for it: no URL, the caller checks the bytes.
    aws_stack.s3().put_object(Bucket=storage.bucket, Key=KEY, Body=forged)
    assert storage.read_url(KEY, "BL-2026-000001.pdf", sha256=sha256(FIRST)) is None
    assert storage.get(KEY) == forged
    # The URL's signature covers what it reads: another key is refused.
    assert httpx.get(url.replace("000001", "000002")).status_code == 403


def test_a_url_for_shown_documents_and_names_made_plain(storage: S3Storage) -> None:
    storage.put(KEY, FIRST)
    url = storage.read_url(KEY, 'a"b\r\nc é.pdf', sha256=sha256(FIRST), inline=True)
    assert url is not None
    answer = httpx.get(url)
    assert answer.headers["Content-Disposition"] == 'inline; filename="a_b__c__.pdf"'


def test_missing_keys(storage: S3Storage) -> None:
    with pytest.raises(KeyMissing):
        storage.get(KEY)
    with pytest.raises(KeyMissing):
        storage.read_url(KEY, "x.pdf", sha256=sha256(FIRST))
    assert not storage.exists(KEY)


@pytest.mark.parametrize("key", ["../x", "a/../../b.pdf", "/etc/passwd", ".hidden"])
def test_keys_are_plain_names(storage: S3Storage, key: str) -> None:
    with pytest.raises(InvalidKey):
        storage.put(key, b"x")
    with pytest.raises(InvalidKey):
        storage.get(key)
    with pytest.raises(InvalidKey):
        storage.read_url(key, "x.pdf")


def test_what_s3_refuses_or_cannot_answer_is_a_storage_error(
    storage: S3Storage, aws_stack: Stack
) -> None:
    settings = aws_stack.settings
    no_bucket = S3Storage(aws.AwsSettings(endpoint_url=settings.endpoint_url, bucket="no-such"))
    with pytest.raises(StorageError, match="NoSuchBucket"):
        no_bucket.get(KEY)
    with pytest.raises(StorageError, match="NoSuchBucket"):
        no_bucket.put(KEY, FIRST)
    nobody = S3Storage(aws.AwsSettings(endpoint_url=f"http://127.0.0.1:{_free_port()}"))
    with pytest.raises(StorageError, match="could not be"):
        nobody.get(KEY)
    with pytest.raises(StorageError, match="could not be"):
        nobody.read_url(KEY, "x.pdf", sha256=sha256(FIRST))
