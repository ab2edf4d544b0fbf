<?php

declare(strict_types=1);

namespace Comptoir\Connector\Observer;

use Comptoir\Connector\Notification\Recorder;

/** sales_order_save_after */
class OrderSaved extends RecordingObserver
{
    protected const KIND = Recorder::ORDER;
}
