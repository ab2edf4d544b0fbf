"""`flask shipping …`: tracking numbers in from a CSV, orders ready to ship out to one."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup

from web.services.errors import ValidationFailed

shipping_cli = AppGroup("shipping", help="Tracking numbers in, orders ready to ship out.")


@shipping_cli.command("import-tracking")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def import_tracking(path: Path) -> None:
    """Add the tracking numbers of a CSV file to the orders' shipments, shipping them.

    Prints the counts and each refused row with its line number and reason; exits
    non-zero when the file itself cannot be read.
    """
    from web.services import tracking_import
    from web.services.timeline import Actor

    try:
        data = path.read_bytes()
    except OSError as exc:
        raise click.ClickException(f"cannot read {path}: {exc.strerror or exc}") from exc
    try:
        parsed = tracking_import.parse(data)
    except ValidationFailed as exc:
        raise click.ClickException(f"{path}: {exc}") from exc
    sessions = current_app.extensions["comptoir.sessions"]
    actor = Actor.system("flask shipping import-tracking")
    summary = tracking_import.run_rows(sessions, parsed.rows, actor)
    counts = summary.counts
    click.echo(
        f"{len(parsed.rows)} rows ({parsed.encoding}, separator {parsed.separator!r}): "
        f"{counts['created']} created, {counts['completed']} completed, "
        f"{counts['already_there']} already there, {counts['refused']} refused"
    )
    for item in summary.refused:
        detail = f" ({item.detail})" if item.detail else ""
        click.echo(f"  line {item.line}: {item.order or '-'} {item.tracking or '-'}: "
                   f"{item.reason}{detail}")  # fmt: skip


@shipping_cli.command("export-ready")
@click.option("--mode", "mode_code", default="", help="Only the orders of this shipping mode.")
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def export_ready(mode_code: str, path: Path) -> None:
    """Write the orders ready to ship as a CSV for label software (`-` for stdout)."""
    from web.private_files import open_private
    from web.services import ready_to_ship

    with current_app.extensions["comptoir.sessions"]() as session:
        try:
            mode = ready_to_ship.mode_by_code(session, mode_code)
        except ValidationFailed as exc:
            raise click.ClickException(f"{exc} ({mode_code})") from exc
        if str(path) == "-":
            count = ready_to_ship.write_ready(sys.stdout, session, mode)
        else:
            # Names, addresses and phones: a file only its owner reads.
            with open_private(path, "w", encoding="utf-8-sig", newline="") as out:
                count = ready_to_ship.write_ready(out, session, mode)
    click.echo(f"{count} orders ready to ship written to {path}", err=True)
