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
