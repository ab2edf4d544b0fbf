<?php
/**
 * The curl transport over a real loopback socket, against PHP's built-in server.
 *
 * @license AGPL-3.0-or-later
 */

namespace Comptoir\Tests;

use Comptoir\CurlTransport;
use Comptoir\Notification;
use Comptoir\TransportFailed;
use PHPUnit\Framework\TestCase;

final class CurlTransportTest extends TestCase
{
    /** @var resource|null */
    private static $server = null;
    private static int $port = 0;
    private static string $record = '';

    public static function setUpBeforeClass(): void
    {
        self::$port = self::freePort();
        $command = [PHP_BINARY, '-S', '127.0.0.1:' . self::$port, __DIR__ . '/server/router.php'];
        // Workers, so that /slow does not hold up the other requests.
        self::$record = (string) tempnam(sys_get_temp_dir(), 'comptoir-record-');
        $env = getenv() + ['PHP_CLI_SERVER_WORKERS' => '3', 'COMPTOIR_RECORD' => self::$record];
        $null = ['file', '/dev/null', 'w'];
        $server = proc_open($command, [0 => ['file', '/dev/null', 'r'], 1 => $null, 2 => $null], $pipes, null, $env);
        if (!is_resource($server)) {
            self::fail('could not start php -S');
        }
        self::$server = $server;
        $deadline = microtime(true) + 5;
        while (microtime(true) < $deadline) {
            $socket = @fsockopen('127.0.0.1', self::$port, $errno, $errstr, 0.1);
            if ($socket !== false) {
                fclose($socket);

                return;
            }
            usleep(20000);
        }
        self::fail('php -S did not start on port ' . self::$port);
    }

    public static function tearDownAfterClass(): void
    {
        if (self::$server !== null) {
            // The workers outlive their parent on SIGTERM: end them first.
            $pid = (int) proc_get_status(self::$server)['pid'];
            exec('pkill -TERM -P ' . $pid);
            proc_terminate(self::$server);
            proc_close(self::$server);
            self::$server = null;
        }
        @unlink(self::$record);
    }

    private static function freePort(): int
    {
        $socket = stream_socket_server('tcp://127.0.0.1:0');
        if ($socket === false) {
            self::fail('no free port');
        }
        $name = (string) stream_socket_get_name($socket, false);
        fclose($socket);

        return (int) substr($name, strrpos($name, ':') + 1);
    }

    private static function url(string $path): string
    {
        return 'http://127.0.0.1:' . self::$port . $path;
    }

    public function testTheSignedNotificationArrivesAsSent(): void
    {
        $rig = new Rig(new CurlTransport(), new MemorySettings(self::url('/echo'), Rig::SECRET));

        $outcome = $rig->notifier->send(new Notification('order.created', '1042', '2026-12-04 10:15:02'));

        $this->assertTrue($outcome->accepted, $outcome->describe());
        $this->assertSame('stored', $outcome->detail);
        $transport = new CurlTransport();
        $body = '{"version":1}';
        $echo = json_decode($transport->post(self::url('/echo'), $body, [
            'Content-Type' => 'application/json',
            'User-Agent' => 'Comptoir-PrestaShop/1.0.0 (PrestaShop 8.1.7)',
            'X-Comptoir-Event' => 'order.created',
            'X-Comptoir-Hmac-Sha256' => 'c2lnbmF0dXJl',
        ])->body, true);
        $this->assertSame('POST', $echo['method']);
        $this->assertSame($body, $echo['body']);
        $this->assertSame([
            'content_type' => 'application/json',
            'user_agent' => 'Comptoir-PrestaShop/1.0.0 (PrestaShop 8.1.7)',
            'event' => 'order.created',
            'hmac' => 'c2lnbmF0dXJl',
        ], $echo['headers']);
    }

    public function testTheNotifiersHeadersVerifyOnTheServerSide(): void
    {
        $recorder = new class () implements \Comptoir\Transport {
            public ?\Comptoir\Response $last = null;

            public function post(string $url, string $body, array $headers): \Comptoir\Response
            {
                return $this->last = (new CurlTransport())->post($url, $body, $headers);
            }
        };
        $rig = new Rig($recorder, new MemorySettings(self::url('/echo'), Rig::SECRET));

        $rig->notifier->send(new Notification('order.updated', '5', '2026-12-04 11:00:00'));

        $echo = json_decode($recorder->last->body, true);
        $this->assertSame(base64_encode(hash_hmac('sha256', $echo['body'], Rig::SECRET, true)), $echo['headers']['hmac']);
        $this->assertSame('order.updated', json_decode($echo['body'], true)['event']);
    }

    public function testAShopRequestSendsItsNotificationsOnceItEnds(): void
    {
        $command = [PHP_BINARY, __DIR__ . '/scripts/request.php', self::url('/record'), Rig::SECRET];
        $process = proc_open($command, [1 => ['pipe', 'w'], 2 => ['pipe', 'w']], $pipes);
        $this->assertIsResource($process);
        $output = stream_get_contents($pipes[1]) . stream_get_contents($pipes[2]);
        $this->assertSame(0, proc_close($process), $output);

        $this->assertSame("hooks done\n", $output);
        $lines = array_map(
            static fn (string $line): array => json_decode($line, true),
            file(self::$record, FILE_IGNORE_NEW_LINES | FILE_SKIP_EMPTY_LINES)
        );
        $this->assertSame(['order.status_changed', 'order.updated'], array_column($lines, 'event'));
        foreach ($lines as $line) {
            $this->assertSame(base64_encode(hash_hmac('sha256', $line['body'], Rig::SECRET, true)), $line['hmac']);
            $this->assertSame('Comptoir-PrestaShop/1.0.0 (PrestaShop 8.1.7)', $line['user_agent']);
            $this->assertSame('1042', json_decode($line['body'], true)['order_id']);
        }
    }

    public function testAComptoirSlowerThanTwoSecondsCostsTheShopAtMostTwoAndAHalf(): void
    {
        $rig = new Rig(new CurlTransport(), new MemorySettings(self::url('/slow'), Rig::SECRET));
        $rig->notifier->queue(new Notification('order.created', '1042', '2026-12-04 10:15:02'));

        $started = microtime(true);
        $rig->shutdown->run();
        $elapsed = microtime(true) - $started;

        $this->assertGreaterThan(1.9, $elapsed, 'gave up before the 2 s timeout');
        $this->assertLessThan(2.5, $elapsed);
        $this->assertCount(1, $rig->logger->lines);
        $this->assertStringContainsString('could not be reached', $rig->logger->lines[0]['message']);
        $this->assertStringContainsString('timed out', $rig->logger->lines[0]['message']);
    }

    public function testARefusedConnectionFailsAtOnce(): void
    {
        $transport = new CurlTransport();
        $closed = 'http://127.0.0.1:' . self::freePort() . '/hooks';

        $started = microtime(true);
        try {
            $transport->post($closed, '{}', []);
            $this->fail('no TransportFailed');
        } catch (TransportFailed $e) {
            $this->assertLessThan(1.0, microtime(true) - $started);
            $this->assertNotSame('', $e->getMessage());
        }
    }

    public function testAnHttpErrorIsAnAnswerNotATransportFailure(): void
    {
        $response = (new CurlTransport())->post(self::url('/down'), '{}', []);

        $this->assertSame(503, $response->status);
        $this->assertStringContainsString('Service Unavailable', $response->body);
    }
}
