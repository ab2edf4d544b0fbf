"""Shop settings (admin only): connection, webhooks, mappings, sync now and backfill."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, abort, current_app, flash, request, url_for
from flask.typing import ResponseReturnValue
from flask_babel import gettext as _
from flask_babel import lazy_gettext as _l
from flask_babel import ngettext
from flask_login import current_user

from web import htmx
from web.models import Shop
from web.models.enums import IssuePolicy, Milestone, Platform, Role, ShopStatusMeaning
from web.services import shop_settings, shops, sync_log
from web.services.errors import NotFound, ValidationFailed
from web.services.shop_settings import ShopAnswer
from web.views.base import db, restrict
from web.views.events import translated

bp = Blueprint("shops", __name__, url_prefix="/shops")
restrict(bp, Role.ADMIN)

# Our own words for each kind of failure: never what answered at the address, which may be
# anything (see web/connectors/addresses.py).
ANSWER_MESSAGES = {
    "no_credentials": _l(
        "The shop has no API credentials yet: type them in the settings below. Nothing was sent."
    ),
    "refused_address": _l(
        "Comptoir does not connect to this address: it leads to this server, a private network "
        "or a reserved range. Enter the shop's public https:// address."
    ),
    "unreachable": _l("Cannot reach the shop. Check its address and that it is online."),
    "timeout": _l("The shop did not answer in time. Try again, or check its address."),
    "tls": _l(
        "The secure connection to the shop failed: its certificate does not match its address, "
        "or it does not speak https."
    ),
    "redirect": _l(
        "The shop's address redirects elsewhere, and Comptoir follows no redirect. Enter the "
        "address it leads to."
    ),
    "status": _l("The shop answered with an error status."),
    "auth": _l("The shop refused the credentials. Check the API key and secret."),
    "rate_limited": _l("The shop asks Comptoir to slow down. Try again in a minute."),
    "not_found": _l("The shop answered, but not as its API would. Check the address."),
    "unsupported": _l("Comptoir cannot do this for this platform yet."),
    "error": _l("The shop answered with an error."),
}

# What each platform calls the two credentials (None: the platform has no second one).
CREDENTIAL_LABELS = {
    Platform.SHOPIFY: (_l("Admin API access token"), _l("API secret key (app client secret)")),
    Platform.WOOCOMMERCE: (_l("Consumer key"), _l("Consumer secret")),
    Platform.PRESTASHOP: (_l("Webservice key"), None),
    Platform.MAGENTO: (_l("Integration access token"), None),
}

FORM_FIELDS = (
    "name",
    "base_url",
    "import_from",
    "poll_interval_seconds",
    "invoice_policy",
    "api_calls_per_second",
)


@bp.context_processor
def _choices() -> dict[str, Any]:
    return {
        "platforms": list(Platform),
        "meanings": list(ShopStatusMeaning),
        "milestones": list(Milestone),
        "policies": list(IssuePolicy),
        "flags": shop_settings.FLAG_FIELDS,
        "credential_labels": CREDENTIAL_LABELS,
        "answer_messages": ANSWER_MESSAGES,
    }


def _shop(key: str) -> Shop:
    try:
        return shop_settings.get_shop(db(), key)
    except NotFound:
        abort(404)


def _form_fields(form: Any, *, with_flags: bool) -> dict[str, Any]:
    fields = {name: form.get(name) for name in FORM_FIELDS if name in form}
    fields.update({name: form.get(name, "") for name in shop_settings.SECRET_FIELDS})
    if with_flags:
        fields.update({name: name in form for name in shop_settings.FLAG_FIELDS})
    return fields


@bp.get("/")
def index() -> ResponseReturnValue:
    """List the shops with how fresh their sync is."""
    late = {row.shop.id for row in sync_log.cursors(db()) if row.is_late}
    return htmx.render("shops/index.html", shops=shops.list_shops(db()), late=late)


@bp.get("/new")
def new() -> ResponseReturnValue:
    return htmx.render("shops/new.html", form={}, errors={})


@bp.post("/")
def create() -> ResponseReturnValue:
    """Create a shop, then show its settings page with the webhook URL and secret."""
    form = request.form
    try:
        shop = shop_settings.add_shop(
            db(), form.get("platform", ""), **_form_fields(form, with_flags=False)
        )
    except ValidationFailed as exc:
        db().rollback()
        return htmx.render("shops/new.html", status=422, form=form, errors=exc.errors)
    db().commit()
    flash(_("Shop %(name)s created. Now connect it to Comptoir below.", name=shop.name), "success")
    return htmx.redirect_after_post(url_for("shops.edit", key=shop.key))


def _edit_page(shop: Shop, status: int = 200, **context: Any) -> ResponseReturnValue:
    cursor = next((row for row in sync_log.cursors(db()) if row.shop.id == shop.id), None)
    if shop_settings.sends_notifications(shop):
        context["notifications"] = shop_settings.notification_status(
            shop, cursor.last_run_at if cursor is not None else None
        )
    context.setdefault("form", {})
    context.setdefault("errors", {})
    return htmx.render(
        "shops/edit.html",
        status=status,
        shop=shop,
        webhook_url=shops.webhook_url(current_app.config["BASE_URL"], shop),
        has_webhooks=shop_settings.platform_has_webhooks(shop),
        readme_url=current_app.config["README_URL"],
        can_register=shop_settings.can_register_webhooks(shop),
        needs_credentials=shop_settings.needs_credentials(shop),
        cursor=cursor,
        jobs=shop_settings.open_jobs(db(), shop),
        **context,
    )


@bp.get("/<key>")
def edit(key: str) -> ResponseReturnValue:
    """The shop's settings page."""
    return _edit_page(_shop(key))


@bp.post("/<key>")
def update(key: str) -> ResponseReturnValue:
    shop = _shop(key)
    old_url = shop.base_url
    try:
        shop_settings.update_shop(
            db(),
            shop,
            actor=current_user._get_current_object(),
            address=request.remote_addr or "",
            **_form_fields(request.form, with_flags=True),
        )
    except ValidationFailed as exc:
        db().rollback()
        return _edit_page(_shop(key), 422, form=request.form, errors=exc.errors)
    db().commit()
    flash(_("Settings saved."), "success")
    if shop.base_url != old_url and shop_settings.needs_credentials(shop):
        flash(
            _("The shop's address changed: its API credentials were cleared. Type them again."),
            "info",
        )
    return htmx.redirect_after_post(url_for("shops.edit", key=key))


@bp.post("/<key>/webhook-secret")
def new_webhook_secret(key: str) -> ResponseReturnValue:
    """Replace the webhook secret; the merchant pastes the new one into the shop."""
    shop_settings.regenerate_webhook_secret(db(), _shop(key))
    db().commit()
    flash(_("New webhook secret generated. Paste it into the shop now."), "success")
    return htmx.redirect_after_post(url_for("shops.edit", key=key))


def _answer(shop: Shop, answer: ShopAnswer, action: str) -> ResponseReturnValue:
    """Show a shop's answer inline (htmx), or as a message on the settings page."""
    if htmx.is_htmx_request():
        return htmx.render(
            "shops/_answer.html", "shops/_answer.html", shop=shop, answer=answer, action=action
        )
    if answer.ok:
        flash(_answer_text(answer, action), "success")
    else:
        detail = f" ({answer.detail})" if answer.detail else ""
        flash(f"{ANSWER_MESSAGES[answer.kind]}{detail}", "error")
    return htmx.redirect_after_post(url_for("shops.edit", key=shop.key))


def _answer_text(answer: ShopAnswer, action: str) -> str:
    if action == "test":
        return _("Connected: %(detail)s", detail=answer.detail)
    if answer.items:
        return ngettext(
            "%(num)s webhook registered in the shop.",
            "%(num)s webhooks registered in the shop.",
            len(answer.items),
        )
    return _("The shop already sends every webhook Comptoir needs.")


@bp.app_template_global()
def answer_text(answer: ShopAnswer, action: str) -> str:
    """The sentence shown for a successful test or registration."""
    return _answer_text(answer, action)


@bp.post("/<key>/test")
def test_connection(key: str) -> ResponseReturnValue:
    """Call the shop with its stored credentials and show what it answered."""
    shop = _shop(key)
    return _answer(shop, shop_settings.test_connection(shop), "test")


@bp.post("/<key>/webhooks")
def register_webhooks(key: str) -> ResponseReturnValue:
    """Subscribe Comptoir's webhook URL in the shop through its API."""
    shop = _shop(key)
    answer = shop_settings.register_webhooks(db(), shop, current_app.config["BASE_URL"])
    db().commit()
    return _answer(shop, answer, "webhooks")


# --- Sync now, backfill and their progress ---------------------------------------------------


def _job_started(shop: Shop, job_id: int) -> ResponseReturnValue:
    db().commit()
    if htmx.is_htmx_request():
        return job_status(shop.key, job_id)
    return htmx.redirect_after_post(url_for("shops.job_status", key=shop.key, job_id=job_id))


@bp.post("/<key>/sync")
def sync_now(key: str) -> ResponseReturnValue:
    """Queue a poll of the shop and show its progress."""
    shop = _shop(key)
    job = shop_settings.start_sync(db(), shop, current_user.id)
    return _job_started(shop, job.id)


@bp.post("/<key>/backfill")
def backfill(key: str) -> ResponseReturnValue:
    """Queue an import of the shop's orders changed since a date."""
    shop = _shop(key)
    try:
        job = shop_settings.start_backfill(db(), shop, request.form.get("since"), current_user.id)
    except ValidationFailed as exc:
        db().rollback()
        if htmx.is_htmx_request():
            return htmx.render(
                "shops/_backfill_error.html",
                "shops/_backfill_error.html",
                status=422,
                message=translated(exc.errors["since"]),
            )
        return _edit_page(_shop(key), 422, backfill_error=translated(exc.errors["since"]))
    return _job_started(shop, job.id)


@bp.get("/<key>/jobs/<id:job_id>")
def job_status(key: str, job_id: int) -> ResponseReturnValue:
    """A job's state and result; the fragment polls itself every second until done."""
    shop = _shop(key)
    try:
        job = shop_settings.get_job(db(), shop, job_id)
    except NotFound:
        abort(404)
    return htmx.render("shops/job.html", "shops/_job.html", shop=shop, job=job)


# --- Mappings --------------------------------------------------------------------------------


def _mappings_context(shop: Shop, **context: Any) -> dict[str, Any]:
    context.setdefault("errors", {})
    context.setdefault("form", {})
    context.setdefault("failed_kind", None)
    return {
        "shop": shop,
        "modes": shop_settings.shipping_modes(db()),
        "blocking": shop_settings.blocking_values(db(), shop),
        **context,
    }


@bp.get("/<key>/mappings")
def mappings(key: str) -> ResponseReturnValue:
    """Statuses, milestones, carriers and payment methods, with what blocks orders first."""
    shop = _shop(key)
    return htmx.render("shops/mappings.html", "shops/_mappings.html", **_mappings_context(shop))


@bp.get("/<key>/mappings/shop-lists")
def shop_lists(key: str) -> ResponseReturnValue:
    """Ask the shop for its own statuses, carriers and payment methods, with suggestions."""
    shop = _shop(key)
    catalog = shop_settings.shop_catalog(db(), shop)
    return htmx.render(
        "shops/mappings.html", "shops/_shop_lists.html", **_mappings_context(shop, catalog=catalog)
    )


def _kind(kind: str) -> str:
    if kind not in shop_settings.MAPPING_MODELS:
        abort(404)
    return kind


@bp.post("/<key>/mappings/<kind>")
def mapping_add(key: str, kind: str) -> ResponseReturnValue:
    """Add a mapping (or change the one with the same shop value)."""
    shop, kind = _shop(key), _kind(kind)
    try:
        shop_settings.save_mapping(db(), shop, kind, request.form)
    except ValidationFailed as exc:
        db().rollback()
        context = _mappings_context(
            _shop(key), errors=exc.errors, form=request.form, failed_kind=kind
        )
        return htmx.render("shops/mappings.html", "shops/_mappings.html", status=422, **context)
    db().commit()
    return _after_mapping_change(shop, _("Mapping saved."))


@bp.post("/<key>/mappings/<kind>/<id:mapping_id>")
def mapping_edit(key: str, kind: str, mapping_id: int) -> ResponseReturnValue:
    """Change one mapping row in place."""
    shop, kind = _shop(key), _kind(kind)
    errors: dict[str, str] = {}
    try:
        shop_settings.update_mapping(db(), shop, kind, mapping_id, request.form.to_dict())
        db().commit()
    except NotFound:
        abort(404)
    except ValidationFailed as exc:
        db().rollback()
        errors = exc.errors
    if not htmx.is_htmx_request():
        if errors:
            reason = translated(next(iter(errors.values())))
            flash(_("The mapping was not saved: %(reason)s", reason=reason), "error")
        else:
            flash(_("Mapping saved."), "success")
        return htmx.redirect_after_post(url_for("shops.mappings", key=key))
    mapping = shop_settings.get_mapping(db(), shop, kind, mapping_id)
    return htmx.render(
        f"shops/_{kind}_row.html",
        f"shops/_{kind}_row.html",
        status=422 if errors else 200,
        **_mappings_context(shop, mapping=mapping, row_errors=errors, saved=not errors),
    )


@bp.post("/<key>/mappings/<kind>/<id:mapping_id>/delete")
def mapping_delete(key: str, kind: str, mapping_id: int) -> ResponseReturnValue:
    shop, kind = _shop(key), _kind(kind)
    try:
        shop_settings.delete_mapping(db(), shop, kind, mapping_id)
    except NotFound:
        abort(404)
    db().commit()
    return _after_mapping_change(shop, _("Mapping removed."))


def _after_mapping_change(shop: Shop, message: str) -> ResponseReturnValue:
    if htmx.is_htmx_request():
        response = htmx.render(
            "shops/mappings.html",
            "shops/_mappings.html",
            **_mappings_context(shop, notice=message),
        )
        return htmx.trigger(response, "mappings-changed")
    flash(message, "success")
    return htmx.redirect_after_post(url_for("shops.mappings", key=shop.key))
