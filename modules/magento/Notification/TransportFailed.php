<?php

declare(strict_types=1);

namespace Comptoir\Connector\Notification;

/** No answer from Comptoir: refused, timed out, unresolvable or a TLS failure. */
final class TransportFailed extends \RuntimeException
{
}
