"""`flask documents …` and `flask company …`: the issued documents and the seller behind them."""

from __future__ import annotations

import click
from flask.cli import AppGroup

documents_cli = AppGroup("documents", help="Issued documents: verify them, export them.")

company_cli = AppGroup("company", help="The company named as the seller on every document.")


# --- flask documents export (the accountant's exports) ---------------------------------------


@documents_cli.command("export")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["csv", "fec", "ereporting"]),
    required=True,
    help="csv: one row per document; fec: the sales journal (FEC); ereporting: B2C summary.",
)
@click.option("--from", "start", required=True, help="First issue date, YYYY-MM-DD.")
@click.option("--to", "end", required=True, help="Last issue date, YYYY-MM-DD (included).")
@click.option(
    "--output",
    "-o",
    type=click.Path(writable=True),
    default=None,
    help="Write to this file (or into this folder under the export's own name), readable "
    "by you only (0600), instead of stdout.",
)
def documents_export(fmt: str, start: str, end: str, output: str | None) -> None:
    """Export the invoices and credit notes issued from --from to --to for the accountant."""
    import sys
    from pathlib import Path

    from flask import current_app

    from web.private_files import write_private
    from web.services import accounting_exports
    from web.services.errors import ValidationFailed

    try:
        first, last = accounting_exports.parse_range(start, end)
        with current_app.extensions["comptoir.sessions"]() as session:
            result = accounting_exports.export(session, fmt, first, last)
    except ValidationFailed as exc:
        details = "; ".join(f"{field}: {message}" for field, message in exc.errors.items())
        raise click.ClickException(f"{exc} — {details}") from exc
    if output is None:
        sys.stdout.buffer.write(result.data)
        sys.stdout.flush()
        return
    target = Path(output)
    if target.is_dir():
        target = target / result.filename
    write_private(target, result.data)
    click.echo(f"{result.documents} documents written to {target}", err=True)
# --- flask documents verify ------------------------------------------------------------------

PROBLEMS = {
    "missing": "its PDF is missing",
    "mismatch": "its PDF does not match the SHA-256 kept at issue",
    "unreadable": "its PDF cannot be read",
}


@documents_cli.command("verify")
def verify() -> None:
    """Re-hash every issued document's stored PDF; exit 1 naming each one damaged or missing."""
    from flask import current_app

    from web.documents import issued

    with current_app.extensions["comptoir.sessions"]() as session:
        report = issued.verify_all(session)
    for damage in report.damaged:
        click.echo(f"{damage.reference} ({damage.key}): {PROBLEMS[damage.problem]}", err=True)
    if not report.ok:
        click.echo(
            f"{len(report.damaged)} of {report.checked} issued documents damaged or missing",
            err=True,
        )
        raise SystemExit(1)
    click.echo(f"{report.checked} issued documents checked: every stored PDF matches its hash")
