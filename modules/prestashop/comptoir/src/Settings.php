<?php
/**
 * @license AGPL-3.0-or-later
 */

namespace Comptoir;

if (!defined('_PS_VERSION_')) {
    exit;
}

/** Where notifications go and the secret that signs them; '' when not configured. */
interface Settings
{
    public function url(): string;

    public function secret(): string;
}
