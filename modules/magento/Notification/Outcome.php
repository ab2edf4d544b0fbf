<?php

declare(strict_types=1);

namespace Comptoir\Connector\Notification;

/** What became of one notification: Comptoir's status (0 when it never answered) and why. */
final class Outcome
{
    public function __construct(
        public readonly bool $delivered,
        public readonly int $status,
        public readonly string $message,
        /** Comptoir was not reached at all: the rest of the request's notifications are skipped. */
        public readonly bool $unreachable = false,
    ) {
    }
}
