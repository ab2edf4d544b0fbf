<?php
/**
 * @license AGPL-3.0-or-later
 */

namespace Comptoir;

if (!defined('_PS_VERSION_')) {
    exit;
}

interface Transport
{
    /**
     * POST the body with these headers; any HTTP answer is a Response.
     *
     * @param array<string, string> $headers
     *
     * @throws TransportFailed when no answer came
     */
    public function post(string $url, string $body, array $headers): Response;
}
