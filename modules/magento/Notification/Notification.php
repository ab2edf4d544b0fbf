<?php

declare(strict_types=1);

namespace Comptoir\Connector\Notification;

/**
 * Which order changed, how, and when: never the order itself (docs/NOTIFICATIONS.md).
 */
final class Notification
{
    public const CREATED = 'order.created';
    public const UPDATED = 'order.updated';
    public const STATUS_CHANGED = 'order.status_changed';
    public const INVOICED = 'order.invoiced';
    public const SHIPPED = 'order.shipped';
    public const REFUNDED = 'order.refunded';
    public const MESSAGE_ADDED = 'order.message_added';
    public const TEST = 'test';

    /** The contract's limit on change_id. */
    public const CHANGE_ID_MAX = 100;

    public readonly ?string $changeId;

    public function __construct(
        public readonly string $event,
        public readonly string $orderId,
        public readonly string $dateUpd,
        ?string $changeId = null,
    ) {
        $this->changeId = $changeId === null ? null : mb_substr($changeId, 0, self::CHANGE_ID_MAX);
    }

    public static function test(): self
    {
        return new self(self::TEST, '', '');
    }

    /** One notification per order and event per request. */
    public function key(): string
    {
        return $this->orderId . '|' . $this->event;
    }
}
