<?php
/**
 * @license AGPL-3.0-or-later
 */

namespace Comptoir;

if (!defined('_PS_VERSION_')) {
    exit;
}

/** The shop's log, where failed notifications are written (never shown to the buyer). */
interface Logger
{
    public const WARNING = 2;
    public const ERROR = 3;

    /** Log one line about an order (0: no order); must never throw. */
    public function log(int $severity, string $message, int $orderId): void;
}
