"""`flask backup create|restore` and the embedded mode's daily backup with its retention."""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import sessionmaker

from tests.conftest import migrate, reset_schema, separate_database_url
from tests.factories import make_order, make_shop
from web.app import create_app
from web.db import make_engine
from web.models import Order
from web.services import backup


def installation(tmp_path: Path, name: str, overrides: dict[str, Any]) -> dict[str, Any]:
    """Settings of an app on a migrated database of its own (not the test's rolled-back one)."""
    url = separate_database_url(tmp_path, name)
    engine = make_engine(url)
    reset_schema(engine)
    engine.dispose()
    migrate(url)
    return {**overrides, "DATABASE_URL": url, "INSTANCE_PATH": str(tmp_path / name)}


def test_the_cli_backs_up_and_restores_onto_an_empty_installation(
    tmp_path: Path, app_overrides: dict[str, Any]
) -> None:
    first = create_app(installation(tmp_path, "first", app_overrides))
    with first.extensions["comptoir.sessions"].begin() as session:
        make_order(session, make_shop(session, "boutique"))
    (Path(first.instance_path) / "documents" / "invoice").mkdir(parents=True)
    (Path(first.instance_path) / "documents" / "invoice" / "FA-1.pdf").write_bytes(b"%PDF-1")

    created = first.test_cli_runner().invoke(args=["backup", "create", "--to", str(tmp_path)])
    assert created.exit_code == 0, created.output
    archive = Path(created.output.strip())
    assert archive.parent == tmp_path and archive.name.startswith("comptoir-backup-")
    assert oct(archive.stat().st_mode & 0o777) == "0o600"
    with tarfile.open(archive) as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
    assert manifest["counts"] == {"orders": 1, "inbox_events": 0, "documents": 0}
    assert manifest["revision"] and manifest["database"] in ("sqlite", "postgresql")
    assert set(manifest["members"]) == {
        "database.sqlite" if manifest["database"] == "sqlite" else "database.pgdump",
        "documents/invoice/FA-1.pdf",
    }

    second = create_app(installation(tmp_path, "second", app_overrides))
    restored = second.test_cli_runner().invoke(args=["backup", "restore", str(archive)])
    assert restored.exit_code == 0, restored.output
    assert "orders: 1" in restored.output
    with second.extensions["comptoir.sessions"]() as session:
        assert session.scalar(select(func.count()).select_from(Order)) == 1
    pdf = Path(second.instance_path) / "documents" / "invoice" / "FA-1.pdf"
    assert pdf.read_bytes() == b"%PDF-1"

    again = second.test_cli_runner().invoke(args=["backup", "restore", str(archive)])
    assert again.exit_code == 1
    assert "empty installation only" in again.output


def test_the_daily_backup_runs_when_the_newest_is_a_day_old_and_keeps_the_newest(
    tmp_path: Path, app_overrides: dict[str, Any]
) -> None:
    settings = installation(tmp_path, "daily", app_overrides)
    folder = tmp_path / "backups"
    app = create_app({**settings, "BACKUP_DIR": str(folder), "BACKUP_KEEP": 2})
    with app.app_context():
        schedule = backup.schedule_from(app.config)
    assert schedule is not None and schedule.keep == 2
    # The app keeps its documents in a local folder: the daily backup takes them too.
    assert schedule.documents_root is not None
    assert schedule.documents_root == backup.documents_root()
    assert backup.schedule_from({**app.config, "BACKUP_DIR": ""}) is None

    first = schedule.run_if_due()
    assert first is not None and first.exists()
    schedule._next_look = 0.0  # as a minute later
    assert schedule.run_if_due() is None  # the newest is fresh
    # Not due for another day: a minute later, or a minute short of the day, nothing is written.
    assert not schedule.due(dt.datetime.now(dt.UTC) + dt.timedelta(minutes=1))
    assert not schedule.due(dt.datetime.now(dt.UTC) + dt.timedelta(days=1, minutes=-1))
    assert sorted(folder.glob("*.tar")) == [first]

    # A day later, with two older archives beside it.
    yesterday = first.with_name(backup.archive_name(dt.datetime.now(dt.UTC) - dt.timedelta(days=1)))
    first.rename(yesterday)
    day_ago = (dt.datetime.now(dt.UTC) - dt.timedelta(days=1, minutes=1)).timestamp()
    os.utime(yesterday, (day_ago, day_ago))
    for name in ("2026-01-01T000000Z", "2026-01-02T000000Z"):
        (folder / f"comptoir-backup-{name}.tar").write_bytes(b"old")
    schedule._next_look = 0.0
    second = schedule.run_if_due()
    assert second is not None
    assert sorted(folder.glob("*.tar")) == sorted([yesterday, second])


def test_a_restore_rebuilds_nested_document_folders_and_refuses_a_database_in_use(
    tmp_path: Path, app_overrides: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    source = installation(tmp_path, "source", app_overrides)
    engine = make_engine(source["DATABASE_URL"])
    with sessionmaker(bind=engine).begin() as session:
        make_order(session, make_shop(session, "boutique"))
    engine.dispose()
    documents = tmp_path / "source-documents"
    (documents / "invoice" / "2026").mkdir(parents=True)
    (documents / "invoice" / "2026" / "FA-1.pdf").write_bytes(b"%PDF-1")
    archive = backup.create(source["DATABASE_URL"], documents, tmp_path / "backups")

    target = installation(tmp_path, "target", app_overrides)
    restored_documents = tmp_path / "target-documents"
    with caplog.at_level("INFO", logger="web.services.backup"):
        manifest = backup.restore(archive, target["DATABASE_URL"], restored_documents)
    assert (restored_documents / "invoice" / "2026" / "FA-1.pdf").read_bytes() == b"%PDF-1"
    assert f"backup {archive} restored ({{'orders': 1," in caplog.text
    assert manifest.counts["orders"] == 1

    with pytest.raises(backup.BackupRefused) as refused:
        backup.restore(archive, target["DATABASE_URL"], tmp_path / "empty-documents")
    assert "empty installation only, and the database has shops:" in str(refused.value)


def test_an_archive_whose_manifest_is_no_object_is_refused(tmp_path: Path) -> None:
    archive = tmp_path / "comptoir-backup-2026-01-01T000000Z.tar"
    manifest = tmp_path / backup.MANIFEST
    manifest.write_text("[1, 2]")
    with tarfile.open(archive, "w") as tar:
        tar.add(manifest, arcname=backup.MANIFEST)
    with pytest.raises(backup.BackupRefused) as refused:
        backup.read_verified(archive, tmp_path / "scratch")
    assert str(refused.value) == f"{archive}: unknown manifest version"


def test_a_database_tool_that_fails_is_named_with_the_end_of_what_it_said(tmp_path: Path) -> None:
    said = "x" * 1000 + "y" * 2000
    script = f"import sys; sys.stderr.write({said!r} + '\\n'); sys.exit(3)"
    with pytest.raises(backup.BackupError) as failed:
        backup._run([sys.executable, "-c", script], dict(os.environ))
    assert str(failed.value) == f"{Path(sys.executable).name} failed (3): {'y' * 2000}"
