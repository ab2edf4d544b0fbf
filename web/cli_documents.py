"""`flask documents …` and `flask company …`: the issued documents and the seller behind them."""

from __future__ import annotations

from pathlib import Path

import click
from flask import current_app
from flask.cli import AppGroup
from sqlalchemy.orm import Session

from web.documents.company import company_settings, missing_fields
from web.services.errors import ValidationFailed

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
        detail = f" ({damage.detail})" if damage.detail else ""
        click.echo(
            f"{damage.reference} ({damage.key}): {PROBLEMS[damage.problem]}{detail}", err=True
        )
    if not report.ok:
        click.echo(
            f"{len(report.damaged)} of {report.checked} issued documents damaged or missing",
            err=True,
        )
        raise SystemExit(1)
    click.echo(f"{report.checked} issued documents checked: every stored PDF matches its hash")


def _session() -> Session:
    return current_app.extensions["comptoir.sessions"]()


# --- flask company … -------------------------------------------------------------------------


def _assignment(text: str) -> tuple[str, str]:
    key, sep, value = text.partition("=")
    if not sep or not key.strip():
        raise click.BadParameter(f"{text!r}: write KEY=VALUE", param_hint="KEY=VALUE")
    return key.strip(), value


@company_cli.command("set", context_settings={"ignore_unknown_options": True})
@click.argument("assignments", nargs=-1, required=True)
def company_set(assignments: tuple[str, ...]) -> None:
    """Set company settings: KEY=VALUE … (all or none; logo=PATH reads an image file).

    An empty VALUE clears the setting. In the address, \\n starts a new line.
    """
    from web.services import company

    pairs = [_assignment(text) for text in assignments]
    fields = {key: value for key, value in pairs if key != "logo"}
    if "address" in fields:
        fields["address"] = fields["address"].replace("\\n", "\n")
    logo_path = next((value for key, value in pairs if key == "logo"), None)
    errors: dict[str, str] = {}
    logo: bytes | None = None
    if logo_path:
        try:
            logo = Path(logo_path).read_bytes()
        except OSError as exc:
            errors["logo"] = f"cannot read {logo_path}: {exc.strerror}"
    with _session() as session, session.begin():
        try:
            company.clean_fields(fields, company.ensure_company(session))
        except ValidationFailed as exc:
            errors.update(exc.errors)
        if logo is not None:
            try:
                company.logo_type(logo)
            except ValueError as exc:
                errors["logo"] = str(exc)
        if errors:
            for key, message in errors.items():
                click.echo(f"{key}: {message}", err=True)
            raise click.ClickException(f"nothing changed; refused: {', '.join(errors)}")
        company.update_company(session, fields)
        if logo_path == "":
            company.remove_logo(session)
        elif logo is not None:
            company.set_logo(session, logo)
        missing = missing_fields(company.ensure_company(session))
    click.echo(f"company settings saved: {', '.join(key for key, _ in pairs)}")
    if missing:
        click.echo(f"still missing before invoices can be issued: {', '.join(missing)}")


@company_cli.command("show")
def company_show() -> None:
    """Print every setting and what is still missing before invoices can be issued."""
    from web.services import company

    with _session() as session:
        settings = company_settings(session)
        values = company.settings_values(settings)
        width = max(len(key) for key in values)
        for key, value in values.items():
            shown = value.replace("\n", "\n" + " " * (width + 2))
            click.echo(f"{key:<{width}}  {shown}")
        logo = f"{settings.logo_mime_type}, {len(settings.logo)} bytes" if settings.logo else ""
        click.echo(f"{'logo':<{width}}  {logo}")
        missing = missing_fields(settings)
    if missing:
        click.echo(f"missing before invoices can be issued: {', '.join(missing)}")
    else:
        click.echo("complete: invoices can be issued")
