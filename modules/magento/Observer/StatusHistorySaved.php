<?php

declare(strict_types=1);

namespace Comptoir\Connector\Observer;

use Comptoir\Connector\Notification\Recorder;

/** sales_order_status_history_save_after */
class StatusHistorySaved extends RecordingObserver
{
    protected const KIND = Recorder::STATUS_HISTORY;
}
