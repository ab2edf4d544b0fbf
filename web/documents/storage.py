"""Where issued documents' files live: write-once storage behind one small interface.

An issued document never changes, so a key is written once and never replaced: a second
`put` of the same key is refused. The local folder backend keeps the files under the
instance folder, readable by Comptoir's user only; the S3 backend (AWS) writes each key once
with a conditional put, locks it (Object Lock, compliance mode, 10 years by default) and lets
browsers read it through short-lived presigned URLs.

`configure()` sets the storage the services use (create_app calls it, like crypto's key).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import os
import re
import secrets
from pathlib import Path
from typing import Any, Protocol

from web import aws
from web.private_files import open_private, private_folder

KEY_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*(/[A-Za-z0-9][A-Za-z0-9._-]*)*")
MAX_KEY_LENGTH = 500


class StorageError(Exception):
    """Root of the storage errors."""


class KeyExists(StorageError):
    """The key was written already: stored documents are never replaced."""


class KeyMissing(StorageError):
    """Nothing is stored under the key."""


class InvalidKey(StorageError):
    """The key is not a relative path of plain names."""


class DocumentStorage(Protocol):
    """Write-once storage of documents' bytes, by key ("delivery_note/2026/BL-….pdf")."""

    def put(self, key: str, data: bytes) -> None:
        """Store the bytes under a new key; raise KeyExists if the key is taken."""
        ...

    def get(self, key: str) -> bytes:
        """The bytes stored under the key; raise KeyMissing if there are none."""
        ...

    def exists(self, key: str) -> bool: ...

    def read_url(self, key: str, filename: str) -> str | None:
        """A short-lived URL a browser may read the file from, or None: serve the bytes."""
        ...


def sha256(data: bytes) -> str:
    """The hex SHA-256 kept in the document row, to check the stored bytes later."""
    return hashlib.sha256(data).hexdigest()


def check_key(key: str) -> str:
    """The key, if it is a relative path of plain names (no "..", no leading "/")."""
    if len(key) > MAX_KEY_LENGTH or not KEY_PATTERN.fullmatch(key) or ".." in key:
        raise InvalidKey(f"not a storage key: {key!r}")
    return key


class LocalStorage:
    """Files under a folder of ours: folders 0700, files 0600, each written once."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def _path(self, key: str) -> Path:
        return self.root / check_key(key)

    def put(self, key: str, data: bytes) -> None:
        target = self._path(key)
        # One at a time: mkdir(parents=True) would give the folders between the default mode.
        folder = private_folder(self.root)
        for name in key.split("/")[:-1]:
            folder = private_folder(folder / name)
        # Written whole to a temporary name, then linked to the key: a reader never sees
        # half a file, and link() refuses a name that exists, so two writers cannot both
        # win and nobody replaces a stored document.
        temporary = folder / f".{target.name}.{secrets.token_hex(8)}.tmp"
        try:
            with open_private(temporary, "wb") as out:
                out.write(data)
                out.flush()
                os.fsync(out.fileno())
            try:
                os.link(temporary, target)
            except FileExistsError:
                raise KeyExists(f"already stored: {key}") from None
        finally:
            temporary.unlink(missing_ok=True)

    def get(self, key: str) -> bytes:
        try:
            return self._path(key).read_bytes()
        except FileNotFoundError:
            raise KeyMissing(f"nothing stored under {key}") from None

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def read_url(self, key: str, filename: str) -> str | None:
        return None  # only Comptoir reads this folder: the view serves the bytes


def _content_type(key: str) -> str:
    return "application/pdf" if key.endswith(".pdf") else "application/octet-stream"


class S3Storage:
    """Objects in an S3 bucket with versioning and Object Lock (infra/cloudformation.json).

    `put` is a conditional write (If-None-Match: *): S3 itself refuses a second write of a
    key, whoever makes it. Each object carries its SHA-256 (S3 checks it on receipt) and a
    compliance-mode retention: not even the account's root can delete or replace it before
    `retention_years` have passed.
    """

    def __init__(self, settings: aws.AwsSettings) -> None:
        self.settings = settings
        self.bucket = settings.bucket

    @property
    def _s3(self) -> Any:
        return aws.client("s3", self.settings)

    def put(self, key: str, data: bytes) -> None:
        from botocore.exceptions import ClientError

        retain_until = dt.datetime.now(dt.UTC).replace(microsecond=0) + dt.timedelta(
            days=366 * self.settings.retention_years
        )
        try:
            self._s3.put_object(
                Bucket=self.bucket,
                Key=check_key(key),
                Body=data,
                IfNoneMatch="*",
                # Object Lock puts need Content-MD5 or x-amz-sdk-checksum-algorithm: the
                # algorithm named sends the latter (S3 and moto refuse the put without it).
                ChecksumAlgorithm="SHA256",
                ChecksumSHA256=base64.b64encode(hashlib.sha256(data).digest()).decode(),
                ObjectLockMode="COMPLIANCE",
                ObjectLockRetainUntilDate=retain_until,
                ContentType="application/pdf"
                if key.endswith(".pdf")
                else "application/octet-stream",
            )
        except ClientError as exc:
            code = exc.response.get("Error", {}).get("Code", "")
            if code in ("PreconditionFailed", "ConditionalRequestConflict"):
                raise KeyExists(f"already stored: {key}") from None
            raise StorageError(f"S3 refused {key}: {code or exc}") from exc

    def get(self, key: str) -> bytes:
        from botocore.exceptions import ClientError

        try:
            answer = self._s3.get_object(Bucket=self.bucket, Key=check_key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code", "") in ("NoSuchKey", "404"):
                raise KeyMissing(f"nothing stored under {key}") from None
            raise StorageError(f"S3 refused to read {key}: {exc}") from exc
        return bytes(answer["Body"].read())

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        try:
            self._s3.head_object(Bucket=self.bucket, Key=check_key(key))
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code", "") in ("NoSuchKey", "404", "NotFound"):
                return False
            raise StorageError(f"S3 refused to look up {key}: {exc}") from exc
        return True

    def read_url(self, key: str, filename: str) -> str | None:
        safe_name = re.sub(r"[^A-Za-z0-9._-]", "_", filename) or "document.pdf"
        return str(
            self._s3.generate_presigned_url(
                "get_object",
                Params={
                    "Bucket": self.bucket,
                    "Key": check_key(key),
                    "ResponseContentDisposition": f'attachment; filename="{safe_name}"',
                },
                ExpiresIn=self.settings.url_seconds,
            )
        )


_configured: DocumentStorage | None = None


def configure(storage: DocumentStorage) -> None:
    """Set the storage that services use when they are given none."""
    global _configured
    _configured = storage


def configured() -> DocumentStorage:
    """The storage set by configure()."""
    if _configured is None:
        raise StorageError("no document storage configured (create_app configures one)")
    return _configured
