<?php
/**
 * @license AGPL-3.0-or-later
 */

namespace Comptoir;

if (!defined('_PS_VERSION_')) {
    exit;
}

/**
 * Each hook's parameters turned into the notification docs/NOTIFICATIONS.md asks for, or null
 * when the hook is not about an order.
 */
final class HookEvents
{
    public function __construct(private readonly Orders $orders)
    {
    }

    /** actionValidateOrder: ['order' => Order, 'cart', 'customer', 'currency', 'orderStatus']. */
    public function orderCreated(array $params): ?Notification
    {
        return $this->forOrderObject('order.created', $params['order'] ?? null);
    }

    /** actionOrderStatusPostUpdate: ['newOrderStatus', 'oldOrderStatus', 'id_order' => int]. */
    public function statusChanged(array $params): ?Notification
    {
        return $this->forOrderId('order.status_changed', (int) ($params['id_order'] ?? 0));
    }

    /** actionObjectOrderUpdateAfter: ['object' => Order]. */
    public function orderUpdated(array $params): ?Notification
    {
        return $this->forOrderObject('order.updated', $params['object'] ?? null);
    }

    /** actionOrderSlipAdd: ['order' => Order, 'productList', 'qtyList'] (no slip: the newest one). */
    public function slipAdded(array $params): ?Notification
    {
        $order = $params['order'] ?? null;
        $orderId = self::idOf($order);
        if ($orderId === 0) {
            return null;
        }
        $slipId = $this->orders->latestSlipId((int) ($order->id_customer ?? 0), $orderId);

        return $this->forOrderObject('order.refunded', $order, $slipId > 0 ? 'slip:' . $slipId : '');
    }

    /** actionAdminOrdersTrackingNumberUpdate: ['order' => Order, 'customer', 'carrier']. */
    public function trackingNumberUpdated(array $params): ?Notification
    {
        $orderId = self::idOf($params['order'] ?? null);
        if ($orderId === 0) {
            return null;
        }
        [$orderCarrierId, $tracking] = $this->orders->carrierOf($orderId);

        return $this->forOrderObject('order.shipped', $params['order'], self::trackingChange($orderCarrierId, $tracking));
    }

    /** actionObjectOrderCarrierUpdateAfter: ['object' => OrderCarrier]. */
    public function orderCarrierUpdated(array $params): ?Notification
    {
        $carrier = $params['object'] ?? null;
        $orderId = is_object($carrier) ? (int) ($carrier->id_order ?? 0) : 0;

        return $this->forOrderId(
            'order.shipped',
            $orderId,
            self::trackingChange(self::idOf($carrier), (string) ($carrier->tracking_number ?? ''))
        );
    }

    /** actionObjectCustomerMessageAddAfter: ['object' => CustomerMessage]; only an order's thread. */
    public function messageAdded(array $params): ?Notification
    {
        $message = $params['object'] ?? null;
        $threadId = is_object($message) ? (int) ($message->id_customer_thread ?? 0) : 0;
        if ($threadId === 0) {
            return null;
        }

        return $this->forOrderId(
            'order.message_added',
            $this->orders->orderOfThread($threadId),
            'message:' . self::idOf($message)
        );
    }

    private function forOrderObject(string $event, mixed $order, string $changeId = ''): ?Notification
    {
        $orderId = self::idOf($order);
        if ($orderId === 0) {
            return null;
        }
        $dateUpd = (string) ($order->date_upd ?? '');

        return $dateUpd === ''
            ? $this->forOrderId($event, $orderId, $changeId)
            : new Notification($event, (string) $orderId, $dateUpd, $changeId);
    }

    private function forOrderId(string $event, int $orderId, string $changeId = ''): ?Notification
    {
        if ($orderId <= 0) {
            return null;
        }
        $dateUpd = $this->orders->dateUpd($orderId);
        if ($dateUpd === '') {
            return null;
        }

        return new Notification($event, (string) $orderId, $dateUpd, $changeId);
    }

    private static function trackingChange(int $orderCarrierId, string $tracking): string
    {
        return 'tracking:' . $orderCarrierId . ':' . trim($tracking);
    }

    private static function idOf(mixed $object): int
    {
        return is_object($object) ? (int) ($object->id ?? 0) : 0;
    }
}
