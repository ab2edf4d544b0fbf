<?php
/**
 * @license AGPL-3.0-or-later
 */

namespace Comptoir;

if (!defined('_PS_VERSION_')) {
    exit;
}

/** Orders read through PrestaShop's own classes. */
final class ShopOrders implements Orders
{
    public function dateUpd(int $orderId): string
    {
        $order = new \Order($orderId);

        return \Validate::isLoadedObject($order) ? (string) $order->date_upd : '';
    }

    public function orderOfThread(int $threadId): int
    {
        $thread = new \CustomerThread($threadId);

        return \Validate::isLoadedObject($thread) ? (int) $thread->id_order : 0;
    }

    public function latestSlipId(int $customerId, int $orderId): int
    {
        // Newest first (ORDER BY date_add DESC): the slip this hook is about.
        $slips = \OrderSlip::getOrdersSlip($customerId, $orderId);

        return is_array($slips) && $slips !== [] ? (int) $slips[0]['id_order_slip'] : 0;
    }

    public function carrierOf(int $orderId): array
    {
        $order = new \Order($orderId);
        if (!\Validate::isLoadedObject($order)) {
            return [0, ''];
        }
        $carrier = new \OrderCarrier((int) $order->getIdOrderCarrier());
        if (!\Validate::isLoadedObject($carrier)) {
            return [0, ''];
        }

        return [(int) $carrier->id, (string) $carrier->tracking_number];
    }
}
