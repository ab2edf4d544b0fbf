<?php

declare(strict_types=1);

namespace Comptoir\Connector\Notification;

use Magento\Framework\Model\AbstractModel;

/** Reads an order by id, for a saved object that carries its order's id but not the order. */
interface OrderLookup
{
    public function find(string $orderId): ?AbstractModel;
}
