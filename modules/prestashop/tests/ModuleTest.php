<?php
/**
 * The module as PrestaShop drives it: install, each hook, the end of the request, the
 * configuration page.
 *
 * @license AGPL-3.0-or-later
 */

namespace Comptoir\Tests;

use Comptoir\ConfigurationSettings;
use Comptoir\Notifier;
use Comptoir\TransportFailed;
use PHPUnit\Framework\TestCase;

final class ModuleTest extends TestCase
{
    private const ORDER_DATE = '2026-12-04 10:15:02';

    protected function setUp(): void
    {
        \StubDb::reset();
        \Configuration::$values = [];
        \PrestaShopLogger::$logs = [];
        \Tools::$values = [];
        \HelperForm::$last = null;
        \StubDb::$rows[\Order::class][1042] = [
            'id_customer' => 7,
            'date_upd' => self::ORDER_DATE,
            'id_order_carrier' => 12,
        ];
        \StubDb::$rows[\OrderCarrier::class][12] = ['id_order' => 1042, 'tracking_number' => '6A123'];
        \StubDb::$rows[\CustomerThread::class][3] = ['id_order' => 1042];
        \StubDb::$rows[\CustomerThread::class][4] = ['id_order' => 0];
        \StubDb::$slips[1042] = [
            ['id_order_slip' => 5, 'id_customer' => 7],
            ['id_order_slip' => 2, 'id_customer' => 7],
        ];
    }

    private static function order(int $id): \Order
    {
        return new \Order($id);
    }

    /** @return array<string, mixed> */
    private static function decoded(string $body): array
    {
        return json_decode($body, true, 512, JSON_THROW_ON_ERROR);
    }

    public function testInstallRegistersExactlyTheContractsHooksAndCreatesTheSettings(): void
    {
        $module = new \Comptoir();

        $this->assertTrue($module->install());

        $this->assertSame([
            'actionValidateOrder',
            'actionOrderStatusPostUpdate',
            'actionObjectOrderUpdateAfter',
            'actionOrderSlipAdd',
            'actionAdminOrdersTrackingNumberUpdate',
            'actionObjectOrderCarrierUpdateAfter',
            'actionObjectCustomerMessageAddAfter',
        ], $module->registeredHooks);
        foreach ($module->registeredHooks as $hook) {
            $this->assertTrue(method_exists($module, 'hook' . ucfirst($hook)), $hook . ' has no method');
        }
        $this->assertSame(['COMPTOIR_URL' => '', 'COMPTOIR_SECRET' => ''], \Configuration::$values);
    }

    public function testUninstallRemovesTheSettings(): void
    {
        $module = new \Comptoir();
        $module->install();
        \Configuration::$values['PS_LANG_DEFAULT'] = 1;

        $this->assertTrue($module->uninstall());

        $this->assertSame(['PS_LANG_DEFAULT' => 1], \Configuration::$values);
        $this->assertFalse($module->installed);
    }

    /** @return iterable<string, array{string, \Closure(): array<string, mixed>, string, string}> */
    public static function hooks(): iterable
    {
        yield 'order validated' => ['hookActionValidateOrder', static fn (): array => ['order' => self::order(1042)], 'order.created', ''];
        yield 'status changed' => ['hookActionOrderStatusPostUpdate', static fn (): array => ['id_order' => 1042], 'order.status_changed', ''];
        yield 'order saved' => ['hookActionObjectOrderUpdateAfter', static fn (): array => ['object' => self::order(1042)], 'order.updated', ''];
        yield 'credit slip' => ['hookActionOrderSlipAdd', static fn (): array => ['order' => self::order(1042), 'productList' => [], 'qtyList' => []], 'order.refunded', 'slip:5'];
        yield 'tracking number' => ['hookActionAdminOrdersTrackingNumberUpdate', static fn (): array => ['order' => self::order(1042)], 'order.shipped', 'tracking:12:6A123'];
        yield 'order carrier saved' => ['hookActionObjectOrderCarrierUpdateAfter', static fn (): array => ['object' => new \OrderCarrier(12)], 'order.shipped', 'tracking:12:6A123'];
        yield 'customer message' => ['hookActionObjectCustomerMessageAddAfter', static function (): array {
            $message = new \CustomerMessage();
            $message->id = 77;
            $message->id_customer_thread = 3;

            return ['object' => $message];
        }, 'order.message_added', 'message:77'];
    }

    /**
     * @dataProvider hooks
     *
     * @param \Closure(): array<string, mixed> $params
     */
    public function testEachHookSendsItsSignedNotificationAtTheEndOfTheRequest(
        string $hook,
        \Closure $params,
        string $event,
        string $changeId
    ): void {
        $rig = new Rig(RecordingTransport::answering(200, '{"status": "stored"}'));
        $module = new TestableComptoir($rig->notifier);

        $module->$hook($params());

        $this->assertSame([], $rig->transport->posts, 'sent inside the hook');
        $rig->shutdown->run();
        $this->assertSame(['response finished'], $rig->shutdown->steps);
        $this->assertCount(1, $rig->transport->posts);
        $post = $rig->transport->posts[0];
        $expected = [
            'version' => 1,
            'event' => $event,
            'order_id' => '1042',
            'date_upd' => self::ORDER_DATE,
        ];
        if ($changeId !== '') {
            $expected['change_id'] = $changeId;
        }
        $expected += [
            'sent_at' => '2026-12-04T10:15:02+01:00',
            'module_version' => '1.0.0',
            'platform_version' => '8.1.7',
        ];
        $this->assertSame($expected, self::decoded($post['body']));
        $this->assertSame(Rig::URL, $post['url']);
        $this->assertSame(
            base64_encode(hash_hmac('sha256', $post['body'], Rig::SECRET, true)),
            $post['headers']['X-Comptoir-Hmac-Sha256']
        );
        $this->assertSame($event, $post['headers']['X-Comptoir-Event']);
        $this->assertSame('application/json', $post['headers']['Content-Type']);
        $this->assertSame('Comptoir-PrestaShop/1.0.0 (PrestaShop 8.1.7)', $post['headers']['User-Agent']);
        $this->assertSame([], $rig->logger->lines);
    }

    public function testAMessageOutsideAnOrderSendsNothing(): void
    {
        $rig = new Rig(RecordingTransport::answering(200, '{"status": "stored"}'));
        $message = new \CustomerMessage();
        $message->id = 78;
        $message->id_customer_thread = 4;

        (new TestableComptoir($rig->notifier))->hookActionObjectCustomerMessageAddAfter(['object' => $message]);
        $rig->shutdown->run();

        $this->assertSame([], $rig->transport->posts);
    }

    public function testTheSameOrderAndEventTwiceInOneRequestIsSentOnce(): void
    {
        $rig = new Rig(RecordingTransport::answering(200, '{"status": "stored"}'));
        $module = new TestableComptoir($rig->notifier);

        $module->hookActionOrderStatusPostUpdate(['id_order' => 1042]);
        $module->hookActionObjectOrderUpdateAfter(['object' => self::order(1042)]);
        $module->hookActionOrderStatusPostUpdate(['id_order' => 1042]);
        $module->hookActionObjectOrderUpdateAfter(['object' => self::order(1042)]);
        $this->assertCount(1, $rig->shutdown->callbacks, 'one shutdown function per request');
        $rig->shutdown->run();

        $events = array_map(static fn (array $post): string => self::decoded($post['body'])['event'], $rig->transport->posts);
        $this->assertSame(['order.status_changed', 'order.updated'], $events);
    }

    /** @return iterable<string, array{\Closure(): RecordingTransport, int}> */
    public static function failures(): iterable
    {
        yield 'timeout' => [static fn (): RecordingTransport => RecordingTransport::timingOut(), 2];
        yield 'connection refused' => [static fn (): RecordingTransport => RecordingTransport::failing(new TransportFailed('Failed to connect to 127.0.0.1 port 9: Connection refused')), 2];
        yield 'HTTP 500' => [static fn (): RecordingTransport => RecordingTransport::answering(500, '<html>Internal Server Error</html>'), 2];
        yield 'HTTP 401' => [static fn (): RecordingTransport => RecordingTransport::answering(401, '{"error": "signature refused: wrong secret"}'), 3];
        yield 'a PHP error in the transport' => [static fn (): RecordingTransport => RecordingTransport::failing(new \TypeError('curl_exec(): bad handle')), 3];
    }

    /**
     * @dataProvider failures
     *
     * @param \Closure(): RecordingTransport $transport
     */
    public function testAFailedNotificationNeverThrowsIntoTheShopAndIsLoggedOnce(\Closure $transport, int $severity): void
    {
        $rig = new Rig($transport());
        $module = new TestableComptoir($rig->notifier);

        $module->hookActionOrderStatusPostUpdate(['id_order' => 1042]);
        $rig->shutdown->run();

        $this->assertCount(1, $rig->transport->posts);
        $this->assertCount(1, $rig->logger->lines);
        $line = $rig->logger->lines[0];
        $this->assertSame($severity, $line['severity']);
        $this->assertSame(1042, $line['order_id']);
        $this->assertStringContainsString('order.status_changed for order 1042 not sent', $line['message']);
    }

    public function testAfterATimeoutTheRestOfTheRequestIsNotSentButLoggedInOneLine(): void
    {
        $rig = new Rig(RecordingTransport::timingOut());
        $module = new TestableComptoir($rig->notifier);

        $module->hookActionOrderStatusPostUpdate(['id_order' => 1042]);
        $module->hookActionObjectOrderUpdateAfter(['object' => self::order(1042)]);
        $module->hookActionOrderSlipAdd(['order' => self::order(1042)]);
        $rig->shutdown->run();

        $this->assertCount(1, $rig->transport->posts, 'each further attempt would cost 2 s');
        $this->assertCount(2, $rig->logger->lines);
        $this->assertStringContainsString('2 more notification(s) not sent', $rig->logger->lines[1]['message']);
    }

    public function testAShopErrorInsideAHookIsLoggedInPrestaShopAndNeverThrown(): void
    {
        $rig = new Rig(RecordingTransport::answering(200, '{"status": "stored"}'));
        $module = new TestableComptoir($rig->notifier);
        \StubDb::$failure = new \RuntimeException('MySQL server has gone away');

        $module->hookActionOrderStatusPostUpdate(['id_order' => 1042]);
        $rig->shutdown->run();

        $this->assertSame([], $rig->transport->posts);
        $this->assertCount(1, \PrestaShopLogger::$logs);
        $log = \PrestaShopLogger::$logs[0];
        $this->assertSame(3, $log['severity']);
        $this->assertSame('Order', $log['object_type']);
        $this->assertSame(1042, $log['object_id']);
        $this->assertStringContainsString('MySQL server has gone away', $log['message']);
    }

    public function testAHookErrorIsLoggedOnItsOrderInAFormPrestaShopAccepts(): void
    {
        $rig = new Rig(RecordingTransport::answering(200, '{"status": "stored"}'));
        $carrier = new \OrderCarrier(12);
        \StubDb::$failure = new \RuntimeException('<b>Table {orders} is locked</b>');

        (new TestableComptoir($rig->notifier))->hookActionObjectOrderCarrierUpdateAfter(['object' => $carrier]);

        $this->assertCount(1, \PrestaShopLogger::$logs);
        $log = \PrestaShopLogger::$logs[0];
        $this->assertSame(1042, $log['object_id']);
        $this->assertStringContainsString('(b)Table (orders) is locked(/b)', $log['message']);
        $this->assertDoesNotMatchRegularExpression('/[<>{}]/', $log['message']);
    }

    public function testTheTestButtonWithABadUrlSavesNothingAndSendsNothing(): void
    {
        $rig = new Rig(RecordingTransport::answering(200, '{"status": "ping"}'));

        $page = $this->configurationPage($rig, ['submitComptoirTest' => '1', 'COMPTOIR_URL' => 'comptoir.example', 'COMPTOIR_SECRET' => 'x']);

        $this->assertStringContainsString('alert-danger">The webhook URL must be', $page);
        $this->assertSame([], $rig->transport->posts);
        $this->assertSame([], \Configuration::$values);
    }

    /** @return iterable<string, array{string, string}> */
    public static function unconfigured(): iterable
    {
        yield 'no URL' => ['', Rig::SECRET];
        yield 'no secret' => [Rig::URL, ''];
    }

    /** @dataProvider unconfigured */
    public function testNothingIsSentWithoutAUrlAndASecret(string $url, string $secret): void
    {
        $rig = new Rig(RecordingTransport::answering(200, '{"status": "stored"}'), new MemorySettings($url, $secret));
        $module = new TestableComptoir($rig->notifier);

        $module->hookActionValidateOrder(['order' => self::order(1042)]);
        $rig->shutdown->run();

        $this->assertSame([], $rig->shutdown->callbacks);
        $this->assertSame([], $rig->transport->posts);
        $this->assertSame([], $rig->logger->lines);
    }

    public function testTheModuleReadsItsSettingsFromPrestaShopsConfiguration(): void
    {
        \Configuration::$values = [ConfigurationSettings::URL => ' ' . Rig::URL . ' ', ConfigurationSettings::SECRET => ' s3cret '];
        $settings = new ConfigurationSettings();

        $this->assertSame(Rig::URL, $settings->url());
        $this->assertSame(' s3cret ', $settings->secret(), 'the secret is used exactly as given');
    }

    private const FORM = ['COMPTOIR_URL' => Rig::URL, 'COMPTOIR_SECRET' => ''];

    private function configurationPage(Rig $rig, array $submitted): string
    {
        \Tools::$values = $submitted;

        return (new TestableComptoir($rig->notifier))->getContent();
    }

    public function testTheTestButtonSendsATestNotificationAndShowsComptoirsAnswer(): void
    {
        $rig = new Rig(RecordingTransport::answering(200, '{"status": "ping"}'));

        $page = $this->configurationPage($rig, ['submitComptoirTest' => '1', 'COMPTOIR_SECRET' => 'pasted'] + self::FORM);

        $this->assertStringContainsString('alert-success">Comptoir answered: ping<', $page);
        $this->assertStringNotContainsString('Settings saved', $page);
        $this->assertSame(['COMPTOIR_URL' => Rig::URL, 'COMPTOIR_SECRET' => 'pasted'], \Configuration::$values, 'saved first');
        $this->assertCount(1, $rig->transport->posts, 'sent at once, not at shutdown');
        $body = self::decoded($rig->transport->posts[0]['body']);
        $this->assertSame(['test', '', ''], [$body['event'], $body['order_id'], $body['date_upd']]);
        $this->assertArrayNotHasKey('change_id', $body);
    }

    public function testTheTestButtonShowsARefusal(): void
    {
        $rig = new Rig(RecordingTransport::answering(401, '{"error": "signature refused: wrong secret"}'));

        \Configuration::$values['COMPTOIR_SECRET'] = Rig::SECRET;
        $page = $this->configurationPage($rig, ['submitComptoirTest' => '1'] + self::FORM);

        $this->assertStringContainsString('alert-danger">Comptoir answered 401: signature refused: wrong secret<', $page);
    }

    public function testTheTestButtonShowsAnUnreachableComptoir(): void
    {
        $rig = new Rig(RecordingTransport::timingOut());

        \Configuration::$values['COMPTOIR_SECRET'] = Rig::SECRET;
        $page = $this->configurationPage($rig, ['submitComptoirTest' => '1'] + self::FORM);

        $this->assertStringContainsString('alert-danger">Comptoir could not be reached: Operation timed out', $page);
    }

    public function testSavingTheSettingsKeepsTheSecretAsIsAndNeverShowsIt(): void
    {
        $rig = new Rig(RecordingTransport::answering(200, '{}'));
        $secret = ' whsec_0123456789<b>abcdef ';

        $page = $this->configurationPage($rig, [
            'submitComptoirSettings' => '1',
            'COMPTOIR_URL' => ' https://comptoir.example/hooks/prestashop/k1 ',
            'COMPTOIR_SECRET' => $secret,
        ]);

        $this->assertStringContainsString('alert-success', $page);
        $this->assertSame('https://comptoir.example/hooks/prestashop/k1', \Configuration::$values['COMPTOIR_URL']);
        $this->assertSame($secret, \Configuration::$values['COMPTOIR_SECRET']);
        $form = \HelperForm::$last;
        $this->assertNotNull($form);
        $this->assertSame('', $form->fields_value['COMPTOIR_SECRET']);
        $inputs = $form->forms[0]['form']['input'];
        $this->assertSame('password', $inputs[1]['type']);
        $this->assertStringContainsString('••••••••def ', $inputs[1]['desc']);
        $this->assertStringNotContainsString('0123456789', json_encode($form->forms, JSON_UNESCAPED_UNICODE));
        $this->assertSame('submitComptoirTest', $form->forms[0]['form']['buttons'][0]['name']);

        // An empty secret field keeps the saved one.
        $this->configurationPage($rig, [
            'submitComptoirSettings' => '1',
            'COMPTOIR_URL' => 'http://127.0.0.1:5000/hooks/prestashop/k2',
            'COMPTOIR_SECRET' => '',
        ]);
        $this->assertSame($secret, \Configuration::$values['COMPTOIR_SECRET']);
        $this->assertSame('http://127.0.0.1:5000/hooks/prestashop/k2', \Configuration::$values['COMPTOIR_URL']);
    }

    /** @return iterable<string, array{string}> */
    public static function badUrls(): iterable
    {
        yield 'empty' => [''];
        yield 'no scheme' => ['comptoir.example/hooks/prestashop/k1'];
        yield 'ftp' => ['ftp://comptoir.example/hooks/prestashop/k1'];
        yield 'javascript' => ['javascript:alert(1)'];
    }

    /** @dataProvider badUrls */
    public function testAUrlThatIsNotHttpIsRefused(string $url): void
    {
        $rig = new Rig(RecordingTransport::answering(200, '{}'));
        \Configuration::$values['COMPTOIR_URL'] = 'https://before.example/hooks/prestashop/k';

        $page = $this->configurationPage($rig, [
            'submitComptoirSettings' => '1',
            'COMPTOIR_URL' => $url,
            'COMPTOIR_SECRET' => 'new-secret',
        ]);

        $this->assertStringContainsString('alert-danger">The webhook URL must be a full http:// or https://', $page);
        $this->assertSame('https://before.example/hooks/prestashop/k', \Configuration::$values['COMPTOIR_URL']);
        $this->assertArrayNotHasKey('COMPTOIR_SECRET', \Configuration::$values);
    }

    public function testTheRealNotifierQueuesUntilShutdown(): void
    {
        // The module's own notifier (curl, PrestaShop's settings): not configured, it queues nothing.
        $module = new \Comptoir();
        $notifier = (new \ReflectionMethod($module, 'notifier'))->invoke($module);
        $this->assertInstanceOf(Notifier::class, $notifier);

        $module->hookActionOrderStatusPostUpdate(['id_order' => 1042]);

        $this->assertSame([], $notifier->pending());
    }
}
