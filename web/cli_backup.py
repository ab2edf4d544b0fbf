"""`flask backup create|restore`: one archive of the database and the documents folder."""

from __future__ import annotations

from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup

from web.services import backup

backup_cli = AppGroup("backup", help="Back up and restore the database and documents.")


@backup_cli.command("create")
@click.option(
    "--to",
    "folder",
    type=click.Path(file_okay=False),
    default=None,
    help="Folder of the archive (default: APP_BACKUP_DIR, else instance/backups).",
)
def backup_create(folder: str | None) -> None:
    """Write a dated archive of the database and the documents folder, with a manifest."""
    target = Path(
        folder
        or current_app.config.get("BACKUP_DIR")
        or Path(current_app.instance_path) / "backups"
    )
    try:
        archive = backup.create(current_app.config["DATABASE_URL"], backup.documents_root(), target)
    except backup.BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    if backup.documents_root() is None:
        click.echo("documents are on S3 (versioned, Object Lock): not copied", err=True)
    click.echo(str(archive))


@backup_cli.command("restore")
@click.argument("archive", type=click.Path(exists=True, dir_okay=False))
def backup_restore(archive: str) -> None:
    """Restore ARCHIVE onto this installation, which must be empty (no shop, order, document)."""
    try:
        manifest = backup.restore(
            Path(archive), current_app.config["DATABASE_URL"], backup.documents_root()
        )
    except backup.BackupError as exc:
        raise click.ClickException(str(exc)) from exc
    counts = ", ".join(f"{table}: {count}" for table, count in manifest.counts.items())
    click.echo(f"restored the backup of {manifest.created_at} ({counts})")
