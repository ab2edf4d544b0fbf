<?php
/**
 * @license AGPL-3.0-or-later
 */

namespace Comptoir;

if (!defined('_PS_VERSION_')) {
    exit;
}

/** The configuration page's rules, apart from PrestaShop's form helpers. */
final class SettingsForm
{
    /** An absolute http(s) URL with a host: Comptoir's webhook URL, shop key included. */
    public static function isWebhookUrl(string $url): bool
    {
        if (filter_var($url, FILTER_VALIDATE_URL) === false) {
            return false;
        }
        $scheme = strtolower((string) parse_url($url, PHP_URL_SCHEME));

        return in_array($scheme, ['http', 'https'], true) && (string) parse_url($url, PHP_URL_HOST) !== '';
    }

    /** The saved secret as the page shows it: its last 4 characters at most. */
    public static function mask(string $secret): string
    {
        if ($secret === '') {
            return '';
        }

        return str_repeat('•', 8) . (strlen($secret) >= 16 ? substr($secret, -4) : '');
    }
}
