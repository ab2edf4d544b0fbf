<?php
/**
 * PrestaShop's classes stubbed (tests/stubs), then the module as PrestaShop would load it.
 *
 * @license AGPL-3.0-or-later
 */
error_reporting(E_ALL);
set_error_handler(static function (int $severity, string $message, string $file, int $line): bool {
    // Deprecations and notices fail the tests: the module must run clean on PHP 8.1 to 8.4.
    if ((error_reporting() & $severity) === 0) {
        return false; // silenced with @ on purpose
    }
    throw new \ErrorException($message, 0, $severity, $file, $line);
});

require __DIR__ . '/stubs/prestashop.php';
require __DIR__ . '/../comptoir/comptoir.php';
require __DIR__ . '/Fakes.php';
