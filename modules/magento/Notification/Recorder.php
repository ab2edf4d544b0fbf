<?php

declare(strict_types=1);

namespace Comptoir\Connector\Notification;

use Magento\Framework\Model\AbstractModel;
use Psr\Log\LoggerInterface;

/**
 * What the observers call: describes the saved object's change and queues it once the
 * transaction has committed (the resource's commit callback), so a rollback sends nothing.
 */
final class Recorder
{
    public const ORDER = 'order';
    public const INVOICE = 'invoice';
    public const SHIPMENT = 'shipment';
    public const TRACK = 'track';
    public const CREDITMEMO = 'creditmemo';
    public const STATUS_HISTORY = 'status_history';

    private const DATE_UPD = '/^\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}$/';

    public function __construct(
        private readonly Queue $queue,
        private readonly Sender $sender,
        private readonly OrderLookup $orders,
        private readonly LoggerInterface $logger,
    ) {
    }

    /** Queue the change after commit; never throws into Magento. */
    public function record(string $kind, mixed $entity): void
    {
        try {
            if (!$entity instanceof AbstractModel || !$this->sender->isActive()) {
                return;
            }
            // Decided now: by commit time the order's original data may already be the saved one.
            $event = $this->event($kind, $entity);
            $entity->getResource()->addCommitCallback(function () use ($kind, $entity, $event): void {
                $this->queueAfterCommit($kind, $entity, $event);
            });
        } catch (\Throwable $exc) {
            $this->logger->error(sprintf('Comptoir notification not queued (%s): %s', $kind, $exc->getMessage()));
        }
    }

    private function queueAfterCommit(string $kind, AbstractModel $entity, string $event): void
    {
        try {
            $notification = $this->describe($kind, $entity, $event);
            if ($notification !== null) {
                $this->queue->add($notification);
            }
        } catch (\Throwable $exc) {  // Magento's commit() only catches \Exception
            $this->logger->error(sprintf('Comptoir notification not queued (%s): %s', $kind, $exc->getMessage()));
        }
    }

    private function event(string $kind, AbstractModel $entity): string
    {
        return match ($kind) {
            self::ORDER => $this->isNewOrder($entity) ? Notification::CREATED : Notification::UPDATED,
            self::INVOICE => Notification::INVOICED,
            self::SHIPMENT, self::TRACK => Notification::SHIPPED,
            self::CREDITMEMO => Notification::REFUNDED,
            self::STATUS_HISTORY => $this->changesStatus($entity) ? Notification::STATUS_CHANGED : Notification::MESSAGE_ADDED,
            default => throw new \InvalidArgumentException('unknown kind ' . $kind),
        };
    }

    /** The first save of an order: Magento's resource clears isObjectNew() on insert, so the original id tells too. */
    private function isNewOrder(AbstractModel $order): bool
    {
        return $order->isObjectNew() || empty($order->getOrigData('entity_id'));
    }

    /** A history entry moves the status when its status is not the one the order was loaded with. */
    private function changesStatus(AbstractModel $history): bool
    {
        $status = (string) $history->getData('status');
        if ($status === '') {
            return false;
        }
        $order = $this->orderOf(self::STATUS_HISTORY, $history);
        return $order === null || (string) $order->getOrigData('status') !== $status;
    }

    private function describe(string $kind, AbstractModel $entity, string $event): ?Notification
    {
        $order = $this->orderOf($kind, $entity);
        if ($order === null) {
            $this->logger->warning(sprintf('Comptoir notification skipped: the %s %s has no order.', $kind, (string) $entity->getId()));
            return null;
        }
        $orderId = (string) $order->getId();
        $dateUpd = (string) $order->getData('updated_at');
        if (!ctype_digit($orderId) || preg_match(self::DATE_UPD, $dateUpd) !== 1) {
            $this->logger->warning(sprintf('Comptoir notification skipped: order "%s" updated at "%s".', $orderId, $dateUpd));
            return null;
        }
        return new Notification($event, $orderId, $dateUpd, $this->changeId($kind, $entity, $event));
    }

    /** Set when the change may leave the order's updated_at as it was. */
    private function changeId(string $kind, AbstractModel $entity, string $event): ?string
    {
        $id = (string) $entity->getId();
        return match ($kind) {
            self::INVOICE => 'invoice:' . $id,
            self::SHIPMENT => 'shipment:' . $id,
            self::TRACK => 'tracking:' . $id . ':' . (string) $entity->getData('track_number'),
            self::CREDITMEMO => 'creditmemo:' . $id,
            self::STATUS_HISTORY => $event === Notification::MESSAGE_ADDED ? 'message:' . $id : null,
            default => null,
        };
    }

    private function orderOf(string $kind, AbstractModel $entity): ?AbstractModel
    {
        $order = match ($kind) {
            self::ORDER => $entity,
            self::TRACK => $this->call($this->call($entity, 'getShipment'), 'getOrder'),
            default => $this->call($entity, 'getOrder'),
        };
        if ($order instanceof AbstractModel) {
            return $order;
        }
        // Saved through a repository without its order object: read the order by its id.
        $orderId = (string) $entity->getData($kind === self::STATUS_HISTORY ? 'parent_id' : 'order_id');
        return ctype_digit($orderId) ? $this->orders->find($orderId) : null;
    }

    private function call(mixed $object, string $method): mixed
    {
        return is_object($object) ? $object->{$method}() : null;
    }
}
