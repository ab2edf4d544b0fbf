<?php

declare(strict_types=1);

namespace Comptoir\Connector\Test\Unit\Fake;

use Comptoir\Connector\Notification\AfterResponse;

/** Holds the deferred work until the test says the response has gone. */
final class AtEndOfRequest implements AfterResponse
{
    /** @var list<callable> */
    public array $deferred = [];

    public function defer(callable $work): void
    {
        $this->deferred[] = $work;
    }

    public function respond(): void
    {
        $deferred = $this->deferred;
        $this->deferred = [];
        foreach ($deferred as $work) {
            $work();
        }
    }
}
