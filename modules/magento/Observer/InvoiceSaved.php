<?php

declare(strict_types=1);

namespace Comptoir\Connector\Observer;

use Comptoir\Connector\Notification\Recorder;

/** sales_order_invoice_save_after */
class InvoiceSaved extends RecordingObserver
{
    protected const KIND = Recorder::INVOICE;
}
