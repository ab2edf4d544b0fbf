<?php

declare(strict_types=1);

namespace Comptoir\Connector\Test\Unit\Fake;

use Comptoir\Connector\Notification\OrderLookup;
use Magento\Framework\Model\AbstractModel;

/** The shop's orders by id, as the order repository would load them. */
final class Orders implements OrderLookup
{
    /** @var array<string, AbstractModel> */
    public array $byId = [];

    public function find(string $orderId): ?AbstractModel
    {
        return $this->byId[$orderId] ?? null;
    }
}
