"""Backups: the database and the documents folder in one dated archive, and their restore.

An archive (`comptoir-backup-2026-12-03T214005Z.tar`) holds:

- `database.sqlite` (SQLite's online backup API: a consistent copy while the app writes) or
  `database.pgdump` (`pg_dump -Fc` in the snapshot the counts were read in);
- `documents/KEY` for every file of the local documents folder (LocalStorage). The folder is
  copied after the database, and a document's file is written before its row commits, so
  every document the copied database names has its file in the archive;
- `manifest.json`: version, created_at, database kind, Alembic revision, counts of orders,
  inbox events and documents, and the size and SHA-256 of every other member.

Documents on S3 are not copied: the bucket is versioned with Object Lock (compliance mode),
so an issued document can be neither replaced nor deleted before its retention ends. Job
outputs (exports, bundles) are not copied either: they are kept a day and can be asked again.

`restore` checks the whole archive first (no unknown or missing member, every hash right,
the same kind of database as the target) and writes nothing unless all of it holds; it
restores only onto an empty installation (no shop, order or document, an empty documents
folder), so a restore never mixes two installations' data.
"""

from __future__ import annotations

import datetime as dt
import glob
import hashlib
import json
import logging
import os
import shutil
import sqlite3
import subprocess
import tarfile
import tempfile
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import text
from sqlalchemy.engine import Connection, make_url
from sqlalchemy.exc import DBAPIError

from web.db import make_engine
from web.documents import storage as document_storage
from web.private_files import open_private, private_folder

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
DOCUMENTS = "documents/"
SQLITE_MEMBER = "database.sqlite"
POSTGRES_MEMBER = "database.pgdump"
PREFIX = "comptoir-backup-"
COUNTED = ("orders", "inbox_events", "documents")
CHUNK = 1024 * 1024


class BackupError(Exception):
    """A backup could not be made or restored; the message says why, for an operator."""


class BackupRefused(BackupError):
    """The archive or the target is not fit for a restore; nothing was written."""


@dataclass(frozen=True)
class Manifest:
    version: int
    created_at: str
    database: str
    revision: str
    counts: dict[str, int]
    members: dict[str, dict[str, Any]]

    def as_json(self) -> str:
        return json.dumps(self.__dict__, indent=2, sort_keys=True)


def database_kind(url: str) -> str:
    """ "sqlite" or "postgresql" (anything else is refused)."""
    backend = make_url(url).get_backend_name()
    if backend not in ("sqlite", "postgresql"):
        raise BackupError(f"backups support SQLite and PostgreSQL, not {backend}")
    return backend


def archive_name(now: dt.datetime) -> str:
    return f"{PREFIX}{now.astimezone(dt.UTC).strftime('%Y-%m-%dT%H%M%SZ')}.tar"


def postgres_tool(name: str) -> str:
    """pg_dump or pg_restore: on the PATH, else the newest /usr/lib/postgresql/*/bin."""
    found = shutil.which(name)
    if found:
        return found
    candidates = sorted(
        glob.glob(f"/usr/lib/postgresql/*/bin/{name}"),
        key=lambda path: int(Path(path).parts[-3]) if Path(path).parts[-3].isdigit() else 0,
    )
    if not candidates:
        raise BackupError(
            f"{name} was not found (PATH or /usr/lib/postgresql/*/bin): install the "
            "PostgreSQL client tools of the server's version (apt install postgresql-client)"
        )
    return candidates[-1]


def _libpq(url: str) -> tuple[str, dict[str, str]]:
    """The URL as libpq reads it, and the environment carrying its password (not in `ps`)."""
    sa_url = make_url(url)
    env = dict(os.environ)
    if sa_url.password:
        env["PGPASSWORD"] = str(sa_url.password)
    plain = sa_url.set(drivername="postgresql", password=None)
    return plain.render_as_string(hide_password=False), env


def _run(command: list[str], env: dict[str, str]) -> None:
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tool = Path(command[0]).name
        raise BackupError(f"{tool} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")


def _counts(connection: Connection) -> tuple[str, dict[str, int]]:
    revision = connection.scalar(text("SELECT version_num FROM alembic_version")) or ""
    counts = {
        table: int(connection.scalar(text(f"SELECT count(*) FROM {table}")) or 0)
        for table in COUNTED
    }
    return str(revision), counts


def _hash_file(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with path.open("rb") as source:
        while chunk := source.read(CHUNK):
            digest.update(chunk)
            size += len(chunk)
    return digest.hexdigest(), size


def _dump_sqlite(url: str, target: Path) -> tuple[str, dict[str, int]]:
    source_path = make_url(url).database or ""
    if not source_path or source_path == ":memory:" or not Path(source_path).exists():
        raise BackupError(f"no SQLite database file at {source_path!r}")
    source = sqlite3.connect(source_path, timeout=30)
    copy = sqlite3.connect(target)
    try:
        # One step (pages=-1): the copy is one read transaction, consistent while others write.
        source.backup(copy)
    finally:
        copy.close()
        source.close()
    engine = make_engine(f"sqlite:///{target}")
    try:
        with engine.connect() as connection:
            return _counts(connection)
    finally:
        engine.dispose()


def _dump_postgres(url: str, target: Path) -> tuple[str, dict[str, int]]:
    pg_dump = postgres_tool("pg_dump")
    libpq_url, env = _libpq(url)
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            # pg_dump reads in the snapshot the counts were read in: the manifest says what
            # the dump holds, to the row.
            connection.execute(text("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ"))
            snapshot = connection.scalar(text("SELECT pg_export_snapshot()"))
            revision, counts = _counts(connection)
            _run(
                [pg_dump, "-Fc", "--no-owner", f"--snapshot={snapshot}", "-f", str(target)]
                + ["-d", libpq_url],
                env,
            )
            connection.rollback()
    finally:
        engine.dispose()
    return revision, counts


def _document_files(root: Path | None) -> Iterator[tuple[str, Path]]:
    if root is None or not root.is_dir():
        return
    for path in sorted(root.rglob("*")):
        # Dot names are LocalStorage's half-written temporary files.
        if path.is_file() and not any(
            part.startswith(".") for part in path.relative_to(root).parts
        ):
            yield DOCUMENTS + path.relative_to(root).as_posix(), path


def create(
    database_url: str, documents_root: Path | None, to: Path, now: dt.datetime | None = None
) -> Path:
    """Write a backup archive into the folder `to`; return its path."""
    kind = database_kind(database_url)
    created = now or dt.datetime.now(dt.UTC)
    folder = private_folder(to)
    target = folder / archive_name(created)
    with tempfile.TemporaryDirectory(prefix="comptoir-backup-") as scratch:
        member = SQLITE_MEMBER if kind == "sqlite" else POSTGRES_MEMBER
        dump = Path(scratch) / member
        dump_database = _dump_sqlite if kind == "sqlite" else _dump_postgres
        revision, counts = dump_database(database_url, dump)
        files = [(member, dump), *_document_files(documents_root)]
        members: dict[str, dict[str, Any]] = {}
        for name, path in files:
            digest, size = _hash_file(path)
            members[name] = {"sha256": digest, "size": size}
        manifest = Manifest(
            FORMAT_VERSION,
            created.astimezone(dt.UTC).isoformat(timespec="seconds"),
            kind,
            revision,
            counts,
            members,
        )
        manifest_path = Path(scratch) / MANIFEST
        manifest_path.write_text(manifest.as_json(), encoding="utf-8")
        partial = folder / f".{target.name}.partial"
        with open_private(partial, "wb") as out, tarfile.open(fileobj=out, mode="w") as tar:
            tar.add(manifest_path, MANIFEST)
            for name, path in files:
                tar.add(path, name)
        # Whole or absent: a reader of the folder never finds half an archive under the name,
        # and link() never replaces an archive already there.
        try:
            os.link(partial, target)
        except FileExistsError:
            raise BackupError(f"{target} exists already: try again in a second") from None
        finally:
            partial.unlink(missing_ok=True)
    log.info("backup written to %s (%s)", target, counts)
    return target


def _safe_member(name: str) -> bool:
    parts = name.split("/")
    return bool(name) and not name.startswith("/") and all(p not in ("", ".", "..") for p in parts)


def read_verified(archive: Path, scratch: Path) -> Manifest:
    """Extract the archive into `scratch`, checking every member against the manifest."""
    try:
        tar = tarfile.open(archive, mode="r:")
    except (OSError, tarfile.TarError) as exc:
        raise BackupRefused(f"{archive} is not a readable backup archive: {exc}") from exc
    with tar:
        try:
            entry = tar.extractfile(MANIFEST)
            raw = json.loads(entry.read()) if entry is not None else None
            manifest = Manifest(**raw) if isinstance(raw, dict) else None
        except (KeyError, ValueError, TypeError) as exc:
            raise BackupRefused(f"{archive} has no readable manifest: {exc}") from exc
        if manifest is None or manifest.version != FORMAT_VERSION:
            raise BackupRefused(f"{archive}: unknown manifest version")
        seen: set[str] = set()
        for info in tar.getmembers():
            if info.name == MANIFEST:
                continue
            expected = manifest.members.get(info.name)
            if expected is None or not info.isfile() or not _safe_member(info.name):
                raise BackupRefused(f"{archive}: member {info.name!r} is not in the manifest")
            if info.name in seen:
                raise BackupRefused(f"{archive}: member {info.name!r} appears twice")
            seen.add(info.name)
            source = tar.extractfile(info)
            assert source is not None  # a regular file
            path = scratch / info.name
            path.parent.mkdir(parents=True, exist_ok=True)
            digest = hashlib.sha256()
            with path.open("wb") as out:
                while chunk := source.read(CHUNK):
                    digest.update(chunk)
                    out.write(chunk)
            if digest.hexdigest() != expected.get("sha256"):
                raise BackupRefused(f"{archive}: {info.name} does not match its SHA-256")
        missing = set(manifest.members) - seen
        if missing:
            raise BackupRefused(f"{archive}: members missing: {', '.join(sorted(missing))}")
    return manifest


def _occupied(database_url: str, documents_root: Path | None) -> str:
    """Why the target is not empty, or "" when a restore may write to it."""
    if documents_root is not None and any(True for _ in _document_files(documents_root)):
        return f"the documents folder {documents_root} has files"
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            for table in ("shops", "orders", "documents"):
                try:
                    if connection.scalar(text(f"SELECT 1 FROM {table} LIMIT 1")) is not None:
                        return f"the database has {table}"
                except DBAPIError:  # no such table: a database never migrated is empty
                    return ""
    finally:
        engine.dispose()
    return ""


def _restore_sqlite(dump: Path, database_url: str) -> None:
    target_path = make_url(database_url).database or ""
    private_folder(Path(target_path).parent)
    source = sqlite3.connect(dump)
    target = sqlite3.connect(target_path, timeout=30)
    try:
        source.backup(target)
    finally:
        target.close()
        source.close()


def _restore_postgres(dump: Path, database_url: str) -> None:
    pg_restore = postgres_tool("pg_restore")
    libpq_url, env = _libpq(database_url)
    command = [pg_restore, "--no-owner", "--no-privileges", "--clean", "--if-exists"]
    command += ["--single-transaction", "--exit-on-error", "-d", libpq_url, str(dump)]
    _run(command, env)


def restore(archive: Path, database_url: str, documents_root: Path | None) -> Manifest:
    """Restore the archive onto an empty installation; return its manifest."""
    kind = database_kind(database_url)
    with tempfile.TemporaryDirectory(prefix="comptoir-restore-") as scratch_name:
        scratch = Path(scratch_name)
        os.chmod(scratch, 0o700)
        manifest = read_verified(archive, scratch)
        if manifest.database != kind:
            raise BackupRefused(
                f"the archive holds a {manifest.database} database and the target is {kind}: "
                "a restore goes to the same kind of database (no conversion)"
            )
        documents = [name for name in manifest.members if name.startswith(DOCUMENTS)]
        if documents and documents_root is None:
            raise BackupRefused("the archive has documents and this installation stores them on S3")
        occupied = _occupied(database_url, documents_root)
        if occupied:
            raise BackupRefused(
                f"restore goes onto an empty installation only, and {occupied}: "
                "start from a new database and an empty documents folder"
            )
        member = SQLITE_MEMBER if kind == "sqlite" else POSTGRES_MEMBER
        (_restore_sqlite if kind == "sqlite" else _restore_postgres)(scratch / member, database_url)
        for name in documents:
            assert documents_root is not None
            # One folder at a time, each 0700, as LocalStorage makes them.
            folder = private_folder(documents_root)
            for part in name.removeprefix(DOCUMENTS).split("/")[:-1]:
                folder = private_folder(folder / part)
            with open_private(documents_root / name.removeprefix(DOCUMENTS), "wb") as out:
                out.write((scratch / name).read_bytes())
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            revision, counts = _counts(connection)
    finally:
        engine.dispose()
    if counts != manifest.counts or revision != manifest.revision:
        raise BackupError(f"restored {counts} at {revision}, the manifest says {manifest.counts}")
    log.info("backup %s restored (%s)", archive, counts)
    return manifest


def prune(folder: Path, keep: int) -> list[Path]:
    """Remove all but the `keep` newest archives of the folder; return those removed."""
    archives = sorted(folder.glob(f"{PREFIX}*.tar"))
    removed = archives[: max(0, len(archives) - max(1, keep))]
    for path in removed:
        path.unlink(missing_ok=True)
    return removed


@dataclass
class Schedule:
    """The embedded mode's daily backup (APP_BACKUP_DIR; off when empty), kept `keep` deep.

    The worker's tick asks `run_if_due()` every second or so; it looks at the folder at most
    once a minute and backs up when its newest archive is a day old or more.
    """

    database_url: str
    documents_root: Path | None
    folder: Path
    keep: int = 7
    every: dt.timedelta = dt.timedelta(days=1)
    _next_look: float = 0.0

    def due(self, now: dt.datetime) -> bool:
        archives = sorted(self.folder.glob(f"{PREFIX}*.tar")) if self.folder.is_dir() else []
        if not archives:
            return True
        newest = dt.datetime.fromtimestamp(archives[-1].stat().st_mtime, dt.UTC)
        return now - newest >= self.every

    def run_if_due(self) -> Path | None:
        if time.monotonic() < self._next_look:
            return None
        self._next_look = time.monotonic() + 60
        now = dt.datetime.now(dt.UTC)
        if not self.due(now):
            return None
        try:
            archive = create(self.database_url, self.documents_root, self.folder, now)
        except BackupError:
            log.exception("scheduled backup failed")
            return None
        prune(self.folder, self.keep)
        return archive


def documents_root() -> Path | None:
    """The local documents folder, or None when documents are on S3 (versioned, locked)."""
    configured = document_storage.configured_or_none()
    if isinstance(configured, document_storage.LocalStorage):
        return configured.root
    return None


def schedule_from(config: Mapping[str, Any]) -> Schedule | None:
    """The daily backup of the embedded mode, when APP_BACKUP_DIR names a folder."""
    folder = str(config.get("BACKUP_DIR") or "")
    if not folder:
        return None
    keep = int(config.get("BACKUP_KEEP") or 7)
    return Schedule(config["DATABASE_URL"], documents_root(), Path(folder), keep=keep)
