<?php

// One notification from the module as shipped, in a PHP process of its own: the module's own
// Sender (its body, its signing, its curl transport) reading its settings through the module's
// Config (Stores > Configuration; Magento's config, encryptor and version are the stubs' here)
// sends it now, and the outcome is printed as one JSON line. The `test` event is what the
// configuration page's button sends (Sender::sendTest). For Comptoir's contract test and its
// propagation bench.
//
//   php notify.php <webhook url> <secret> <order id> <updated_at> <event> [tamper]
//
// `tamper`: the body is changed on its way, after it was signed (Comptoir must refuse it).

declare(strict_types=1);

require dirname(__DIR__) . '/stubs/bootstrap.php';

use Comptoir\Connector\Model\Config;
use Comptoir\Connector\Notification\CurlTransport;
use Comptoir\Connector\Notification\Notification;
use Comptoir\Connector\Notification\Response;
use Comptoir\Connector\Notification\Sender;
use Comptoir\Connector\Notification\SystemClock;
use Comptoir\Connector\Notification\Transport;
use Comptoir\Connector\Test\Unit\Fake\MemoryLogger;
use Magento\Framework\App\Config\ScopeConfigInterface;
use Magento\Framework\App\ProductMetadataInterface;
use Magento\Framework\Encryption\EncryptorInterface;

if ($argc < 6) {
    fwrite(STDERR, "usage: php notify.php <webhook url> <secret> <order id> <updated_at> <event> [tamper]\n");
    exit(2);
}
[, $url, $secret, $orderId, $updatedAt, $event] = $argv;
$tamper = ($argv[6] ?? '') === 'tamper';

/** Stores > Configuration as the merchant saved it (the secret encrypted, as Magento keeps it). */
$scopeConfig = new class ([
    Config::XML_PATH_ENABLED => '1',
    Config::XML_PATH_WEBHOOK_URL => $url,
    Config::XML_PATH_SECRET => 'encrypted:' . $secret,
]) implements ScopeConfigInterface {
    /** @param array<string, string> $values */
    public function __construct(private readonly array $values)
    {
    }

    public function getValue($path, $scopeType = ScopeConfigInterface::SCOPE_TYPE_DEFAULT, $scopeCode = null)
    {
        return $this->values[$path] ?? null;
    }

    public function isSetFlag($path, $scopeType = ScopeConfigInterface::SCOPE_TYPE_DEFAULT, $scopeCode = null)
    {
        return !empty($this->values[$path]);
    }
};
$encryptor = new class () implements EncryptorInterface {
    public function encrypt($data)
    {
        return 'encrypted:' . $data;
    }

    public function decrypt($data)
    {
        return substr((string) $data, strlen('encrypted:'));
    }
};
$metadata = new class () implements ProductMetadataInterface {
    public function getVersion()
    {
        return '2.4.7';
    }
};

/** A man in the middle: the signed body's order id changed before it leaves. */
final class TamperingTransport implements Transport
{
    public function __construct(private readonly Transport $inner)
    {
    }

    public function post(string $url, array $headers, string $body, float $timeoutSeconds): Response
    {
        $changed = preg_replace('/"order_id":"(\d*)"/', '"order_id":"${1}9"', $body, 1);
        return $this->inner->post($url, $headers, (string) $changed, $timeoutSeconds);
    }
}

$transport = $tamper ? new TamperingTransport(new CurlTransport()) : new CurlTransport();
$sender = new Sender(new Config($scopeConfig, $encryptor, $metadata), $transport, new SystemClock(), new MemoryLogger());
$outcome = $event === Notification::TEST
    ? $sender->sendTest()
    : $sender->send(new Notification($event, $orderId, $updatedAt));
echo json_encode([
    'accepted' => $outcome->delivered,
    'status' => $outcome->status,
    'detail' => $outcome->message,
], JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE), "\n";
