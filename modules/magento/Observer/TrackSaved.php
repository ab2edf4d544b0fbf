<?php

declare(strict_types=1);

namespace Comptoir\Connector\Observer;

use Comptoir\Connector\Notification\Recorder;

/** sales_order_shipment_track_save_after */
class TrackSaved extends RecordingObserver
{
    protected const KIND = Recorder::TRACK;
}
