"""`flask documents …` and `flask company …`: the issued documents and the seller behind them."""

from __future__ import annotations

import click
from flask.cli import AppGroup

documents_cli = AppGroup("documents", help="Issued documents: verify them, export them.")

company_cli = AppGroup("company", help="The company named as the seller on every document.")


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
