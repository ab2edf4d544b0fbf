<?php
/**
 * @license AGPL-3.0-or-later
 */

namespace Comptoir;

if (!defined('_PS_VERSION_')) {
    exit;
}

/** Comptoir could not be reached: refused, timed out, DNS, TLS. */
final class TransportFailed extends \RuntimeException
{
}
