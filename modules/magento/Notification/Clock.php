<?php

declare(strict_types=1);

namespace Comptoir\Connector\Notification;

interface Clock
{
    public function now(): \DateTimeImmutable;
}
