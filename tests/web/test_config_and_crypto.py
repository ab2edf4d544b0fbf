"""Configuration layers and encryption of shop credentials at rest."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text
from sqlalchemy.orm import Session

from web import config, crypto
from web.models import Shop
from web.models.enums import Platform
from web.private_files import private_folder


def test_environment_overrides_defaults_and_overrides_win(tmp_path: Path) -> None:
    environ = {
        "DATABASE_URL": "postgresql+psycopg://u@h/db",
        "APP_BASE_URL": "https://comptoir.example.fr/",
        "APP_ORDERS_PER_PAGE": "50",
        "APP_WORKER": "off",
        "UNRELATED": "x",
    }
    settings = config.load({"WORKER": "sqs"}, environ=environ, instance_path=tmp_path)
    assert settings["DATABASE_URL"] == "postgresql+psycopg://u@h/db"
    assert settings["BASE_URL"] == "https://comptoir.example.fr"
    assert settings["ORDERS_PER_PAGE"] == 50
    assert settings["WORKER"] == "sqs"
    assert settings["SESSION_COOKIE_SECURE"] is True
    assert "UNRELATED" not in settings


def test_default_database_is_a_sqlite_file_in_the_instance_folder(tmp_path: Path) -> None:
    settings = config.load(environ={}, instance_path=tmp_path)
    assert settings["DATABASE_URL"] == f"sqlite:///{tmp_path / 'comptoir.sqlite'}"
    assert settings["SESSION_COOKIE_SECURE"] is False


def test_missing_secret_key_is_generated_once_and_kept(tmp_path: Path) -> None:
    first = config.load(environ={}, instance_path=tmp_path)["SECRET_KEY"]
    second = config.load(environ={}, instance_path=tmp_path)["SECRET_KEY"]
    assert first == second and len(first) > 40


def test_generated_keys_are_created_readable_by_us_only(tmp_path: Path) -> None:
    instance = tmp_path / "instance"
    config.load(environ={}, instance_path=instance)
    assert (instance / "dev-secret.key").stat().st_mode & 0o777 == 0o600
    assert instance.stat().st_mode & 0o777 == 0o700


def test_shop_credentials_are_encrypted_in_the_database(db_session: Session) -> None:
    shop = Shop(
        key="k1",
        platform=Platform.WOOCOMMERCE,
        name="W",
        base_url="https://w.test",
        api_key="ck_live_secret",
        api_secret="cs_secret",
        webhook_secret="whsec",
    )
    db_session.add(shop)
    db_session.flush()
    raw = db_session.execute(
        text("SELECT api_key, api_secret, webhook_secret FROM shops WHERE id = :id"),
        {"id": shop.id},
    ).one()
    assert all(value and "secret" not in value and "whsec" not in value for value in raw)
    db_session.expire_all()
    assert db_session.get(Shop, shop.id).api_key == "ck_live_secret"  # type: ignore[union-attr]


def test_a_wrong_key_fails_loudly_instead_of_returning_garbage(tmp_path: Path) -> None:
    token = crypto.encrypt("s3cret")
    original = crypto._fernet
    try:
        crypto.configure(Fernet.generate_key().decode(), tmp_path)
        with pytest.raises(crypto.EncryptionNotConfigured):
            crypto.decrypt(token)
    finally:
        crypto._fernet = original


def test_key_rotation_reads_old_tokens(tmp_path: Path) -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    original = crypto._fernet
    try:
        crypto.configure(old, tmp_path)
        token = crypto.encrypt("s3cret")
        crypto.configure(f"{new},{old}", tmp_path)
        assert crypto.decrypt(token) == "s3cret"
    finally:
        crypto._fernet = original


def test_development_key_is_generated_once_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    original = crypto._fernet
    try:
        crypto.configure(None, tmp_path)
        token = crypto.encrypt("x")
        crypto.configure(None, tmp_path)
        assert crypto.decrypt(token) == "x"
        assert "APP_ENCRYPTION_KEY is not set" in caplog.text
        assert (tmp_path / "dev-encryption.key").stat().st_mode & 0o777 == 0o600
    finally:
        crypto._fernet = original


def test_a_folder_of_ours_left_open_is_closed_but_a_shared_sticky_one_is_not(
    tmp_path: Path,
) -> None:
    # A database file put straight into /tmp makes /tmp its "instance folder": closing /tmp
    # to 0700 would lock every other user of the machine out of it.
    ours = tmp_path / "instance"
    ours.mkdir(mode=0o755)
    ours.chmod(0o755)
    shared = tmp_path / "shared"
    shared.mkdir()
    shared.chmod(0o1777)

    private_folder(ours)
    private_folder(shared)

    assert ours.stat().st_mode & 0o7777 == 0o700
    assert shared.stat().st_mode & 0o7777 == 0o1777
