"""Comments on an order: internal notes stay in Comptoir, customer-visible ones go to the shop."""

from __future__ import annotations

from sqlalchemy.orm import Session

from web.i18n import N_
from web.models import Comment, utcnow
from web.models.enums import CommentVisibility, Role
from web.models.orders import Order
from web.models.users import User
from web.services import outbox
from web.services.errors import InvalidTransition, ValidationFailed
from web.services.timeline import Actor, record_event

TEXT_MAX_LENGTH = 4000
SUMMARY_LENGTH = 200


def _clean_text(text: str) -> str:
    cleaned = (text or "").strip()
    if not cleaned:
        message = N_("Write the comment first.")
        raise ValidationFailed(message, {"text": message})
    if len(cleaned) > TEXT_MAX_LENGTH:
        message = f"Keep the comment under {TEXT_MAX_LENGTH} characters."
        raise ValidationFailed(message, {"text": message})
    return cleaned


def _excerpt(text: str) -> str:
    return text if len(text) <= SUMMARY_LENGTH else text[: SUMMARY_LENGTH - 1] + "…"


def add_comment(
    session: Session,
    order: Order,
    actor: Actor,
    text: str,
    visibility: CommentVisibility | str = CommentVisibility.INTERNAL,
    *,
    notify: bool = False,
) -> Comment:
    """Write a comment; a customer-visible one is queued for the shop in the same transaction.

    Only a customer-visible comment can notify the buyer; the flag is dropped otherwise.
    """
    cleaned = _clean_text(text)
    try:
        visibility = CommentVisibility(visibility)
    except ValueError:
        message = N_("Choose who sees the comment: internal or customer.")
        raise ValidationFailed(message, {"visibility": message}) from None
    notify = bool(notify) and visibility == CommentVisibility.CUSTOMER
    comment = Comment(
        order=order,
        author_id=actor.user_id,
        text=cleaned,
        visibility=visibility,
        notify_customer=notify,
        created_at=utcnow(),
    )
    session.add(comment)
    session.flush()
    record_event(
        session,
        order,
        actor,
        f"comment.{visibility.value}",
        _excerpt(cleaned),
        {"comment_id": comment.id, "notify": notify},
    )
    outbox.queue_comment(session, comment)
    return comment


def can_change(comment: Comment, user: User | None = None) -> bool:
    """Tell whether the comment may still be edited or deleted (by this user, when given).

    Only internal comments that never left Comptoir (nor are on their way to the shop as a
    private note), by their author or an admin.
    """
    return _refusal(comment, user) is None


def _refusal(comment: Comment, user: User | None) -> str | None:
    if comment.visibility != CommentVisibility.INTERNAL:
        return N_("a comment for the buyer cannot be changed once written")
    if comment.pushed_at is not None or outbox.comment_on_its_way(comment):
        return N_("the comment was already sent to the shop")
    if user is not None and user.role != Role.ADMIN and comment.author_id != user.id:
        return N_("only its author or an admin can change it")
    return None


def _ensure_changeable(comment: Comment, user: User | None) -> None:
    reason = _refusal(comment, user)
    if reason is not None:
        raise InvalidTransition("comment", reason)


def edit_comment(
    session: Session, comment: Comment, actor: Actor, text: str, user: User | None = None
) -> None:
    """Change the text of an internal comment."""
    _ensure_changeable(comment, user)
    cleaned = _clean_text(text)
    if cleaned == comment.text:
        return
    previous = comment.text
    comment.text = cleaned
    comment.updated_at = utcnow()
    record_event(
        session,
        comment.order,
        actor,
        "comment.edited",
        _excerpt(cleaned),
        {"comment_id": comment.id, "previous": previous},
    )


def delete_comment(
    session: Session, comment: Comment, actor: Actor, user: User | None = None
) -> None:
    """Delete an internal comment; the timeline keeps what it said."""
    _ensure_changeable(comment, user)
    record_event(
        session,
        comment.order,
        actor,
        "comment.deleted",
        _excerpt(comment.text),
        {"comment_id": comment.id, "text": comment.text},
    )
    session.delete(comment)
