<?php

declare(strict_types=1);

namespace Comptoir\Connector\Test\Unit;

use Comptoir\Connector\Notification\CurlTransport;
use Comptoir\Connector\Notification\Notification;
use Comptoir\Connector\Notification\Sender;
use Comptoir\Connector\Test\Unit\Fake\BuiltInServer;
use Comptoir\Connector\Test\Unit\Fake\FixedClock;
use Comptoir\Connector\Test\Unit\Fake\MemoryLogger;
use Comptoir\Connector\Test\Unit\Fake\Settings;
use PHPUnit\Framework\TestCase;

/** The curl transport over real loopback sockets, against PHP's built-in server. */
final class CurlTransportTest extends TestCase
{
    private static ?BuiltInServer $comptoir = null;
    private static string $seenFile = '';

    public static function setUpBeforeClass(): void
    {
        self::$seenFile = (string) tempnam(sys_get_temp_dir(), 'comptoir-seen-');
        self::$comptoir = new BuiltInServer(dirname(__DIR__) . '/server/router.php', ['COMPTOIR_SEEN_FILE' => self::$seenFile]);
    }

    public static function tearDownAfterClass(): void
    {
        self::$comptoir?->stop();
        @unlink(self::$seenFile);
    }

    public function testARefusedConnectionFailsAtOnceWithoutThrowing(): void
    {
        $logger = new MemoryLogger();
        $transport = new CurlTransport();
        $sender = new Sender(new Settings(url: 'http://127.0.0.1:' . BuiltInServer::freePort() . '/'), $transport, new FixedClock(), $logger);

        $started = hrtime(true);
        $outcome = $sender->send(new Notification(Notification::UPDATED, '1042', '2026-12-04 09:15:02'));

        self::assertLessThan(1.0, (hrtime(true) - $started) / 1e9);
        self::assertTrue($outcome->unreachable);
        self::assertCount(1, $logger->lines);
    }

    public function testTheServerGetsTheSignedBodyAndHeaders(): void
    {
        $logger = new MemoryLogger();
        $outcome = $this->sender('/hooks/magento/ab12cd34', $logger)
            ->send(new Notification(Notification::SHIPPED, '1042', '2026-12-04 09:15:02', 'tracking:12:6A123'));

        self::assertTrue($outcome->delivered);
        self::assertSame(200, $outcome->status);
        self::assertStringContainsString('stored', $outcome->message);
        $seen = json_decode(trim((string) file_get_contents(self::$seenFile)), true, 8, JSON_THROW_ON_ERROR);
        self::assertSame('POST', $seen['method']);
        self::assertSame('application/json', $seen['headers']['content-type']);
        self::assertSame('order.shipped', $seen['headers']['x-comptoir-event']);
        self::assertSame('Comptoir-Magento/1.0.0 (Magento 2.4.7)', $seen['headers']['user-agent']);
        self::assertSame(
            base64_encode(hash_hmac('sha256', $seen['body'], 'whsec-comptoir-42', true)),
            $seen['headers']['x-comptoir-hmac-sha256'],
        );
        self::assertSame('tracking:12:6A123', json_decode($seen['body'], true)['change_id']);
        self::assertSame([], $logger->lines);
    }

    public function testARefusalAnswerIsReportedWithItsStatus(): void
    {
        $logger = new MemoryLogger();
        $outcome = $this->sender('/status/401', $logger)->sendTest();

        self::assertFalse($outcome->delivered);
        self::assertFalse($outcome->unreachable);
        self::assertSame(401, $outcome->status);
        self::assertStringContainsString('signature refused', $outcome->message);
        self::assertCount(1, $logger->lines);
    }

    public function testASlowComptoirIsAbandonedAtTheTimeoutWithoutThrowing(): void
    {
        $logger = new MemoryLogger();
        $sender = $this->sender('/slow', $logger);

        $started = hrtime(true);
        $outcome = $sender->send(new Notification(Notification::UPDATED, '1042', '2026-12-04 09:15:02'));
        $seconds = (hrtime(true) - $started) / 1e9;

        self::assertFalse($outcome->delivered);
        self::assertTrue($outcome->unreachable);
        self::assertGreaterThan(1.9, $seconds);
        self::assertLessThan(2.5, $seconds);
        self::assertCount(1, $logger->lines);
        self::assertStringContainsString('timed out', $logger->lines[0][1]);
    }

    private function sender(string $path, MemoryLogger $logger): Sender
    {
        return new Sender(new Settings(url: self::$comptoir?->base . $path), new CurlTransport(), new FixedClock(), $logger);
    }
}
