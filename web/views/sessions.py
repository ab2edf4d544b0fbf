"""The login session: what its cookie carries, and when the server stops accepting it.

Flask keeps the session in a signed cookie, so on its own a copy of the cookie stays good
for as long as its signature does, whatever the user does afterwards. The cookie therefore
carries three more facts, checked on every request against the database and the clock:

- the user's session version at login: logout, a password change, deactivation and "log
  out everywhere" raise `users.session_version`, which ends every cookie issued before;
- when the login happened: refused after PERMANENT_SESSION_LIFETIME whatever follows (the
  signature's own age restarts whenever the cookie is re-issued, so it cannot say this);
- when the user was last seen: refused after SESSION_IDLE_MINUTES without a request,
  refreshed at most once a minute so that Set-Cookie stays rare, and never by the polls
  a page makes on its own.
"""

from __future__ import annotations

import time

from flask import current_app, g, session
from flask_login import logout_user
from sqlalchemy.exc import OperationalError

from web import htmx
from web.models import User
from web.views.base import db

VERSION = "_version"
STARTED = "_started"
SEEN = "_seen"
SEEN_REFRESH_SECONDS = 60


def start(user: User) -> None:
    """Stamp a new login with the user's session version and the time."""
    now = int(time.time())
    session[VERSION] = user.session_version
    session[STARTED] = now
    session[SEEN] = now


def keep(user: User) -> None:
    """Carry this session over to the user's new session version (the others end)."""
    session[VERSION] = user.session_version


def end() -> None:
    """Forget the login and everything else, except the language chosen."""
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang


def log_out() -> None:
    """End this request's login and forget the session."""
    logout_user()
    end()


DATABASE_DOWN = "database_down"


def load_user(user_id: str) -> User | None:
    """Return the session's user, or None after clearing a session no longer accepted.

    When the database does not answer, the request goes on as a visitor's, the session kept
    (the login is neither accepted nor refused): public pages and the error page still
    render, and web/app.py answers 503 where a login is needed.
    """
    try:
        user = db().get(User, int(user_id)) if user_id.isdigit() else None
    except OperationalError as exc:
        g.setdefault(DATABASE_DOWN, exc)
        return None
    if user is None or not _accepted(user):
        end()
        return None
    return user


def _accepted(user: User) -> bool:
    if not user.is_active or session.get(VERSION) != user.session_version:
        return False
    started, seen = session.get(STARTED), session.get(SEEN)
    if not isinstance(started, int) or not isinstance(seen, int):
        return False  # issued before these checks existed
    now = int(time.time())
    if now - started > current_app.permanent_session_lifetime.total_seconds():
        return False
    if now - seen > int(current_app.config["SESSION_IDLE_MINUTES"]) * 60:
        return False
    if now - seen >= SEEN_REFRESH_SECONDS and not htmx.is_background_poll():
        session[SEEN] = now
    return True
