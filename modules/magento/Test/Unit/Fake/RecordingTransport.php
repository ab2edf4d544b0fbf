<?php

declare(strict_types=1);

namespace Comptoir\Connector\Test\Unit\Fake;

use Comptoir\Connector\Notification\Response;
use Comptoir\Connector\Notification\Transport;
use Comptoir\Connector\Notification\TransportFailed;

/** Keeps what would have been posted; answers with a given response or fails as told. */
final class RecordingTransport implements Transport
{
    /** @var list<array{url: string, headers: array<string, string>, body: string, timeout: float}> */
    public array $posts = [];

    public function __construct(
        private Response|\Throwable $answer = new Response(200, '{"status": "stored"}'),
    ) {
    }

    public function post(string $url, array $headers, string $body, float $timeoutSeconds): Response
    {
        $this->posts[] = ['url' => $url, 'headers' => $headers, 'body' => $body, 'timeout' => $timeoutSeconds];
        if ($this->answer instanceof \Throwable) {
            throw $this->answer;
        }
        return $this->answer;
    }

    /** @return list<array<string, mixed>> */
    public function bodies(): array
    {
        return array_map(static fn (array $post): array => json_decode($post['body'], true, 8, JSON_THROW_ON_ERROR), $this->posts);
    }

    public static function refused(): self
    {
        return new self(new TransportFailed('Failed to connect to 127.0.0.1 port 9: Connection refused (curl error 7)'));
    }
}
