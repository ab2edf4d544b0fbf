<?php
/**
 * One notification from the module as shipped, in a PHP process of its own: the module's own
 * notifier (its signing, its curl transport, the settings it reads from PrestaShop's
 * configuration, here the stubs) sends it now, and Comptoir's answer is printed as one JSON
 * line. The `test` event goes through the configuration page's "Send a test notification"
 * button instead, and the page's message is printed. For Comptoir's contract test and its
 * propagation bench.
 *
 *   php notify.php <webhook url> <secret> <order id> <date_upd> <event> [tamper]
 *
 * `tamper`: the body is changed on its way, after it was signed (Comptoir must refuse it).
 *
 * @license AGPL-3.0-or-later
 */
require __DIR__ . '/../stubs/prestashop.php';
require __DIR__ . '/../../comptoir/comptoir.php';

use Comptoir\ConfigurationSettings;
use Comptoir\CurlTransport;
use Comptoir\Notification;
use Comptoir\Notifier;
use Comptoir\Response;
use Comptoir\ShopLogger;
use Comptoir\SystemClock;
use Comptoir\Transport;

if ($argc < 6) {
    fwrite(STDERR, "usage: php notify.php <webhook url> <secret> <order id> <date_upd> <event> [tamper]\n");
    exit(2);
}
[, $url, $secret, $orderId, $dateUpd, $event] = $argv;
$tamper = ($argv[6] ?? '') === 'tamper';

/** A man in the middle: the signed body's order id changed before it leaves. */
final class TamperingTransport implements Transport
{
    public function __construct(private readonly Transport $inner)
    {
    }

    public function post(string $url, string $body, array $headers): Response
    {
        $changed = preg_replace('/"order_id":"(\d*)"/', '"order_id":"${1}9"', $body, 1);

        return $this->inner->post($url, (string) $changed, $headers);
    }
}

/** The module, with its notifier in reach (and on a tampering line when asked). */
final class DriverModule extends Comptoir
{
    public function __construct(private readonly bool $tamper)
    {
        parent::__construct();
    }

    public function sendNow(Notification $notification): Comptoir\Outcome
    {
        return $this->notifier()->send($notification);
    }

    protected function notifier(): Notifier
    {
        if (!$this->tamper) {
            return parent::notifier();
        }

        return new Notifier(
            new ConfigurationSettings(),
            new TamperingTransport(new CurlTransport()),
            new SystemClock(),
            new ShopLogger(),
            $this->version,
            _PS_VERSION_
        );
    }
}

$module = new DriverModule($tamper);
if ($event === 'test') {
    // The merchant pastes the URL and secret and clicks the button.
    Tools::$values = [
        'submitComptoirTest' => '1',
        ConfigurationSettings::URL => $url,
        ConfigurationSettings::SECRET => $secret,
    ];
    echo json_encode(['page' => $module->getContent()], JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE), "\n";
    exit(0);
}
Configuration::updateValue(ConfigurationSettings::URL, $url);
Configuration::updateValue(ConfigurationSettings::SECRET, $secret, true);
$outcome = $module->sendNow(new Notification($event, $orderId, $dateUpd));
echo json_encode([
    'accepted' => $outcome->accepted,
    'status' => $outcome->status,
    'detail' => $outcome->detail,
], JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE), "\n";
