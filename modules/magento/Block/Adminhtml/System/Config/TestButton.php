<?php

declare(strict_types=1);

namespace Comptoir\Connector\Block\Adminhtml\System\Config;

use Magento\Config\Block\System\Config\Form\Field;
use Magento\Framework\Data\Form\Element\AbstractElement;

/** The "Send a test notification" button of Stores > Configuration > Sales > Comptoir. */
class TestButton extends Field
{
    /** @var string */
    protected $_template = 'Comptoir_Connector::system/config/test_button.phtml';

    public function render(AbstractElement $element): string
    {
        $element->unsScope()->unsCanUseWebsiteValue()->unsCanUseDefaultValue();
        return parent::render($element);
    }

    public function getTestUrl(): string
    {
        return $this->getUrl('comptoir/notification/test');
    }

    protected function _getElementHtml(AbstractElement $element): string
    {
        return $this->_toHtml();
    }
}
