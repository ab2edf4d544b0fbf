"""Comments on an order: internal notes stay in Comptoir, customer-visible ones go to the shop."""

from __future__ import annotations

from sqlalchemy.orm import Session

from web.i18n import N_
from web.models import Comment, OutboxMessage, utcnow
from web.models.enums import CommentVisibility, OutboxState, Role
from web.models.orders import Order
from web.models.users import User
from web.services import outbox
from web.services.errors import InvalidTransition, ValidationFailed
from web.services.timeline import Actor, excerpt, record_event

TEXT_MAX_LENGTH = 4000
EXCERPT_LENGTH = 200
ON_ITS_WAY = (OutboxState.PENDING, OutboxState.FAILED, OutboxState.SENT)


def clean_text(text: str) -> str:
    """The comment's text, trimmed; ValidationFailed when empty or too long."""
    cleaned = (text or "").strip()
    if not cleaned:
        message = N_("Write the comment first.")
        raise ValidationFailed(message, {"text": message})
    if len(cleaned) > TEXT_MAX_LENGTH:
        message = N_("Keep the comment under 4,000 characters.")
        raise ValidationFailed(message, {"text": message})
    return cleaned


def visibility_of(value: CommentVisibility | str) -> CommentVisibility:
    """Read who sees a comment; ValidationFailed for anything but internal or customer."""
    try:
        return CommentVisibility(value)
    except ValueError:
        message = N_("Choose who sees the comment: internal or customer.")
        raise ValidationFailed(message, {"visibility": message}) from None


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
    cleaned = clean_text(text)
    visibility = visibility_of(visibility)
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
        {"comment_id": comment.id, "notify": notify, "excerpt": excerpt(cleaned, EXCERPT_LENGTH)},
    )
    outbox.queue_comment(session, comment)
    return comment


def can_change(
    comment: Comment, user: User | None = None, message: OutboxMessage | None = None
) -> bool:
    """Tell whether the comment may still be edited or deleted (by this user, when given).

    Only internal comments that never left Comptoir and are not on their way to the shop as
    a private note, by their author or an admin. `message` is the comment's outbox message
    (`outbox.comment_messages` reads them all for a page in one query).
    """
    return _refusal(comment, user, message) is None


def _refusal(comment: Comment, user: User | None, message: OutboxMessage | None) -> str | None:
    if comment.visibility != CommentVisibility.INTERNAL:
        return N_("a comment for the buyer cannot be changed once written")
    if comment.pushed_at is not None or (message is not None and message.state in ON_ITS_WAY):
        return N_("the comment was already sent to the shop")
    if user is not None and user.role != Role.ADMIN and comment.author_id != user.id:
        return N_("only its author or an admin can change it")
    return None


def _changeable(session: Session, comment: Comment, user: User | None) -> OutboxMessage | None:
    """Refuse the change (InvalidTransition) or return the comment's given-up message."""
    message = outbox.comment_message(session, comment)
    reason = _refusal(comment, user, message)
    if reason is not None:
        raise InvalidTransition("comment", reason)
    return message


def edit_comment(
    session: Session, comment: Comment, actor: Actor, text: str, user: User | None = None
) -> None:
    """Change the text of an internal comment."""
    message = _changeable(session, comment, user)
    cleaned = clean_text(text)
    if cleaned == comment.text:
        return
    previous = comment.text
    comment.text = cleaned
    comment.updated_at = utcnow()
    if message is not None:
        # Given up earlier: a person who sends it again sends what it says now.
        message.payload = {**message.payload, "text": cleaned}
    record_event(
        session,
        comment.order,
        actor,
        "comment.edited",
        {
            "comment_id": comment.id,
            "previous": previous,
            "excerpt": excerpt(cleaned, EXCERPT_LENGTH),
        },
    )


def delete_comment(
    session: Session, comment: Comment, actor: Actor, user: User | None = None
) -> None:
    """Delete an internal comment; the timeline keeps what it said."""
    message = _changeable(session, comment, user)
    if message is not None:
        message.state = OutboxState.IGNORED
        message.last_error = "The comment was deleted."
    record_event(
        session,
        comment.order,
        actor,
        "comment.deleted",
        {
            "comment_id": comment.id,
            "text": comment.text,
            "excerpt": excerpt(comment.text, EXCERPT_LENGTH),
        },
    )
    session.delete(comment)
