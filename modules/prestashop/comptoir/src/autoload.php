<?php
/**
 * PSR-4 loading of the Comptoir\ classes without a vendor/ folder: the module ships as one
 * zip and needs nothing but PHP's curl and json extensions.
 *
 * @license AGPL-3.0-or-later
 */
if (!defined('_PS_VERSION_')) {
    exit;
}

spl_autoload_register(static function (string $class): void {
    $prefix = 'Comptoir\\';
    if (strncmp($class, $prefix, strlen($prefix)) !== 0) {
        return;
    }
    $file = __DIR__ . '/' . str_replace('\\', '/', substr($class, strlen($prefix))) . '.php';
    if (is_file($file)) {
        require $file;
    }
});
