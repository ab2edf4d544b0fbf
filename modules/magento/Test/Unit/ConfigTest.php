<?php

declare(strict_types=1);

namespace Comptoir\Connector\Test\Unit;

use Comptoir\Connector\Model\Config;
use Magento\Framework\App\Config\ScopeConfigInterface;
use Magento\Framework\App\ProductMetadataInterface;
use Magento\Framework\Encryption\EncryptorInterface;
use PHPUnit\Framework\TestCase;

final class ConfigTest extends TestCase
{
    public function testReadsTheSavedSettingsAndDecryptsTheSecret(): void
    {
        $config = $this->config([
            'comptoir/notifications/enabled' => '1',
            'comptoir/notifications/webhook_url' => ' https://comptoir.example.com/hooks/magento/ab12cd34 ',
            'comptoir/notifications/secret' => 'encrypted:whsec-comptoir-42',
            'comptoir/notifications/timeout' => '3',
        ]);

        self::assertTrue($config->isEnabled());
        self::assertSame('https://comptoir.example.com/hooks/magento/ab12cd34', $config->webhookUrl());
        self::assertSame('whsec-comptoir-42', $config->secret());
        self::assertSame(3.0, $config->timeoutSeconds());
        self::assertSame('2.4.7', $config->platformVersion());
    }

    public function testDefaultsAreOffWithATwoSecondTimeout(): void
    {
        $config = $this->config(['comptoir/notifications/timeout' => 'soon']);

        self::assertFalse($config->isEnabled());
        self::assertSame('', $config->webhookUrl());
        self::assertSame('', $config->secret());
        self::assertSame(2.0, $config->timeoutSeconds());
        self::assertSame(10.0, $this->config(['comptoir/notifications/timeout' => '600'])->timeoutSeconds());
    }

    /** @param array<string, string> $values */
    private function config(array $values): Config
    {
        $scope = new class ($values) implements ScopeConfigInterface {
            /** @param array<string, string> $values */
            public function __construct(private array $values)
            {
            }

            public function getValue($path, $scopeType = ScopeConfigInterface::SCOPE_TYPE_DEFAULT, $scopeCode = null)
            {
                return $this->values[$path] ?? null;
            }

            public function isSetFlag($path, $scopeType = ScopeConfigInterface::SCOPE_TYPE_DEFAULT, $scopeCode = null)
            {
                return (bool) ($this->values[$path] ?? false);
            }
        };
        $encryptor = new class () implements EncryptorInterface {
            public function encrypt($data)
            {
                return 'encrypted:' . $data;
            }

            public function decrypt($data)
            {
                return str_starts_with($data, 'encrypted:') ? substr($data, strlen('encrypted:')) : '';
            }
        };
        $metadata = new class () implements ProductMetadataInterface {
            public function getVersion()
            {
                return '2.4.7';
            }
        };
        return new Config($scope, $encryptor, $metadata);
    }
}
