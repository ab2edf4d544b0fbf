<?php

declare(strict_types=1);

namespace Comptoir\Connector\Observer;

use Comptoir\Connector\Notification\Recorder;
use Magento\Framework\Event\Observer;
use Magento\Framework\Event\ObserverInterface;

/** Hands the saved object of a `*_save_after` event to the Recorder, which never throws. */
abstract class RecordingObserver implements ObserverInterface
{
    /** One of Recorder's kinds. */
    protected const KIND = '';

    public function __construct(private readonly Recorder $recorder)
    {
    }

    public function execute(Observer $observer): void
    {
        $this->recorder->record(static::KIND, $observer->getEvent()->getData('data_object'));
    }
}
