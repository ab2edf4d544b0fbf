<?php

declare(strict_types=1);

namespace Comptoir\Connector\Notification;

/** HTTP through ext-curl: connect within 1 s, the whole request within the configured timeout. */
final class CurlTransport implements Transport
{
    public const CONNECT_TIMEOUT_MS = 1000;

    public function post(string $url, array $headers, string $body, float $timeoutSeconds): Response
    {
        $handle = curl_init($url);
        if ($handle === false) {
            throw new TransportFailed('curl could not start');
        }
        $timeoutMs = max(1, (int) round($timeoutSeconds * 1000));
        $lines = ['Expect:'];  // no "100-continue" round trip
        foreach ($headers as $name => $value) {
            $lines[] = $name . ': ' . $value;
        }
        curl_setopt_array($handle, [
            CURLOPT_POST => true,
            CURLOPT_POSTFIELDS => $body,
            CURLOPT_HTTPHEADER => $lines,
            CURLOPT_RETURNTRANSFER => true,
            CURLOPT_CONNECTTIMEOUT_MS => min(self::CONNECT_TIMEOUT_MS, $timeoutMs),
            CURLOPT_TIMEOUT_MS => $timeoutMs,
            CURLOPT_NOSIGNAL => true,
            CURLOPT_FOLLOWLOCATION => false,
            CURLOPT_PROTOCOLS => CURLPROTO_HTTP | CURLPROTO_HTTPS,
        ]);
        try {
            $answer = curl_exec($handle);
            if (!is_string($answer)) {
                throw new TransportFailed(sprintf('%s (curl error %d)', curl_error($handle), curl_errno($handle)));
            }
            return new Response((int) curl_getinfo($handle, CURLINFO_RESPONSE_CODE), $answer);
        } finally {
            curl_close($handle);
        }
    }
}
