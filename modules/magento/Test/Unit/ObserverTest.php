<?php

declare(strict_types=1);

namespace Comptoir\Connector\Test\Unit;

use Comptoir\Connector\Observer\CreditmemoSaved;
use Comptoir\Connector\Observer\InvoiceSaved;
use Comptoir\Connector\Observer\OrderSaved;
use Comptoir\Connector\Observer\ShipmentSaved;
use Comptoir\Connector\Observer\StatusHistorySaved;
use Comptoir\Connector\Observer\TrackSaved;
use Comptoir\Connector\Test\Unit\Fake\Settings;
use Comptoir\Connector\Test\Unit\Fake\Shop;
use Magento\Framework\Event;
use Magento\Framework\Event\Observer;
use Magento\Framework\Event\ObserverInterface;
use Magento\Framework\Model\AbstractModel;
use Magento\Framework\Model\ResourceModel\AbstractResource;
use PHPUnit\Framework\TestCase;

/** Each observer, through a real commit callback, to the body posted after the response. */
final class ObserverTest extends TestCase
{
    private const UPDATED_AT = '2026-12-04 09:15:02';

    private AbstractResource $resource;

    protected function setUp(): void
    {
        $this->resource = new class () extends AbstractResource {
        };
    }

    /** @return array<string, array{class-string<ObserverInterface>, callable(self): AbstractModel, string, ?string}> */
    public static function saves(): array
    {
        return [
            'first save of an order' => [OrderSaved::class, static fn (self $t) => $t->order([]), 'order.created', null],
            'order saved again' => [OrderSaved::class, static fn (self $t) => $t->order(), 'order.updated', null],
            'invoice' => [InvoiceSaved::class, static fn (self $t) => $t->child(7, ['order' => $t->order()]), 'order.invoiced', 'invoice:7'],
            'shipment' => [ShipmentSaved::class, static fn (self $t) => $t->child(8, ['order' => $t->order()]), 'order.shipped', 'shipment:8'],
            'tracking number' => [
                TrackSaved::class,
                static fn (self $t) => $t->child(12, ['track_number' => '6A123', 'shipment' => $t->child(8, ['order' => $t->order()])]),
                'order.shipped',
                'tracking:12:6A123',
            ],
            'credit memo' => [CreditmemoSaved::class, static fn (self $t) => $t->child(9, ['order' => $t->order()]), 'order.refunded', 'creditmemo:9'],
            'status history moving the status' => [
                StatusHistorySaved::class,
                static fn (self $t) => $t->child(76, ['status' => 'complete', 'order' => $t->order()]),
                'order.status_changed',
                null,
            ],
            'status history comment alone' => [
                StatusHistorySaved::class,
                static fn (self $t) => $t->child(77, ['status' => 'processing', 'comment' => 'Colis prêt', 'order' => $t->order()]),
                'order.message_added',
                'message:77',
            ],
        ];
    }

    /**
     * @dataProvider saves
     * @param class-string<ObserverInterface> $observerClass
     * @param callable(self): AbstractModel $entity
     */
    public function testEachObserverSendsItsChangeAfterCommitAndAfterTheResponse(
        string $observerClass,
        callable $entity,
        string $event,
        ?string $changeId,
    ): void {
        $shop = new Shop();
        $this->resource->beginTransaction();
        $this->save($shop, $observerClass, $entity($this));
        self::assertSame([], $shop->queue->pending(), 'queued before the commit');
        $this->resource->commit();
        self::assertSame([], $shop->transport->posts, 'sent before the response');
        self::assertCount(1, $shop->queue->pending());

        $shop->request->respond();

        $bodies = $shop->transport->bodies();
        self::assertCount(1, $bodies);
        self::assertSame($event, $bodies[0]['event']);
        self::assertSame('1042', $bodies[0]['order_id']);
        self::assertSame(self::UPDATED_AT, $bodies[0]['date_upd']);
        self::assertSame($changeId, $bodies[0]['change_id'] ?? null);
        self::assertSame($event, $shop->transport->posts[0]['headers']['X-Comptoir-Event']);
        self::assertSame([], $shop->logger->lines);
    }

    /**
     * @dataProvider saves
     * @param class-string<ObserverInterface> $observerClass
     * @param callable(self): AbstractModel $entity
     */
    public function testARolledBackTransactionSendsNothing(string $observerClass, callable $entity): void
    {
        $shop = new Shop();
        $this->resource->beginTransaction();
        $this->save($shop, $observerClass, $entity($this));
        $this->resource->rollBack();
        $shop->request->respond();

        self::assertSame([], $shop->queue->pending());
        self::assertSame([], $shop->transport->posts);
    }

    public function testTheOrderUpdatedAtIsReadAtCommitTime(): void
    {
        $shop = new Shop();
        $order = $this->order();
        $this->resource->beginTransaction();
        $this->save($shop, InvoiceSaved::class, $this->child(7, ['order' => $order]));
        // The same transaction saves the order afterwards; Magento reloads its updated_at.
        $order->setData('updated_at', '2026-12-04 09:15:03');
        $this->resource->commit();
        $shop->request->respond();

        self::assertSame('2026-12-04 09:15:03', $shop->transport->bodies()[0]['date_upd']);
    }

    public function testAnObjectSavedWithoutItsOrderObjectFindsTheOrderByItsId(): void
    {
        $shop = new Shop();
        $shop->orders->byId['1042'] = $this->order();
        $this->resource->beginTransaction();
        $this->save($shop, StatusHistorySaved::class, $this->child(78, ['status' => '', 'comment' => 'Appel client', 'parent_id' => '1042']));
        $this->save($shop, CreditmemoSaved::class, $this->child(9, ['order_id' => '1042']));
        $this->resource->commit();
        $shop->request->respond();

        $bodies = $shop->transport->bodies();
        self::assertSame(['order.message_added', 'order.refunded'], array_column($bodies, 'event'));
        self::assertSame(['1042', '1042'], array_column($bodies, 'order_id'));
        self::assertSame(self::UPDATED_AT, $bodies[1]['date_upd']);
    }

    public function testOneNotificationPerOrderAndEventInARequest(): void
    {
        $shop = new Shop();
        $order = $this->order();
        foreach (['2026-12-04 09:15:02', '2026-12-04 09:15:04'] as $updatedAt) {
            $this->resource->beginTransaction();
            $order->setData('updated_at', $updatedAt);
            $this->save($shop, OrderSaved::class, $order);
            $this->save($shop, StatusHistorySaved::class, $this->child(76, ['status' => 'complete', 'order' => $order]));
            $this->resource->commit();
        }
        $shop->request->respond();

        $bodies = $shop->transport->bodies();
        self::assertSame(['order.updated', 'order.status_changed'], array_column($bodies, 'event'));
        self::assertSame('2026-12-04 09:15:04', $bodies[0]['date_upd'], 'the latest change wins');
    }

    public function testNothingIsSentWhenSwitchedOffOrNotConfigured(): void
    {
        foreach ([new Settings(enabled: false), new Settings(url: ''), new Settings(secret: '')] as $settings) {
            $shop = new Shop($settings);
            $this->resource->beginTransaction();
            $this->save($shop, OrderSaved::class, $this->order());
            $this->resource->commit();
            $shop->request->respond();

            self::assertSame([], $shop->transport->posts);
            self::assertSame([], $shop->request->deferred);
        }
    }

    public function testNoExceptionEscapesAnObserverOrItsCallback(): void
    {
        $shop = new Shop();
        $this->resource->beginTransaction();
        // No resource to register on: the observer itself fails.
        $this->save($shop, OrderSaved::class, new AbstractModel(null, ['entity_id' => '5']));
        // A track whose shipment is gone: the callback finds no order.
        $this->save($shop, TrackSaved::class, $this->child(12, ['track_number' => 'X']));
        // A shipment whose order lookup throws an Error (not an \Exception, which Magento would catch).
        $broken = new class ($this->resource, ['entity_id' => '8']) extends AbstractModel {
            public function getOrder(): never
            {
                throw new \TypeError('order repository exploded');
            }
        };
        $this->save($shop, ShipmentSaved::class, $broken);
        $this->resource->commit();
        $shop->request->respond();

        self::assertSame([], $shop->transport->posts);
        self::assertCount(3, $shop->logger->lines);
        self::assertStringContainsString('order repository exploded', $shop->logger->lines[2][1]);
    }

    /** @param array<string, mixed> $origData */
    public function order(array $origData = ['entity_id' => '1042', 'status' => 'processing']): AbstractModel
    {
        return new AbstractModel(
            $this->resource,
            ['entity_id' => '1042', 'status' => 'processing', 'updated_at' => self::UPDATED_AT],
            $origData,
        );
    }

    /** @param array<string, mixed> $data */
    public function child(int $id, array $data): AbstractModel
    {
        return new AbstractModel($this->resource, ['entity_id' => (string) $id] + $data, []);
    }

    /** @param class-string<ObserverInterface> $observerClass */
    private function save(Shop $shop, string $observerClass, AbstractModel $entity): void
    {
        $observer = new $observerClass($shop->recorder);
        $observer->execute(new Observer(['event' => new Event(['data_object' => $entity])]));
    }
}
