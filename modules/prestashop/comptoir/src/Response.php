<?php
/**
 * @license AGPL-3.0-or-later
 */

namespace Comptoir;

if (!defined('_PS_VERSION_')) {
    exit;
}

/** What Comptoir answered: an HTTP status and the raw body. */
final class Response
{
    public function __construct(
        public readonly int $status,
        public readonly string $body
    ) {
    }
}
