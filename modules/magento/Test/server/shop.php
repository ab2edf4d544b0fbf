<?php

// Router for `php -S`: one Magento request as the module lives it, with the real Queue, Sender,
// curl transport and shutdown function (only Magento's classes are stubs). The order is saved
// twice and a credit memo is rolled back; then the page answers. COMPTOIR_URL is where to notify;
// COMPTOIR_SHOP_MARK gets when the page's own work ended; COMPTOIR_SHOP_LOG the module's log lines.

declare(strict_types=1);

require dirname(__DIR__) . '/stubs/bootstrap.php';

use Comptoir\Connector\Notification\CurlTransport;
use Comptoir\Connector\Notification\Queue;
use Comptoir\Connector\Notification\Recorder;
use Comptoir\Connector\Notification\Sender;
use Comptoir\Connector\Notification\ShutdownAfterResponse;
use Comptoir\Connector\Notification\SystemClock;
use Comptoir\Connector\Observer\CreditmemoSaved;
use Comptoir\Connector\Observer\OrderSaved;
use Comptoir\Connector\Test\Unit\Fake\MemoryLogger;
use Comptoir\Connector\Test\Unit\Fake\Orders;
use Comptoir\Connector\Test\Unit\Fake\Settings;
use Magento\Framework\Event;
use Magento\Framework\Event\Observer;
use Magento\Framework\Model\AbstractModel;
use Magento\Framework\Model\ResourceModel\AbstractResource;

$logger = new MemoryLogger();
$sender = new Sender(new Settings(url: (string) getenv('COMPTOIR_URL')), new CurlTransport(), new SystemClock(), $logger);
$recorder = new Recorder(new Queue($sender, new ShutdownAfterResponse(), $logger), $sender, new Orders(), $logger);
$saved = static fn (AbstractModel $entity): Observer => new Observer(['event' => new Event(['data_object' => $entity])]);

$resource = new class () extends AbstractResource {
};
$order = new AbstractModel($resource, ['entity_id' => '1042', 'status' => 'processing'], ['entity_id' => '1042']);
foreach (['2026-12-04 09:15:02', '2026-12-04 09:15:03'] as $updatedAt) {
    $resource->beginTransaction();
    $order->setData('updated_at', $updatedAt);
    (new OrderSaved($recorder))->execute($saved($order));
    $resource->commit();
}
$resource->beginTransaction();
(new CreditmemoSaved($recorder))->execute($saved(new AbstractModel($resource, ['entity_id' => '9', 'order' => $order])));
$resource->rollBack();

// Registered after the module's flush, so it runs after it.
register_shutdown_function(static function () use ($logger): void {
    file_put_contents((string) getenv('COMPTOIR_SHOP_LOG'), json_encode($logger->lines));
});
file_put_contents((string) getenv('COMPTOIR_SHOP_MARK'), (string) microtime(true));
echo 'order saved';
return true;
