<?php
/**
 * @license AGPL-3.0-or-later
 */

namespace Comptoir;

if (!defined('_PS_VERSION_')) {
    exit;
}

/** The few facts about an order that the hooks do not hand over themselves. */
interface Orders
{
    /** orders.date_upd as stored (shop's local time); '' for an unknown order. */
    public function dateUpd(int $orderId): string;

    /** The order a customer thread belongs to; 0 for a thread outside any order. */
    public function orderOfThread(int $threadId): int;

    /** The newest credit slip of the order; 0 when there is none. */
    public function latestSlipId(int $customerId, int $orderId): int;

    /**
     * The order's carrier line and its tracking number.
     *
     * @return array{0: int, 1: string} [id_order_carrier, tracking_number]
     */
    public function carrierOf(int $orderId): array;
}
