<?php

declare(strict_types=1);

namespace Comptoir\Connector\Model;

use Comptoir\Connector\Notification\Config as NotificationConfig;
use Magento\Framework\App\Config\ScopeConfigInterface;
use Magento\Framework\App\ProductMetadataInterface;
use Magento\Framework\Encryption\EncryptorInterface;

/** Reads Stores > Configuration > Sales > Comptoir (default scope). */
class Config implements NotificationConfig
{
    public const XML_PATH_ENABLED = 'comptoir/notifications/enabled';
    public const XML_PATH_WEBHOOK_URL = 'comptoir/notifications/webhook_url';
    public const XML_PATH_SECRET = 'comptoir/notifications/secret';
    public const XML_PATH_TIMEOUT = 'comptoir/notifications/timeout';
    public const DEFAULT_TIMEOUT = 2.0;
    public const MAX_TIMEOUT = 10.0;

    public function __construct(
        private readonly ScopeConfigInterface $scopeConfig,
        private readonly EncryptorInterface $encryptor,
        private readonly ProductMetadataInterface $productMetadata,
    ) {
    }

    public function isEnabled(): bool
    {
        return $this->scopeConfig->isSetFlag(self::XML_PATH_ENABLED);
    }

    public function webhookUrl(): string
    {
        return trim((string) $this->scopeConfig->getValue(self::XML_PATH_WEBHOOK_URL));
    }

    public function secret(): string
    {
        $stored = (string) $this->scopeConfig->getValue(self::XML_PATH_SECRET);
        return $stored === '' ? '' : trim($this->encryptor->decrypt($stored));
    }

    public function timeoutSeconds(): float
    {
        $value = $this->scopeConfig->getValue(self::XML_PATH_TIMEOUT);
        if (!is_numeric($value) || (float) $value <= 0) {
            return self::DEFAULT_TIMEOUT;
        }
        return min((float) $value, self::MAX_TIMEOUT);
    }

    public function platformVersion(): string
    {
        return $this->productMetadata->getVersion();
    }
}
