<?php

declare(strict_types=1);

namespace Comptoir\Connector\Model;

use Comptoir\Connector\Notification\OrderLookup as NotificationOrderLookup;
use Magento\Framework\Exception\NoSuchEntityException;
use Magento\Framework\Model\AbstractModel;
use Magento\Sales\Api\OrderRepositoryInterface;

class OrderLookup implements NotificationOrderLookup
{
    public function __construct(private readonly OrderRepositoryInterface $orderRepository)
    {
    }

    public function find(string $orderId): ?AbstractModel
    {
        try {
            $order = $this->orderRepository->get((int) $orderId);
        } catch (NoSuchEntityException) {
            return null;
        }
        return $order instanceof AbstractModel ? $order : null;
    }
}
