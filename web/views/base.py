"""What every view needs: the request's database session, the actor, role checks."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from typing import Any, TypeVar

from flask import Blueprint, abort, current_app, g, request
from flask_login import current_user
from sqlalchemy.orm import Session

from web.db import read_only
from web.models.enums import Role
from web.services.timeline import Actor

F = TypeVar("F", bound=Callable[..., Any])


def db() -> Session:
    """Return this request's session, opened on first use and closed at teardown."""
    if "db_session" not in g:
        g.db_session = current_app.extensions["comptoir.sessions"]()
        if request.method in ("GET", "HEAD"):
            read_only(g.db_session)
    return g.db_session


def current_actor() -> Actor:
    """The logged-in person, as the actor of the changes this request makes."""
    return Actor.for_user(current_user._get_current_object())


def has_role(*roles: Role) -> bool:
    return bool(current_user.is_authenticated and current_user.role in roles)


def roles_required(*roles: Role) -> Callable[[F], F]:
    """Refuse the view (403) unless the user holds one of the roles."""

    def decorator(view: F) -> F:
        @wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if not has_role(*roles):
                abort(403)
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorator


def restrict(bp: Blueprint, *roles: Role) -> None:
    """Refuse every view of the blueprint (403) unless the user holds one of the roles."""

    @bp.before_request
    def _check_role() -> None:
        if current_user.is_authenticated and not has_role(*roles):
            abort(403)


DESK_ROLES = (Role.ADMIN, Role.MANAGER, Role.VIEWER)
EDITOR_ROLES = (Role.ADMIN, Role.MANAGER)
WAREHOUSE_ROLES = (Role.ADMIN, Role.MANAGER, Role.WAREHOUSE)
