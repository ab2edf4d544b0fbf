<?php
/**
 * @license AGPL-3.0-or-later
 */

namespace Comptoir;

if (!defined('_PS_VERSION_')) {
    exit;
}

/** One POST with curl, bounded so that a slow or absent Comptoir costs the shop 2 s at most. */
final class CurlTransport implements Transport
{
    /** Kept for the request: the next notification reuses the connection (and its TLS session). */
    private ?\CurlHandle $handle = null;

    public function __construct(
        private readonly int $connectTimeoutMs = 1000,
        private readonly int $timeoutMs = 2000
    ) {
    }

    public function post(string $url, string $body, array $headers): Response
    {
        $lines = ['Expect:'];
        foreach ($headers as $name => $value) {
            $lines[] = $name . ': ' . $value;
        }
        if ($this->handle === null) {
            $handle = curl_init();
            if ($handle === false) {
                throw new TransportFailed('curl could not start');
            }
            $this->handle = $handle;
        }
        $handle = $this->handle;
        curl_reset($handle);
        curl_setopt_array($handle, [
            CURLOPT_URL => $url,
            CURLOPT_POST => true,
            CURLOPT_POSTFIELDS => $body,
            CURLOPT_HTTPHEADER => $lines,
            CURLOPT_RETURNTRANSFER => true,
            CURLOPT_FOLLOWLOCATION => false,
            CURLOPT_PROTOCOLS => CURLPROTO_HTTP | CURLPROTO_HTTPS,
            CURLOPT_CONNECTTIMEOUT_MS => $this->connectTimeoutMs,
            CURLOPT_TIMEOUT_MS => $this->timeoutMs,
            // Millisecond timeouts need signals off, or curl rounds them up to whole seconds.
            CURLOPT_NOSIGNAL => true,
        ]);
        $answer = curl_exec($handle);
        if (!is_string($answer)) {
            throw new TransportFailed(curl_error($handle) ?: 'no answer');
        }

        return new Response((int) curl_getinfo($handle, CURLINFO_RESPONSE_CODE), $answer);
    }
}
