<?php

declare(strict_types=1);

namespace Comptoir\Connector\Test\Unit;

use Comptoir\Connector\Notification\Sender;
use Comptoir\Connector\Test\Unit\Fake\BuiltInServer;
use PHPUnit\Framework\TestCase;

/** A whole shop request in its own PHP process (Test/server/shop.php) notifying a live stand-in Comptoir. */
final class ShopRequestTest extends TestCase
{
    public function testARequestSendsItsNotificationOnceSignedAtShutdown(): void
    {
        $files = [];
        foreach (['seen', 'mark', 'log'] as $name) {
            $files[$name] = (string) tempnam(sys_get_temp_dir(), 'comptoir-' . $name . '-');
        }
        $comptoir = new BuiltInServer(dirname(__DIR__) . '/server/router.php', ['COMPTOIR_SEEN_FILE' => $files['seen']]);
        $shop = new BuiltInServer(dirname(__DIR__) . '/server/shop.php', [
            'COMPTOIR_URL' => $comptoir->base . '/hooks/magento/ab12cd34',
            'COMPTOIR_SHOP_MARK' => $files['mark'],
            'COMPTOIR_SHOP_LOG' => $files['log'],
        ]);
        try {
            self::assertSame('order saved', file_get_contents($shop->base . '/checkout'));
            $deadline = microtime(true) + 3;
            while ((string) file_get_contents($files['log']) === '' && microtime(true) < $deadline) {
                usleep(20_000);
            }
        } finally {
            $shop->stop();
            $comptoir->stop();
        }
        $seen = array_map(
            static fn (string $line): array => json_decode($line, true, 8, JSON_THROW_ON_ERROR),
            array_filter(explode("\n", (string) file_get_contents($files['seen']))),
        );
        $pageDone = (float) file_get_contents($files['mark']);
        $log = (string) file_get_contents($files['log']);
        array_map('unlink', $files);

        self::assertCount(1, $seen, 'two saves of one order, one notification; the rolled-back credit memo none');
        $body = json_decode($seen[0]['body'], true);
        self::assertSame(['order.updated', '1042', '2026-12-04 09:15:03'], [$body['event'], $body['order_id'], $body['date_upd']]);
        self::assertSame(Sender::sign($seen[0]['body'], 'whsec-comptoir-42'), $seen[0]['headers']['x-comptoir-hmac-sha256']);
        self::assertGreaterThan($pageDone, $seen[0]['received_at'], 'sent after the page had done its work');
        self::assertSame('[]', $log);
    }
}
