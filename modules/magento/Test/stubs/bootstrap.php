<?php

declare(strict_types=1);

require __DIR__ . '/magento.php';

// The module's composer autoload (psr-4 "Comptoir\\Connector\\" => module root).
spl_autoload_register(static function (string $class): void {
    $prefix = 'Comptoir\\Connector\\';
    if (str_starts_with($class, $prefix)) {
        $file = dirname(__DIR__, 2) . '/' . str_replace('\\', '/', substr($class, strlen($prefix))) . '.php';
        if (is_file($file)) {
            require $file;
        }
    }
});
