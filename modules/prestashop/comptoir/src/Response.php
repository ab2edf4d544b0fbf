<?php
/**
 * @license AGPL-3.0-or-later
 */

namespace Comptoir;

/** What Comptoir answered: an HTTP status and the raw body. */
final class Response
{
    public function __construct(
        public readonly int $status,
        public readonly string $body
    ) {
    }
}
