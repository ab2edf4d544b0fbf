<?php

declare(strict_types=1);

namespace Comptoir\Connector\Notification;

use Psr\Log\LoggerInterface;

/**
 * The request's notifications, one per order and event (the latest wins), sent after the
 * response. Shared by the object manager, so it lives as long as the request.
 */
final class Queue
{
    /** @var array<string, Notification> */
    private array $pending = [];
    private bool $scheduled = false;

    public function __construct(
        private readonly Sender $sender,
        private readonly AfterResponse $afterResponse,
        private readonly LoggerInterface $logger,
    ) {
    }

    public function add(Notification $notification): void
    {
        $this->pending[$notification->key()] = $notification;
        if (!$this->scheduled) {
            $this->scheduled = true;
            $this->afterResponse->defer([$this, 'flush']);
        }
    }

    /** @return list<Notification> */
    public function pending(): array
    {
        return array_values($this->pending);
    }

    /** Send what is pending; once Comptoir proved unreachable, skip the rest (at most one timeout per request). */
    public function flush(): void
    {
        $pending = array_values($this->pending);
        $this->pending = [];
        $this->scheduled = false;
        foreach ($pending as $index => $notification) {
            try {
                $outcome = $this->sender->send($notification);
            } catch (\Throwable $exc) {  // Sender never throws; a PHP error must not reach the shop either
                $this->logger->error('Comptoir notification failed: ' . $exc->getMessage());
                continue;
            }
            $left = count($pending) - $index - 1;
            if ($outcome->unreachable && $left > 0) {
                $this->logger->warning(sprintf('Comptoir unreachable: %d more notification(s) of this request not sent.', $left));
                return;
            }
        }
    }
}
