<?php
/**
 * Test doubles of the module's own small interfaces (never of PrestaShop's or curl's behaviour
 * under test): a transport that records or fails, a fixed clock, settings in memory.
 *
 * @license AGPL-3.0-or-later
 */

namespace Comptoir\Tests;

use Comptoir\Clock;
use Comptoir\Logger;
use Comptoir\Notifier;
use Comptoir\Response;
use Comptoir\Settings;
use Comptoir\Transport;
use Comptoir\TransportFailed;

final class RecordingTransport implements Transport
{
    /** @var list<array{url: string, body: string, headers: array<string, string>}> */
    public array $posts = [];

    /** @param \Closure(): Response $answer */
    public function __construct(private \Closure $answer)
    {
    }

    public static function answering(int $status, string $body): self
    {
        return new self(static fn (): Response => new Response($status, $body));
    }

    public static function failing(\Throwable $error): self
    {
        return new self(static function () use ($error): Response {
            throw $error;
        });
    }

    public static function timingOut(): self
    {
        return self::failing(new TransportFailed('Operation timed out after 2001 milliseconds with 0 bytes received'));
    }

    public function post(string $url, string $body, array $headers): Response
    {
        $this->posts[] = ['url' => $url, 'body' => $body, 'headers' => $headers];

        return ($this->answer)();
    }
}

final class FixedClock implements Clock
{
    public function now(): \DateTimeImmutable
    {
        return new \DateTimeImmutable('2026-12-04T10:15:02+01:00');
    }
}

final class MemorySettings implements Settings
{
    public function __construct(public string $url = '', public string $secret = '')
    {
    }

    public function url(): string
    {
        return $this->url;
    }

    public function secret(): string
    {
        return $this->secret;
    }
}

final class MemoryLogger implements Logger
{
    /** @var list<array{severity: int, message: string, order_id: int}> */
    public array $lines = [];

    public function log(int $severity, string $message, int $orderId): void
    {
        $this->lines[] = ['severity' => $severity, 'message' => $message, 'order_id' => $orderId];
    }
}

/** Holds what the notifier would run at shutdown, so a test decides when the request ends. */
final class Shutdown
{
    /** @var list<callable> */
    public array $callbacks = [];
    /** @var list<string> */
    public array $steps = [];

    public function defer(): \Closure
    {
        return function (callable $flush): void {
            $this->callbacks[] = $flush;
        };
    }

    public function finishResponse(): \Closure
    {
        return function (): void {
            $this->steps[] = 'response finished';
        };
    }

    public function run(): void
    {
        $callbacks = $this->callbacks;
        $this->callbacks = [];
        foreach ($callbacks as $callback) {
            $callback();
        }
    }
}

final class Rig
{
    public const URL = 'https://comptoir.example/hooks/prestashop/shop-key';
    public const SECRET = 'comptoir-test-secret';

    public MemoryLogger $logger;
    public Shutdown $shutdown;
    public Notifier $notifier;

    public function __construct(public Transport $transport, public MemorySettings $settings = new MemorySettings(self::URL, self::SECRET))
    {
        $this->logger = new MemoryLogger();
        $this->shutdown = new Shutdown();
        $this->notifier = new Notifier(
            $this->settings,
            $transport,
            new FixedClock(),
            $this->logger,
            '1.0.0',
            _PS_VERSION_,
            $this->shutdown->defer(),
            $this->shutdown->finishResponse()
        );
    }
}

/** The module with the rig's notifier in place of the curl one. */
final class TestableComptoir extends \Comptoir
{
    public function __construct(private Notifier $testNotifier)
    {
        parent::__construct();
    }

    protected function notifier(): Notifier
    {
        return $this->testNotifier;
    }
}
