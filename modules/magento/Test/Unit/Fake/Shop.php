<?php

declare(strict_types=1);

namespace Comptoir\Connector\Test\Unit\Fake;

use Comptoir\Connector\Notification\Queue;
use Comptoir\Connector\Notification\Recorder;
use Comptoir\Connector\Notification\Sender;

/** The module wired as Magento's object manager wires it, around fakes of the outside world. */
final class Shop
{
    public readonly MemoryLogger $logger;
    public readonly AtEndOfRequest $request;
    public readonly Sender $sender;
    public readonly Queue $queue;
    public readonly Recorder $recorder;
    public readonly Orders $orders;

    public function __construct(
        public readonly Settings $settings = new Settings(),
        public readonly RecordingTransport $transport = new RecordingTransport(),
    ) {
        $this->logger = new MemoryLogger();
        $this->request = new AtEndOfRequest();
        $this->sender = new Sender($settings, $transport, new FixedClock(), $this->logger);
        $this->queue = new Queue($this->sender, $this->request, $this->logger);
        $this->orders = new Orders();
        $this->recorder = new Recorder($this->queue, $this->sender, $this->orders, $this->logger);
    }
}
