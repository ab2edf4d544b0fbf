<?php
/**
 * @license AGPL-3.0-or-later
 */

namespace Comptoir;

if (!defined('_PS_VERSION_')) {
    exit;
}

/** The module's settings as PrestaShop's Configuration stores them. */
final class ConfigurationSettings implements Settings
{
    public const URL = 'COMPTOIR_URL';
    public const SECRET = 'COMPTOIR_SECRET';

    public function url(): string
    {
        return trim((string) \Configuration::get(self::URL));
    }

    public function secret(): string
    {
        return (string) \Configuration::get(self::SECRET);
    }
}
