"""Users: argon2id passwords, roles, and API tokens."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from email_validator import EmailNotValidError, validate_email
from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from web.i18n import N_
from web.models import ApiToken, User, utcnow
from web.models.enums import Role
from web.services.audit import record_audit
from web.services.errors import NotFound, ValidationFailed

# argon2-cffi's defaults are argon2id with the RFC 9106 "low memory" profile.
DEFAULT_HASHER = PasswordHasher()
_hasher = DEFAULT_HASHER
# Verifying against this keeps an unknown e-mail as slow as a wrong password.
_DUMMY_HASH = _hasher.hash("not a real password")

MIN_PASSWORD_LENGTH = 10  # the messages below say 10 too
TOKEN_LABEL_MAX_LENGTH = 120  # ApiToken.label; the message says 120 too


def configure_hasher(hasher: PasswordHasher) -> None:
    """Hash and verify passwords with these argon2 parameters (the tests' cheaper ones)."""
    global _hasher, _DUMMY_HASH
    _hasher = hasher
    _DUMMY_HASH = hasher.hash("not a real password")


def hash_password(password: str) -> str:
    """Hash a password with argon2id."""
    return _hasher.hash(password)


def normalize_email(email: str) -> str:
    """Validate an e-mail address and return it lower-cased."""
    try:
        result = validate_email(email.strip(), check_deliverability=False)
    except EmailNotValidError as exc:
        raise ValidationFailed(
            N_("Invalid e-mail address."), {"email": N_("Invalid e-mail address.")}
        ) from exc
    return result.normalized.lower()


def find_by_email(session: Session, email: str) -> User | None:
    """Return the user with this e-mail, whatever its case; None for one holding NUL, which
    no user has (and PostgreSQL refuses in a query)."""
    if "\x00" in email:
        return None
    return session.scalar(select(User).where(func.lower(User.email) == email.strip().lower()))


def create_user(
    session: Session,
    email: str,
    role: Role | str,
    password: str | None = None,
    display_name: str = "",
) -> tuple[User, str]:
    """Create a user; return it with its password (generated when none is given)."""
    errors: dict[str, str] = {}
    try:
        email = normalize_email(email)
    except ValidationFailed as exc:
        errors.update(exc.errors)
    try:
        role = Role(role)
    except ValueError:
        errors["role"] = N_("Unknown role.")
    if password is None:
        password = generate_password()
    elif len(password) < MIN_PASSWORD_LENGTH:
        errors["password"] = N_("The password needs at least 10 characters.")
    if "email" not in errors and find_by_email(session, email) is not None:
        errors["email"] = N_("A user with this e-mail already exists.")
    if errors:
        raise ValidationFailed(N_("The user cannot be created."), errors)
    user = User(
        email=email,
        role=Role(role),
        password_hash=hash_password(password),
        display_name=display_name.strip(),
    )
    session.add(user)
    session.flush()
    return user, password


def authenticate(session: Session, email: str, password: str) -> User | None:
    """Return the active user whose password matches, or None; rehash old parameters."""
    user = find_by_email(session, email)
    if user is None or not user.is_active:
        _verify(_DUMMY_HASH, password)
        return None
    if not _verify(user.password_hash, password):
        return None
    if _hasher.check_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    user.last_login_at = utcnow()
    return user


def _verify(password_hash: str, password: str) -> bool:
    try:
        return _hasher.verify(password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


def set_password(user: User, password: str) -> None:
    """Replace a user's password."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ValidationFailed(
            N_("The password is too short."),
            {"password": N_("The password needs at least 10 characters.")},
        )
    user.password_hash = hash_password(password)


def generate_password() -> str:
    """Generate a password for someone else to hand over: 16 URL-safe characters."""
    return secrets.token_urlsafe(12)


def end_sessions(session: Session, user: User) -> None:
    """End every login session of the user: their cookies carry an older version."""
    # In SQL, so that two requests ending sessions at once both count.
    user.session_version = User.session_version + 1
    session.flush()


def log_out_everywhere(session: Session, user: User, *, actor: User, address: str = "") -> None:
    """End every session of the user, the actor's own included when it is them."""
    end_sessions(session, user)
    record_audit(
        session,
        "session.ended_everywhere",
        actor=actor,
        subject=user,
        address=address,
        params={"email": user.email},
    )


def change_password(
    session: Session, user: User, current: str, new: str, repeated: str, *, address: str = ""
) -> None:
    """Replace the user's own password, the current one given; end every session."""
    errors: dict[str, str] = {}
    if not _verify(user.password_hash, current):
        errors["current_password"] = N_("This is not your current password.")
    if len(new) < MIN_PASSWORD_LENGTH:
        errors["new_password"] = N_("The password needs at least 10 characters.")
    elif new != repeated:
        errors["repeat_password"] = N_("The two new passwords differ.")
    if errors:
        raise ValidationFailed(N_("The password was not changed."), errors)
    set_password(user, new)
    end_sessions(session, user)
    record_audit(
        session,
        "password.changed",
        actor=user,
        subject=user,
        address=address,
        params={"email": user.email},
    )


def reset_password(session: Session, user: User, *, actor: User, address: str = "") -> str:
    """Give the user a generated password and end their sessions; return the password."""
    password = generate_password()
    set_password(user, password)
    end_sessions(session, user)
    record_audit(
        session,
        "password.changed",
        actor=actor,
        subject=user,
        address=address,
        params={"email": user.email},
    )
    return password


def set_active(
    session: Session, user: User, active: bool, acting: User, *, address: str = ""
) -> None:
    """Enable or disable a login; disabling ends its sessions. Admins cannot lock themselves out."""
    if user.id == acting.id and not active:
        raise ValidationFailed(N_("You cannot deactivate your own account."))
    if user.is_active and not active:
        end_sessions(session, user)
        record_audit(
            session,
            "user.deactivated",
            actor=acting,
            subject=user,
            address=address,
            params={"email": user.email},
        )
    user.is_active = active


def list_users(session: Session) -> list[User]:
    """Return every user, by e-mail."""
    return list(session.scalars(select(User).order_by(User.email)))


def get_user(session: Session, user_id: int) -> User:
    """Return one user or raise NotFound."""
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(f"user {user_id} not found")
    return user


def _token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def create_api_token(
    session: Session, user: User, label: str = "", *, actor: User | None = None, address: str = ""
) -> str:
    """Create a bearer token for the user; only its hash is stored."""
    label = label.strip()
    if len(label) > TOKEN_LABEL_MAX_LENGTH:
        message = N_("Keep the label under 120 characters.")
        raise ValidationFailed(message, {"label": message})
    token = "cpt_" + secrets.token_urlsafe(32)
    session.add(ApiToken(user=user, token_hash=_token_digest(token), label=label))
    session.flush()
    record_audit(
        session,
        "api_token.created",
        actor=actor,
        subject=user,
        address=address,
        params={"email": user.email, "label": label},
    )
    return token


TOKEN_USE_INTERVAL = dt.timedelta(minutes=1)
"""How stale a token's last_used_at may get before a request records it again."""


def find_api_token(session: Session, token: str) -> ApiToken | None:
    """Return the unrevoked token with this secret, when its user is active."""
    api_token = session.scalar(
        select(ApiToken).where(
            ApiToken.token_hash == _token_digest(token), ApiToken.revoked_at.is_(None)
        )
    )
    if api_token is None or not api_token.user.is_active:
        return None
    return api_token


def token_use_is_stale(api_token: ApiToken) -> bool:
    """Tell whether the token's last use is unknown or older than TOKEN_USE_INTERVAL."""
    last = api_token.last_used_at
    return last is None or last < utcnow() - TOKEN_USE_INTERVAL


def record_token_use(session: Session, token_id: int) -> None:
    """Set the token's last use to now, unless a request did so less than a minute ago."""
    now = utcnow()
    session.execute(
        update(ApiToken)
        .where(
            ApiToken.id == token_id,
            or_(ApiToken.last_used_at.is_(None), ApiToken.last_used_at < now - TOKEN_USE_INTERVAL),
        )
        .values(last_used_at=now)
    )


def list_api_tokens(session: Session) -> dict[int, list[ApiToken]]:
    """Return the unrevoked tokens of every user, newest first, keyed by user id."""
    tokens: dict[int, list[ApiToken]] = {}
    for api_token in session.scalars(
        select(ApiToken)
        .where(ApiToken.revoked_at.is_(None))
        .order_by(ApiToken.created_at.desc(), ApiToken.id.desc())
    ):
        tokens.setdefault(api_token.user_id, []).append(api_token)
    return tokens


def revoke_api_token(
    session: Session,
    user: User,
    token_id: int,
    *,
    actor: User | None = None,
    address: str = "",
) -> ApiToken:
    """Revoke one of the user's tokens; it stops working at once. Revoking twice is harmless."""
    api_token = session.get(ApiToken, token_id)
    if api_token is None or api_token.user_id != user.id:
        raise NotFound(f"token {token_id} of user {user.id} not found")
    if api_token.revoked_at is None:
        api_token.revoked_at = utcnow()
        record_audit(
            session,
            "api_token.revoked",
            actor=actor,
            subject=user,
            address=address,
            params={"email": user.email, "label": api_token.label},
        )
    return api_token
