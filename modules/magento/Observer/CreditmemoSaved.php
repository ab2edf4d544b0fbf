<?php

declare(strict_types=1);

namespace Comptoir\Connector\Observer;

use Comptoir\Connector\Notification\Recorder;

/** sales_order_creditmemo_save_after */
class CreditmemoSaved extends RecordingObserver
{
    protected const KIND = Recorder::CREDITMEMO;
}
