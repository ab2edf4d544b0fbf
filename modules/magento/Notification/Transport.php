<?php

declare(strict_types=1);

namespace Comptoir\Connector\Notification;

interface Transport
{
    /**
     * POST the body and return Comptoir's answer, whatever its status.
     *
     * @param array<string, string> $headers
     * @throws TransportFailed when no answer came (refused, timed out, TLS or DNS failure)
     */
    public function post(string $url, array $headers, string $body, float $timeoutSeconds): Response;
}
