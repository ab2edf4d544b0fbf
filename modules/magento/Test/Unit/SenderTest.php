<?php

declare(strict_types=1);

namespace Comptoir\Connector\Test\Unit;

use Comptoir\Connector\Notification\Notification;
use Comptoir\Connector\Notification\Response;
use Comptoir\Connector\Notification\Sender;
use Comptoir\Connector\Notification\TransportFailed;
use Comptoir\Connector\Test\Unit\Fake\RecordingTransport;
use Comptoir\Connector\Test\Unit\Fake\Settings;
use Comptoir\Connector\Test\Unit\Fake\Shop;
use PHPUnit\Framework\TestCase;

final class SenderTest extends TestCase
{
    /** Computed with Python: base64.b64encode(hmac.new(b"whsec-comptoir-42", BODY, sha256).digest()) */
    private const BODY = '{"version":1,"event":"order.updated","order_id":"1042","date_upd":"2026-12-04 09:15:02",'
        . '"sent_at":"2026-12-04T10:15:02+01:00","module_version":"1.0.0","platform_version":"2.4.7"}';
    private const SIGNATURE = 'Si5mfiAqZRs6THQETebGNLt6Rgud7soTxQJFgo/llsQ=';

    public function testTheBodyAndSignatureMatchAFixedVector(): void
    {
        $shop = new Shop();
        $body = $shop->sender->body(new Notification(Notification::UPDATED, '1042', '2026-12-04 09:15:02'));

        self::assertSame(self::BODY, $body);
        self::assertSame(self::SIGNATURE, Sender::sign($body, 'whsec-comptoir-42'));
    }

    public function testThePostCarriesTheContractsHeadersAndASignatureOverTheRawBody(): void
    {
        $shop = new Shop(new Settings(timeout: 3.0));
        $outcome = $shop->sender->send(new Notification(Notification::REFUNDED, '1042', '2026-12-04 09:15:02', 'creditmemo:9'));

        self::assertTrue($outcome->delivered);
        [$post] = $shop->transport->posts;
        self::assertSame('https://comptoir.example.com/hooks/magento/ab12cd34', $post['url']);
        self::assertSame(3.0, $post['timeout']);
        self::assertSame('application/json', $post['headers']['Content-Type']);
        self::assertSame('Comptoir-Magento/1.0.0 (Magento 2.4.7)', $post['headers']['User-Agent']);
        self::assertSame('order.refunded', $post['headers']['X-Comptoir-Event']);
        self::assertSame(self::hmacByTheDefinition($post['body'], 'whsec-comptoir-42'), $post['headers']['X-Comptoir-Hmac-Sha256']);
        self::assertSame(
            ['version', 'event', 'order_id', 'date_upd', 'change_id', 'sent_at', 'module_version', 'platform_version'],
            array_keys(json_decode($post['body'], true)),
        );
        self::assertSame('creditmemo:9', json_decode($post['body'], true)['change_id']);
    }

    public function testAChangeIdIsCutToTheContractsLimit(): void
    {
        $notification = new Notification(Notification::SHIPPED, '1042', '2026-12-04 09:15:02', 'tracking:12:' . str_repeat('é', 200));

        self::assertSame(100, mb_strlen((string) $notification->changeId));
    }

    /** @return array<string, array{RecordingTransport, int}> */
    public static function failures(): array
    {
        return [
            'timed out' => [new RecordingTransport(new TransportFailed('Operation timed out after 2001 milliseconds (curl error 28)')), 0],
            'refused' => [RecordingTransport::refused(), 0],
            'server error' => [new RecordingTransport(new Response(500, '<h1>Internal Server Error</h1>')), 500],
            'wrong secret' => [new RecordingTransport(new Response(401, '{"error": "signature refused: digest mismatch"}')), 401],
            'a PHP error in the transport' => [new RecordingTransport(new \Error('curl_init(): undefined')), 0],
        ];
    }

    /** @dataProvider failures */
    public function testAFailureNeverThrowsAndIsLoggedOnce(RecordingTransport $transport, int $status): void
    {
        $shop = new Shop(transport: $transport);
        $outcome = $shop->sender->send(new Notification(Notification::UPDATED, '1042', '2026-12-04 09:15:02'));

        self::assertFalse($outcome->delivered);
        self::assertSame($status, $outcome->status);
        self::assertSame($status === 0, $outcome->unreachable);
        self::assertCount(1, $shop->logger->lines);
        [$level, $message] = $shop->logger->lines[0];
        self::assertSame('warning', $level);
        self::assertStringContainsString($status === 0 ? 'not sent' : (string) $status, $message);
    }

    public function testNothingIsSentWhenSwitchedOffOrNotConfigured(): void
    {
        foreach ([new Settings(enabled: false), new Settings(url: ''), new Settings(secret: '')] as $settings) {
            $shop = new Shop($settings);
            $outcome = $shop->sender->send(new Notification(Notification::UPDATED, '1042', '2026-12-04 09:15:02'));

            self::assertFalse($outcome->delivered);
            self::assertSame([], $shop->transport->posts);
        }
    }

    public function testTheTestButtonPingsWhenConfiguredEvenIfSwitchedOff(): void
    {
        $shop = new Shop(new Settings(enabled: false), new RecordingTransport(new Response(200, '{"status": "ping"}')));
        $outcome = $shop->sender->sendTest();

        self::assertTrue($outcome->delivered);
        self::assertStringContainsString('ping', $outcome->message);
        $body = $shop->transport->bodies()[0];
        self::assertSame(['test', '', ''], [$body['event'], $body['order_id'], $body['date_upd']]);

        $unconfigured = new Shop(new Settings(secret: ''));
        self::assertFalse($unconfigured->sender->sendTest()->delivered);
        self::assertSame([], $unconfigured->transport->posts);
    }

    /** HMAC-SHA256 from RFC 2104's definition, not through hash_hmac(). */
    private static function hmacByTheDefinition(string $message, string $key): string
    {
        $key = str_pad(strlen($key) > 64 ? hash('sha256', $key, true) : $key, 64, "\0");
        $inner = hash('sha256', ($key ^ str_repeat("\x36", 64)) . $message, true);
        return base64_encode(hash('sha256', ($key ^ str_repeat("\x5c", 64)) . $inner, true));
    }
}
