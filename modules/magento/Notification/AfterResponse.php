<?php

declare(strict_types=1);

namespace Comptoir\Connector\Notification;

/** Runs work once the shop has answered its own request, so no buyer waits for it. */
interface AfterResponse
{
    public function defer(callable $work): void;
}
