<?php

declare(strict_types=1);

namespace Comptoir\Connector\Notification;

final class Response
{
    public function __construct(
        public readonly int $status,
        public readonly string $body,
    ) {
    }
}
