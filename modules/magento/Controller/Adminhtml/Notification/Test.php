<?php

declare(strict_types=1);

namespace Comptoir\Connector\Controller\Adminhtml\Notification;

use Comptoir\Connector\Notification\Sender;
use Magento\Backend\App\Action;
use Magento\Backend\App\Action\Context;
use Magento\Framework\App\Action\HttpPostActionInterface;
use Magento\Framework\Controller\Result\Json;
use Magento\Framework\Controller\Result\JsonFactory;

/** POST comptoir/notification/test: sends a `test` notification, answers {ok, status, message}. */
class Test extends Action implements HttpPostActionInterface
{
    public const ADMIN_RESOURCE = 'Comptoir_Connector::config';

    public function __construct(
        Context $context,
        private readonly JsonFactory $jsonFactory,
        private readonly Sender $sender,
    ) {
        parent::__construct($context);
    }

    public function execute(): Json
    {
        $outcome = $this->sender->sendTest();
        return $this->jsonFactory->create()->setData([
            'ok' => $outcome->delivered,
            'status' => $outcome->status,
            'message' => $outcome->message,
        ]);
    }
}
