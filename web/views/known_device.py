"""The known-device cookie: this browser logged in to these accounts before.

Set at each successful login, signed with the app's secret, it holds a random id for the
browser and, per account, a keyed digest of the e-mail (not the e-mail itself). The login
throttle checks a known device against its own count only, so someone spraying passwords at
an account from elsewhere cannot lock its owner out of the browsers they use. It proves
nothing else: the password is still checked, and a stolen cookie has its own growing wait.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from typing import Any

from flask import current_app, request, url_for
from itsdangerous import BadSignature, URLSafeTimedSerializer
from werkzeug.wrappers import Response

from web.services.login_throttle import account_key

COOKIE = "comptoir_device"
MAX_AGE = 180 * 24 * 3600  # seconds
MAX_ACCOUNTS = 10  # a shared warehouse computer holds several people's logins
SALT = "comptoir.known-device"


def _serializer() -> URLSafeTimedSerializer:
    return URLSafeTimedSerializer(current_app.secret_key or "", salt=SALT)


def _digest(email: str) -> str:
    secret = current_app.secret_key or ""
    key = (secret if isinstance(secret, bytes) else secret.encode()) + SALT.encode()
    return hmac.new(key, account_key(email).encode(), hashlib.sha256).hexdigest()[:32]


def _read() -> dict[str, Any]:
    raw = request.cookies.get(COOKIE)
    if not raw:
        return {}
    try:
        data = _serializer().loads(raw, max_age=MAX_AGE)
    except BadSignature:
        return {}
    if not isinstance(data, dict) or not isinstance(data.get("id"), str):
        return {}
    accounts = data.get("accounts")
    return {"id": data["id"], "accounts": accounts if isinstance(accounts, list) else []}


def device_for(email: str) -> str:
    """This browser's device id when it logged in to this account before, else ""."""
    data = _read()
    return data["id"] if data and _digest(email) in data["accounts"] else ""


def remember(response: Response, email: str) -> None:
    """Mark this browser as a known device of the account (on a successful login)."""
    data = _read() or {"id": secrets.token_urlsafe(16), "accounts": []}
    digest = _digest(email)
    accounts = [digest] + [item for item in data["accounts"] if item != digest]
    value = _serializer().dumps({"id": data["id"], "accounts": accounts[:MAX_ACCOUNTS]})
    response.set_cookie(
        COOKIE,
        value,
        max_age=MAX_AGE,
        path=url_for("auth.login"),
        secure=bool(current_app.config["SESSION_COOKIE_SECURE"]),
        httponly=True,
        samesite="Lax",
    )
