<?php
/**
 * @license AGPL-3.0-or-later
 */

namespace Comptoir;

if (!defined('_PS_VERSION_')) {
    exit;
}

/** The time a notification is sent (its sent_at, for logs only). */
interface Clock
{
    public function now(): \DateTimeImmutable;
}
