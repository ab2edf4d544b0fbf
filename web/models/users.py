"""People who log in, the API tokens they hold, login throttles and the audit log."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, String, UniqueConstraint, true
from sqlalchemy.orm import Mapped, mapped_column, relationship

from web.models.base import Base, enum_column, utcnow
from web.models.enums import Role


class User(Base):
    __tablename__ = "users"

    id: Mapped[int] = mapped_column(primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    display_name: Mapped[str] = mapped_column(String(120), default="")
    password_hash: Mapped[str] = mapped_column(String(255))
    role: Mapped[Role] = enum_column(Role, name="user_role")
    is_active: Mapped[bool] = mapped_column(default=True, server_default=true())
    locale: Mapped[str | None] = mapped_column(String(8))
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_login_at: Mapped[dt.datetime | None]
    # Raised to end every session issued before: a session cookie carries the version it
    # was issued under and is refused once it no longer matches (logout, password change,
    # deactivation, "log out everywhere").
    session_version: Mapped[int] = mapped_column(default=0, server_default="0")

    tokens: Mapped[list[ApiToken]] = relationship(back_populates="user")

    @property
    def name(self) -> str:
        return self.display_name or self.email

    # The interface Flask-Login expects, written out so models never import Flask.
    is_authenticated = True
    is_anonymous = False

    def get_id(self) -> str:
        return str(self.id)

    def __repr__(self) -> str:
        return f"<User {self.email} {self.role}>"


class ApiToken(Base):
    """A bearer token for /api/v1; only its SHA-256 is stored."""

    __tablename__ = "api_tokens"

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(120), default="")
    created_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    last_used_at: Mapped[dt.datetime | None]
    revoked_at: Mapped[dt.datetime | None]

    user: Mapped[User] = relationship(back_populates="tokens")


class LoginThrottle(Base):
    """Failed logins counted per account (the e-mail typed) and per address.

    Each failure past the free ones doubles the wait before the next attempt is heard;
    a success clears the account's row. Unknown e-mails are counted like real ones, so
    the throttle does not tell which accounts exist.
    """

    __tablename__ = "login_throttles"
    __table_args__ = (UniqueConstraint("scope", "key"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    scope: Mapped[str] = mapped_column(String(16))  # "account" or "address"
    key: Mapped[str] = mapped_column(String(254))
    failures: Mapped[int] = mapped_column(default=0, server_default="0")
    last_failure_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    blocked_until: Mapped[dt.datetime | None]


class AuditEvent(Base):
    """A security-relevant fact that belongs to no order: logins refused, sessions ended,
    passwords changed, shop credentials cleared. Rendered from kind + parameters."""

    __tablename__ = "audit_events"
    __table_args__ = (Index("ix_audit_events_time", "occurred_at"),)

    id: Mapped[int] = mapped_column(primary_key=True)
    occurred_at: Mapped[dt.datetime] = mapped_column(default=utcnow)
    kind: Mapped[str] = mapped_column(String(60))
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    subject_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id", ondelete="SET NULL"))
    address: Mapped[str] = mapped_column(String(64), default="", server_default="")
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict, server_default="{}")
