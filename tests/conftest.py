"""Shared fixtures: a migrated database (SQLite or PostgreSQL), sessions rolled back per test."""

from __future__ import annotations

import atexit
import os
import re
import shutil
import socket
import sqlite3
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import closing
from pathlib import Path
from types import CodeType
from typing import Any

import pytest
from argon2 import PasswordHasher
from cryptography.fernet import Fernet
from flask import Flask
from flask.testing import FlaskClient
from jinja2 import BytecodeCache, Environment
from jinja2.bccache import Bucket
from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker
from werkzeug.routing import Rule

from sync_lambdas import driver
from web import crypto, job_outputs, jobs, queue
from web.app import create_app
from web.connectors import addresses
from web.db import make_engine, make_session_factory
from web.documents import storage
from web.models import User
from web.models.enums import Role
from web.services import users
from web.services.users import create_user

TEST_DATABASE_URL = os.environ.get("TEST_DATABASE_URL", "")


def _fresh_database_url(tmp_root: Path) -> str:
    if TEST_DATABASE_URL:
        return TEST_DATABASE_URL
    return f"sqlite:///{tmp_root / 'comptoir-test.sqlite'}"


def reset_schema(engine: Engine) -> None:
    """Drop everything so the migrations run on an empty database."""
    if engine.dialect.name == "postgresql":
        with engine.begin() as conn:
            conn.execute(text("DROP SCHEMA public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))


def wait_until(condition: Callable[[], object], seconds: float = 10.0, what: str = "") -> None:
    """Poll until the condition holds (a worker, a server thread); fail after `seconds`."""
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what or condition}"
        time.sleep(0.05)


def separate_database_url(tmp_path: Path, suffix: str) -> str:
    """A database of its own, that another thread or process sees (not the test's savepoints).

    A SQLite file in tmp_path, or a fresh PostgreSQL database named after TEST_DATABASE_URL's
    with the suffix.
    """
    if not TEST_DATABASE_URL:
        return f"sqlite:///{tmp_path / f'{suffix}.sqlite'}"
    url = make_url(TEST_DATABASE_URL)
    name = f"{url.database}_{suffix}"
    admin = make_engine(str(url.set(database="postgres")), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        # FORCE: a process that ran an earlier test may still hold a pooled connection to the
        # last one of that name (bin/mutation's mutmut runs its clean tests in the process that
        # forks each mutant's).
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
    return url.set(database=name).render_as_string(hide_password=False)


def migrate(url: str) -> None:
    """Bring a new, empty database to the latest schema.

    Alembic runs the migrations once per test run, on a template database; each new database
    is then a copy of it (a file copy on SQLite, CREATE DATABASE … TEMPLATE on PostgreSQL),
    seconds cheaper per database. A database that is not empty is migrated by Alembic.
    tests/models/test_migrations.py runs the migrations themselves, step by step.
    """
    from web.migrate import upgrade

    sa_url = make_url(url)
    if sa_url.get_backend_name() == "sqlite":
        if not _copy_sqlite_template(Path(sa_url.database or "")):
            upgrade(url)
    elif not _copy_postgresql_template(sa_url):
        upgrade(url)


def separate_app(folder: Path, name: str, encryption_key: str) -> Flask:
    """An app on a new, migrated database of its own (in `folder`), to serve with `serving`."""
    url = separate_database_url(folder, name)
    engine = make_engine(url)
    reset_schema(engine)
    engine.dispose()
    migrate(url)
    return create_app(
        {
            "DATABASE_URL": url,
            "INSTANCE_PATH": str(folder / "instance"),
            "SECRET_KEY": f"{name}-tests",
            "ENCRYPTION_KEY": encryption_key,
            "ALLOW_PRIVATE_SHOP_URLS": True,
        }
    )


_templates: dict[str, str] = {}


def _template(kind: str, create: Callable[[], str]) -> str:
    if kind not in _templates:
        _templates[kind] = create()
    return _templates[kind]


def _sqlite_template() -> str:
    from web.migrate import upgrade

    folder = tempfile.mkdtemp(prefix="comptoir-template-")
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    path = Path(folder) / "template.sqlite"
    upgrade(f"sqlite:///{path}")
    return str(path)


def _copy_sqlite_template(target: Path) -> bool:
    if not target.name or _has_tables(f"sqlite:///{target}"):
        return False
    template = _template("sqlite", _sqlite_template)
    with closing(sqlite3.connect(template)) as source, closing(sqlite3.connect(target)) as copy:
        source.backup(copy)
    return True


def _postgresql_template(url: URL) -> str:
    from web.migrate import upgrade

    name = f"{make_url(TEST_DATABASE_URL).database}_template"
    _postgresql_admin(f'DROP DATABASE IF EXISTS "{name}"', f'CREATE DATABASE "{name}"', url=url)
    upgrade(url.set(database=name).render_as_string(hide_password=False))
    return name


def _copy_postgresql_template(url: URL) -> bool:
    rendered = url.render_as_string(hide_password=False)
    if _has_tables(rendered):
        return False
    # One template per server: a drill may start a PostgreSQL of its own (drill 10).
    server = f"postgresql://{url.host}:{url.port}"
    template = _template(server, lambda: _postgresql_template(url))
    try:
        _postgresql_admin(
            f'DROP DATABASE "{url.database}"',
            f'CREATE DATABASE "{url.database}" TEMPLATE "{template}"',
            url=url,
        )
    except OperationalError:  # someone is still connected to it: let Alembic migrate it
        return False
    return True


def _postgresql_admin(*statements: str, url: URL) -> None:
    admin = make_engine(str(url.set(database="postgres")), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            for statement in statements:
                conn.execute(text(statement))
    finally:
        admin.dispose()


def _has_tables(url: str) -> bool:
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            return bool(inspect(conn).get_table_names())
    finally:
        engine.dispose()


def _compile_url_builders_once() -> None:
    """Werkzeug compiles two URL builders per rule, per app: most of create_app's time, and
    most tests create an app. A builder is a pure function of the rule's parsed form (it gets
    the rule as its `self`), so the tests' apps share one per rule and get the same URLs."""
    compile_builder = Rule._compile_builder
    builders: dict[tuple[object, ...], Callable[..., tuple[str, str]]] = {}

    def compile_once(rule: Rule, append_unknown: bool = True) -> Callable[..., tuple[str, str]]:
        defaults = sorted((rule.defaults or {}).items())
        converters = sorted((name, type(c)) for name, c in rule._converters.items())
        key = (rule.rule, tuple(rule._trace), repr(defaults), tuple(converters), append_unknown)
        if key not in builders:
            builders[key] = compile_builder(rule, append_unknown)
        return builders[key]

    Rule._compile_builder = compile_once  # type: ignore[method-assign]


_compile_url_builders_once()


class _CompiledTemplates(BytecodeCache):
    """Jinja compiles every template again in each new app: most of a first render's time,
    and most tests render in an app of their own. This cache hands a template's compiled code
    to the next app with the same source and the same compiling options."""

    def __init__(self) -> None:
        self._code: dict[tuple[object, ...], CodeType] = {}

    def load_bytecode(self, bucket: Bucket) -> None:
        bucket.code = self._code.get(self._key(bucket))

    def dump_bytecode(self, bucket: Bucket) -> None:
        if bucket.code is not None:
            self._code[self._key(bucket)] = bucket.code

    @staticmethod
    def _key(bucket: Bucket) -> tuple[object, ...]:
        env = bucket.environment
        autoescape = getattr(env.autoescape, "__func__", env.autoescape)  # Flask's is a method
        options = tuple(getattr(env, name) for name in _COMPILING_OPTIONS)
        names = (tuple(sorted(env.extensions)), tuple(sorted(env.filters)), tuple(env.tests))
        return (bucket.key, bucket.checksum, autoescape, options, names)


_COMPILING_OPTIONS = (
    "block_start_string",
    "block_end_string",
    "variable_start_string",
    "variable_end_string",
    "comment_start_string",
    "comment_end_string",
    "line_statement_prefix",
    "line_comment_prefix",
    "trim_blocks",
    "lstrip_blocks",
    "newline_sequence",
    "keep_trailing_newline",
    "optimized",
    "finalize",
    "is_async",
)


def _share_compiled_templates() -> None:
    create_environment = Flask.create_jinja_environment
    compiled = _CompiledTemplates()

    def create_jinja_environment(app: Flask) -> Environment:
        environment = create_environment(app)
        environment.bytecode_cache = compiled
        return environment

    Flask.create_jinja_environment = create_jinja_environment  # type: ignore[method-assign]


_share_compiled_templates()

# argon2id at its lowest cost: the production parameters take about a second a hash on a loaded
# two-core machine, and most tests log someone in. tests/services/test_users.py checks them.
TEST_HASHER = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)


@pytest.fixture(scope="session", autouse=True)
def _encryption(encryption_key: str, tmp_path_factory: pytest.TempPathFactory) -> None:
    """Services that read shop secrets need a key even without an app; services that queue
    jobs need their handlers registered (create_app does both); passwords hash cheaply."""
    crypto.configure(encryption_key, tmp_path_factory.mktemp("instance"))
    jobs.register_all()
    users.configure_hasher(TEST_HASHER)


@pytest.fixture(autouse=True)
def _process_configuration() -> Iterator[None]:
    """What a test configures for the whole process is put back after it: committed work
    wakes the local worker again (an AWS test sends it to SQS), and the document storage and
    job outputs are the ones from before (an AWS test's bucket goes with its stack)."""
    kept_storage = storage.configured_or_none()
    kept_outputs = job_outputs.configured()
    yield
    queue.configure(queue.LocalBackend())
    storage.configure(kept_storage)
    job_outputs.configure(kept_outputs)


@pytest.fixture(autouse=True)
def _private_shop_urls_allowed() -> Iterator[None]:
    """The shops of the tests are loopback emulators: allowed, as APP_ALLOW_PRIVATE_SHOP_URLS=1.

    Set again after each test, as a test that builds its app without it turns it off.
    """
    addresses.configure(allow_private=True)
    yield
    addresses.configure(allow_private=True)


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="comptoir-test-") as tmp:
        url = _fresh_database_url(Path(tmp))
        engine = make_engine(url)
        reset_schema(engine)
        engine.dispose()
        migrate(url)
        yield url


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    engine = make_engine(database_url)
    yield engine
    engine.dispose()


@pytest.fixture()
def db_connection(engine: Engine) -> Iterator[Connection]:
    """One connection per test inside an outer transaction that is rolled back."""
    connection = engine.connect()
    outer = connection.begin()
    try:
        yield connection
    finally:
        outer.rollback()
        connection.close()


@pytest.fixture()
def session_factory(db_connection: Connection) -> sessionmaker[Session]:
    """Sessions on the test connection: their commits only release savepoints."""
    return sessionmaker(
        bind=db_connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )


@pytest.fixture()
def db_session(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    """A session whose work, committed or not, is rolled back after the test."""
    session = session_factory()
    try:
        yield session
    finally:
        session.close()


@pytest.fixture(scope="session")
def encryption_key() -> str:
    return Fernet.generate_key().decode()


@pytest.fixture()
def app_overrides(tmp_path: Path, database_url: str, encryption_key: str) -> dict[str, Any]:
    """Settings of the test app; a test may change them before asking for `app`."""
    return {
        "TESTING": True,
        "DATABASE_URL": database_url,
        "INSTANCE_PATH": str(tmp_path / "instance"),
        "SECRET_KEY": "test-secret-key",
        "ENCRYPTION_KEY": encryption_key,
        "BASE_URL": "http://comptoir.test",
        "ALLOW_PRIVATE_SHOP_URLS": True,
    }


@pytest.fixture()
def app(app_overrides: dict[str, Any], session_factory: sessionmaker[Session]) -> Flask:
    """The Flask app, its requests sharing the test's rolled-back connection."""
    app = create_app(app_overrides)
    app.extensions["comptoir.sessions"] = session_factory
    return app


@pytest.fixture()
def client(app: Flask) -> FlaskClient:
    return app.test_client()


CSRF_PATTERN = re.compile(r'name="csrf_token"[^>]*value="([^"]+)"|"X-CSRFToken": "([^"]+)"')


def csrf_from(html: str) -> str:
    """Pull the CSRF token out of a rendered page."""
    match = CSRF_PATTERN.search(html)
    assert match, "no CSRF token in the page"
    return match.group(1) or match.group(2)


def csrf_token(client: FlaskClient, path: str = "/login") -> str:
    """GET a page and return the CSRF token it carries for this client's session."""
    return csrf_from(client.get(path).get_data(as_text=True))


TEST_PASSWORD = "correct horse battery"


@pytest.fixture()
def make_user(db_session: Session) -> Callable[..., User]:
    """Create a committed user with TEST_PASSWORD."""
    counter = iter(range(1, 10_000))

    def factory(role: Role | str = Role.MANAGER, email: str | None = None) -> User:
        role = Role(role)
        email = email or f"{role.value}{next(counter)}@example.com"
        user, _ = create_user(db_session, email, role, TEST_PASSWORD, role.value.title())
        db_session.commit()
        return user

    return factory


def log_in(client: FlaskClient, email: str, password: str = TEST_PASSWORD) -> None:
    """Log in through the real login form."""
    token = csrf_token(client, "/login")
    response = client.post(
        "/login", data={"email": email, "password": password, "csrf_token": token}
    )
    assert response.status_code == 303, response.get_data(as_text=True)[:500]


@pytest.fixture()
def login_as(client: FlaskClient, make_user: Callable[..., User]) -> Callable[..., User]:
    """Log the test client in as a new user of the given role."""

    def do(role: Role | str = Role.MANAGER) -> User:
        user = make_user(role)
        log_in(client, user.email)
        return user

    return do


# --- Two connections racing on one database (PostgreSQL row-lock tests) ----------------------


@pytest.fixture(scope="module")
def parallel_database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """A migrated database of the test module's own, outside the per-test transaction."""
    name = request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_")
    url = separate_database_url(tmp_path_factory.mktemp(name), name)
    engine = make_engine(url)
    reset_schema(engine)
    engine.dispose()
    migrate(url)
    yield url


@pytest.fixture()
def two_processes(parallel_database: str) -> Iterator[list[sessionmaker[Session]]]:
    """Two engines on that database, as two processes would hold; skipped on SQLite, whose
    write transactions never interleave (there is no race to test)."""
    engines = [make_engine(parallel_database), make_engine(parallel_database)]
    if engines[0].dialect.name == "sqlite":
        pytest.skip("SQLite write transactions never interleave: nothing to race")
    yield [make_session_factory(engine) for engine in engines]
    for engine in engines:
        engine.dispose()


# --- AWS -------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def moto_endpoint(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a moto server process started for this session (tests/aws, and the
    services that talk to SQS): real boto3 calls over HTTP to loopback."""
    # boto3 signs every request: moto accepts any key, but there must be one.
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", "eu-west-3")
    port = _free_port()
    log_path = str(tmp_path_factory.mktemp("moto") / "moto.log")
    process = driver.start_moto_server(port, log_path)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        process.wait(timeout=10)
