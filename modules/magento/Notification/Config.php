<?php

declare(strict_types=1);

namespace Comptoir\Connector\Notification;

/**
 * The module's settings, as Stores > Configuration > Sales > Comptoir holds them.
 */
interface Config
{
    public function isEnabled(): bool;

    public function webhookUrl(): string;

    /** The secret in clear (stored encrypted by Magento). */
    public function secret(): string;

    /** The whole request's limit; the connection gets at most one second of it. */
    public function timeoutSeconds(): float;

    /** e.g. "2.4.7" */
    public function platformVersion(): string;
}
