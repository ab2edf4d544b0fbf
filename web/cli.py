"""Command-line interface: `flask --app web.wsgi db|users|demo|serve ...`."""

from __future__ import annotations

import datetime as dt
import json
import signal
import sys
import threading
from types import FrameType
from typing import BinaryIO

import click
from flask import Flask, current_app
from flask.cli import AppGroup
from sqlalchemy import select
from sqlalchemy.orm import Session
from werkzeug.serving import run_simple

from web import migrate
from web.models import Shop
from web.models.enums import Platform, Role
from web.services import shops, users, warehouse
from web.services.errors import ValidationFailed

db_cli = AppGroup("db", help="Create or migrate the database schema.")
users_cli = AppGroup("users", help="Manage logins and API tokens.")
demo_cli = AppGroup("demo", help="Demo data for a first look.")
shops_cli = AppGroup("shops", help="Connect shops.")
sync_cli = AppGroup("sync", help="Exchange orders with the shops.")
orders_cli = AppGroup("orders", help="Orders out of Comptoir.")
warehouse_cli = AppGroup("warehouse", help="The warehouse: where each SKU is kept.")

DEMO_USERS = (
    ("admin@example.com", Role.ADMIN, "Camille Admin"),
    ("manager@example.com", Role.MANAGER, "Marion Gestion"),
    ("entrepot@example.com", Role.WAREHOUSE, "Éloi Entrepôt"),
    ("lecture@example.com", Role.VIEWER, "Lou Lecture"),
)
DEMO_PASSWORD = "comptoir-demo"


def _session() -> Session:
    return current_app.extensions["comptoir.sessions"]()


def _fail(exc: ValidationFailed) -> None:
    details = "; ".join(f"{field}: {message}" for field, message in exc.errors.items())
    raise click.ClickException(f"{exc}{' — ' + details if details else ''}")


@db_cli.command("upgrade")
@click.argument("revision", default="head")
def db_upgrade(revision: str) -> None:
    """Create or migrate the schema up to REVISION (default: head)."""
    migrate.upgrade(current_app.config["DATABASE_URL"], revision)


@db_cli.command("downgrade")
@click.argument("revision")
def db_downgrade(revision: str) -> None:
    """Migrate the schema down to REVISION."""
    migrate.downgrade(current_app.config["DATABASE_URL"], revision)


@db_cli.command("revision")
@click.option("-m", "--message", required=True)
def db_revision(message: str) -> None:
    """Write a new migration by comparing the models with the database."""
    migrate.revision(current_app.config["DATABASE_URL"], message)


@db_cli.command("current")
def db_current() -> None:
    """Print the database's revision."""
    migrate.current(current_app.config["DATABASE_URL"])


@users_cli.command("create")
@click.option("--email", required=True)
@click.option("--role", required=True, type=click.Choice([r.value for r in Role]))
@click.option("--password", default=None, help="Generated and printed when omitted.")
@click.option("--name", "display_name", default="")
def users_create(email: str, role: str, password: str | None, display_name: str) -> None:
    """Create a login."""
    with _session() as session, session.begin():
        try:
            user, generated = users.create_user(session, email, role, password, display_name)
        except ValidationFailed as exc:
            _fail(exc)
        click.echo(f"created {user.email} ({user.role.value})")
        if password is None:
            click.echo(f"password: {generated}")


@users_cli.command("token")
@click.option("--email", required=True)
@click.option("--label", default="cli")
def users_token(email: str, label: str) -> None:
    """Print a new API token for the user."""
    with _session() as session, session.begin():
        user = users.find_by_email(session, email)
        if user is None:
            raise click.ClickException(f"no user with e-mail {email}")
        click.echo(users.create_api_token(session, user, label))


@demo_cli.command("seed")
@click.option("--orders", default=300, show_default=True)
@click.option("--if-empty", is_flag=True, help="Do nothing when shops already exist.")
def demo_seed(orders: int, if_empty: bool) -> None:
    """Create demo shops, shipping modes, orders and one login per role."""
    from web.services.demo import seed_demo

    with _session() as session, session.begin():
        if if_empty and session.scalar(select(Shop.id).limit(1)) is not None:
            click.echo("demo data: the database already has shops, nothing seeded")
            _echo_demo_logins(session)
            return
        try:
            summary = seed_demo(session, orders=orders)
            for email, role, name in DEMO_USERS:
                if users.find_by_email(session, email) is None:
                    users.create_user(session, email, role, DEMO_PASSWORD, name)
        except ValidationFailed as exc:
            _fail(exc)
    click.echo(f"demo data: {summary}")
    with _session() as session:
        _echo_demo_logins(session)


def _echo_demo_logins(session: Session) -> None:
    present = [
        (email, role) for email, role, _ in DEMO_USERS if users.find_by_email(session, email)
    ]
    if present:
        click.echo(f"demo logins (password {DEMO_PASSWORD}, unless changed since):")
        for email, role in present:
            click.echo(f"  {role.value:<9} {email}")


@shops_cli.command("add")
@click.option("--platform", required=True, type=click.Choice([p.value for p in Platform]))
@click.option("--name", required=True)
@click.option("--url", required=True, help="The shop's base URL.")
@click.option("--webhook-secret", default=None)
@click.option("--api-key", default=None)
@click.option("--api-secret", default=None)
@click.option("--import-from", default=None, help="YYYY-MM-DD: older orders are not imported.")
def shops_add(
    platform: str,
    name: str,
    url: str,
    webhook_secret: str | None,
    api_key: str | None,
    api_secret: str | None,
    import_from: str | None,
) -> None:
    """Add a shop; print its id, key and webhook URL as JSON."""
    try:
        since = dt.date.fromisoformat(import_from) if import_from else None
    except ValueError as exc:
        raise click.BadParameter("expected YYYY-MM-DD", param_hint="--import-from") from exc
    with _session() as session, session.begin():
        try:
            shop = shops.create_shop(
                session,
                platform,
                name,
                url,
                webhook_secret=webhook_secret,
                api_key=api_key,
                api_secret=api_secret,
                import_from=since,
            )
        except ValidationFailed as exc:
            _fail(exc)
        out = {
            "id": shop.id,
            "key": shop.key,
            "webhook_url": shops.webhook_url(current_app.config["BASE_URL"], shop),
        }
    click.echo(json.dumps(out))


@sync_cli.command("run")
@click.option("--shop", "shop_key", default=None, help="Only this shop (polled now).")
def sync_run(shop_key: str | None) -> None:
    """Process pending inbox work and poll the shops that are due, once."""
    from web.services.sync import run_sync

    try:
        report = run_sync(current_app.extensions["comptoir.sessions"], shop_key)
    except LookupError as exc:
        raise click.ClickException(str(exc)) from exc
    click.echo(report.summary())


@sync_cli.command("maintenance")
def sync_maintenance() -> None:
    """Queue again jobs whose worker stopped, purge old inbox payloads (APP_INBOX_RETENTION_DAYS);
    with APP_QUEUE=sqs, drain the dead-letter queues and announce due work again too."""
    from web.services import maintenance

    report = maintenance.run(current_app.extensions["comptoir.sessions"], current_app.config)
    click.echo(report.summary())


@orders_cli.command("export")
@click.option("--format", "fmt", type=click.Choice(["csv", "json"]), default="csv")
@click.option("--shop", "shop_key", default=None)
@click.option(
    "--output",
    "-o",
    type=click.Path(dir_okay=False, writable=True),
    default=None,
    help="Write to this file, readable by you only (0600), instead of stdout.",
)
def orders_export(fmt: str, shop_key: str | None, output: str | None) -> None:
    """Write orders with lines, transactions, shipments and parcels to stdout or a file."""
    from web.private_files import open_private
    from web.services import export

    with _session() as session:
        if shop_key and shops.find_by_key(session, shop_key) is None:
            raise click.ClickException(f"no shop with key {shop_key!r}")
        writer = export.export_json if fmt == "json" else export.export_csv
        if output is None:
            writer(session, sys.stdout, shop_key)
            return
        with open_private(output, "w", encoding="utf-8", newline="") as out:
            count = writer(session, out, shop_key)
        click.echo(f"{count} orders written to {output}", err=True)


@warehouse_cli.command("bins")
@click.argument("source", type=click.File("rb"))
def warehouse_bins(source: BinaryIO) -> None:
    """Set each SKU's bin from a CSV of SKU;location rows (an empty location forgets it)."""
    try:
        rows = warehouse.read_bins(source.read())
    except ValidationFailed as exc:
        _fail(exc)
    with _session() as session:
        result = warehouse.import_bins(session, rows)
        session.commit()
    click.echo(
        f"bins: {result.created} created, {result.updated} changed, "
        f"{result.unchanged} unchanged, {len(result.refused)} refused"
    )
    for line, reason in result.refused:
        click.echo(f"line {line}: {reason}", err=True)


@click.command("serve")
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=5000, show_default=True)
def serve(host: str, port: int) -> None:
    """Serve the app with its background worker (local, single process)."""
    from web.jobs import start_worker

    app = current_app._get_current_object()  # type: ignore[attr-defined]
    start_worker(app)
    click.echo(f"Comptoir on http://{host}:{port}  (Ctrl+C stops)")
    sys.stdout.flush()
    # app.run() is a no-op under the flask command, so serve with Werkzeug directly.
    run_simple(host, port, app, threaded=True, use_reloader=False)


@click.command("worker")
def worker() -> None:
    """Work jobs, the inbox, the outbox and due polls beside a web server, until stopped.

    For gunicorn (which never runs the worker itself). SIGTERM or SIGINT: the unit of work
    under way finishes, then the process exits.
    """
    from web.queue import requeue_interrupted_once_reachable, serve_queue
    from web.services import backup
    from web.services.sync import run_sync, work_due

    sessions = current_app.extensions["comptoir.sessions"]
    stopping = threading.Event()

    def stop(signum: int, _frame: FrameType | None) -> None:
        if not stopping.is_set():
            click.echo(f"worker: {signal.Signals(signum).name} received, stopping")
        stopping.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    interrupted = requeue_interrupted_once_reachable(sessions, stopping)
    if interrupted is None:
        return  # stopped before the database ever answered
    if interrupted:
        click.echo(f"worker: {interrupted} job(s) interrupted by the last stop queued again")
    check = float(current_app.config["WORKER_CHECK_SECONDS"])
    backups = backup.schedule_from(current_app.config)

    def tick() -> None:
        run_sync(sessions)
        if backups is not None:
            backups.run_if_due()

    click.echo(f"worker: started, checking for due work every {check:g} s")
    sys.stdout.flush()
    serve_queue(
        sessions,
        stopping,
        tick=tick,
        work_due=lambda: work_due(sessions),
        poll_seconds=float(current_app.config["WORKER_POLL_SECONDS"]),
        check_seconds=check,
    )
    click.echo("worker: stopped")


def register(app: Flask) -> None:
    """Attach every command group to the app."""
    app.cli.add_command(db_cli)
    app.cli.add_command(users_cli)
    app.cli.add_command(demo_cli)
    app.cli.add_command(shops_cli)
    app.cli.add_command(sync_cli)
    app.cli.add_command(orders_cli)
    from web.cli_shipping import shipping_cli

    app.cli.add_command(shipping_cli)
    from web.cli_documents import company_cli, documents_cli

    app.cli.add_command(documents_cli)
    app.cli.add_command(company_cli)
    app.cli.add_command(warehouse_cli)
    from web.cli_backup import backup_cli

    app.cli.add_command(backup_cli)
    app.cli.add_command(serve)
    app.cli.add_command(worker)
