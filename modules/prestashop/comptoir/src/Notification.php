<?php
/**
 * @license AGPL-3.0-or-later
 */

namespace Comptoir;

if (!defined('_PS_VERSION_')) {
    exit;
}

/**
 * Which order changed, when, and how: the body of docs/NOTIFICATIONS.md, never the order itself.
 */
final class Notification
{
    public const CONTRACT_VERSION = 1;
    public const MAX_CHANGE_ID = 100;

    public function __construct(
        public readonly string $event,
        public readonly string $orderId,
        public readonly string $dateUpd,
        public readonly string $changeId = ''
    ) {
    }

    /** The "Send a test notification" button's ping. */
    public static function test(): self
    {
        return new self('test', '', '');
    }

    /** One notification per order and event per request: the later one replaces the earlier. */
    public function key(): string
    {
        return $this->event . ':' . $this->orderId;
    }

    public function orderIdAsInt(): int
    {
        return (int) $this->orderId;
    }

    /** The JSON body, exactly the bytes that are signed and sent. */
    public function body(\DateTimeImmutable $sentAt, string $moduleVersion, string $platformVersion): string
    {
        $body = [
            'version' => self::CONTRACT_VERSION,
            'event' => $this->event,
            'order_id' => $this->orderId,
            'date_upd' => $this->dateUpd,
        ];
        if ($this->changeId !== '') {
            $body['change_id'] = mb_substr($this->changeId, 0, self::MAX_CHANGE_ID, 'UTF-8');
        }
        $body['sent_at'] = $sentAt->format(DATE_ATOM);
        $body['module_version'] = $moduleVersion;
        $body['platform_version'] = $platformVersion;

        return json_encode(
            $body,
            JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE | JSON_INVALID_UTF8_SUBSTITUTE | JSON_THROW_ON_ERROR
        );
    }
}
