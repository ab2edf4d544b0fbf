<?php

declare(strict_types=1);

namespace Comptoir\Connector\Notification;

final class SystemClock implements Clock
{
    public function now(): \DateTimeImmutable
    {
        return new \DateTimeImmutable('now');
    }
}
