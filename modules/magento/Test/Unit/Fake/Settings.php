<?php

declare(strict_types=1);

namespace Comptoir\Connector\Test\Unit\Fake;

use Comptoir\Connector\Notification\Config;

final class Settings implements Config
{
    public function __construct(
        public bool $enabled = true,
        public string $url = 'https://comptoir.example.com/hooks/magento/ab12cd34',
        public string $secret = 'whsec-comptoir-42',
        public float $timeout = 2.0,
    ) {
    }

    public function isEnabled(): bool
    {
        return $this->enabled;
    }

    public function webhookUrl(): string
    {
        return $this->url;
    }

    public function secret(): string
    {
        return $this->secret;
    }

    public function timeoutSeconds(): float
    {
        return $this->timeout;
    }

    public function platformVersion(): string
    {
        return '2.4.7';
    }
}
