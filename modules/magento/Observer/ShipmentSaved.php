<?php

declare(strict_types=1);

namespace Comptoir\Connector\Observer;

use Comptoir\Connector\Notification\Recorder;

/** sales_order_shipment_save_after */
class ShipmentSaved extends RecordingObserver
{
    protected const KIND = Recorder::SHIPMENT;
}
