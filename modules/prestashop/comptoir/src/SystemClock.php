<?php
/**
 * @license AGPL-3.0-or-later
 */

namespace Comptoir;

if (!defined('_PS_VERSION_')) {
    exit;
}

/** PHP's clock, in the shop's time zone (PrestaShop sets PHP's default from PS_TIMEZONE). */
final class SystemClock implements Clock
{
    public function now(): \DateTimeImmutable
    {
        return new \DateTimeImmutable('now');
    }
}
