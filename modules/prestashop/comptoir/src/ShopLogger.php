<?php
/**
 * @license AGPL-3.0-or-later
 */

namespace Comptoir;

if (!defined('_PS_VERSION_')) {
    exit;
}

/** PrestaShop's Logs page (Advanced Parameters > Logs), on the order's line. */
final class ShopLogger implements Logger
{
    public function log(int $severity, string $message, int $orderId): void
    {
        try {
            // Older PrestaShop 8 releases validate log messages with isMessage: no <>{}.
            $message = strtr($message, ['<' => '(', '>' => ')', '{' => '(', '}' => ')']);
            \PrestaShopLogger::addLog('Comptoir: ' . $message, $severity, null, 'Order', $orderId, true);
        } catch (\Throwable $e) {
            // A log that cannot be written must not break the page either.
        }
    }
}
