<?php

declare(strict_types=1);

namespace Comptoir\Connector\Test\Unit;

use Comptoir\Connector\Notification\Notification;
use Comptoir\Connector\Notification\Response;
use Comptoir\Connector\Test\Unit\Fake\RecordingTransport;
use Comptoir\Connector\Test\Unit\Fake\Settings;
use Comptoir\Connector\Test\Unit\Fake\Shop;
use PHPUnit\Framework\TestCase;

final class QueueTest extends TestCase
{
    public function testSendsOnlyWhenFlushedAfterTheResponse(): void
    {
        $shop = new Shop();
        $shop->queue->add(new Notification(Notification::CREATED, '1042', '2026-12-04 09:15:02'));
        $shop->queue->add(new Notification(Notification::INVOICED, '1042', '2026-12-04 09:15:02', 'invoice:7'));

        self::assertSame([], $shop->transport->posts);
        self::assertCount(1, $shop->request->deferred, 'one flush per request');
        $shop->request->respond();
        self::assertSame(['order.created', 'order.invoiced'], array_column($shop->transport->bodies(), 'event'));
        self::assertSame([], $shop->queue->pending());
    }

    public function testOneNotificationPerOrderAndEventTheLatestWinning(): void
    {
        $shop = new Shop();
        $shop->queue->add(new Notification(Notification::UPDATED, '1042', '2026-12-04 09:15:02'));
        $shop->queue->add(new Notification(Notification::UPDATED, '1043', '2026-12-04 09:15:02'));
        $shop->queue->add(new Notification(Notification::UPDATED, '1042', '2026-12-04 09:15:09'));
        $shop->request->respond();

        $bodies = $shop->transport->bodies();
        self::assertSame(['1042', '1043'], array_column($bodies, 'order_id'));
        self::assertSame('2026-12-04 09:15:09', $bodies[0]['date_upd']);
    }

    public function testAnUnreachableComptoirCostsOneAttemptPerRequest(): void
    {
        $shop = new Shop(transport: RecordingTransport::refused());
        foreach (['1042', '1043', '1044'] as $orderId) {
            $shop->queue->add(new Notification(Notification::UPDATED, $orderId, '2026-12-04 09:15:02'));
        }
        $shop->request->respond();

        self::assertCount(1, $shop->transport->posts);
        self::assertCount(2, $shop->logger->lines);
        self::assertStringContainsString('2 more notification(s)', $shop->logger->lines[1][1]);
    }

    public function testAnErrorAnswerDoesNotStopTheOthers(): void
    {
        $shop = new Shop(new Settings(), new RecordingTransport(new Response(500, 'oops')));
        $shop->queue->add(new Notification(Notification::UPDATED, '1042', '2026-12-04 09:15:02'));
        $shop->queue->add(new Notification(Notification::UPDATED, '1043', '2026-12-04 09:15:02'));
        $shop->request->respond();

        self::assertCount(2, $shop->transport->posts);
        self::assertCount(2, $shop->logger->lines);
    }
}
