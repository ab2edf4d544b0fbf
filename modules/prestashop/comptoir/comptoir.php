<?php
/**
 * Comptoir change notifications for PrestaShop 8 and 9.
 *
 * When an order changes, tells Comptoir which order and when (docs/NOTIFICATIONS.md in
 * Comptoir's repository), signed with the shop's webhook secret, after the response is sent.
 * Comptoir then reads the order through the webservice as it always does.
 *
 * @license AGPL-3.0-or-later
 */
if (!defined('_PS_VERSION_')) {
    exit;
}

require_once __DIR__ . '/src/autoload.php';

use Comptoir\ConfigurationSettings;
use Comptoir\CurlTransport;
use Comptoir\HookEvents;
use Comptoir\Logger;
use Comptoir\Notification;
use Comptoir\Notifier;
use Comptoir\SettingsForm;
use Comptoir\ShopLogger;
use Comptoir\ShopOrders;
use Comptoir\SystemClock;

class Comptoir extends Module
{
    /** Hook name => the HookEvents method that turns its parameters into a notification. */
    public const HOOKS = [
        'actionValidateOrder' => 'orderCreated',
        'actionOrderStatusPostUpdate' => 'statusChanged',
        'actionObjectOrderUpdateAfter' => 'orderUpdated',
        'actionOrderSlipAdd' => 'slipAdded',
        'actionAdminOrdersTrackingNumberUpdate' => 'trackingNumberUpdated',
        'actionObjectOrderCarrierUpdateAfter' => 'orderCarrierUpdated',
        'actionObjectCustomerMessageAddAfter' => 'messageAdded',
    ];
    private const DOMAIN = 'Modules.Comptoir.Admin';

    /** One queue per request, whichever instance of the module a hook runs on. */
    private static ?Notifier $notifier = null;

    public function __construct()
    {
        $this->name = 'comptoir';
        $this->tab = 'administration';
        $this->version = '1.0.0';
        $this->author = 'Comptoir';
        $this->need_instance = 0;
        $this->ps_versions_compliancy = ['min' => '8.0.0', 'max' => '9.99.99'];
        $this->bootstrap = true;
        parent::__construct();
        $this->displayName = $this->trans('Comptoir', [], self::DOMAIN);
        $this->description = $this->trans(
            'Tells Comptoir within a second when an order changes, so it appears on the desk at once.',
            [],
            self::DOMAIN
        );
    }

    public function isUsingNewTranslationSystem(): bool
    {
        return true;
    }

    public function install(): bool
    {
        if (!parent::install()) {
            return false;
        }
        foreach (array_keys(self::HOOKS) as $hook) {
            if (!$this->registerHook($hook)) {
                return false;
            }
        }

        return Configuration::updateValue(ConfigurationSettings::URL, '')
            && Configuration::updateValue(ConfigurationSettings::SECRET, '');
    }

    public function uninstall(): bool
    {
        return Configuration::deleteByName(ConfigurationSettings::URL)
            && Configuration::deleteByName(ConfigurationSettings::SECRET)
            && parent::uninstall();
    }

    public function hookActionValidateOrder(array $params): void
    {
        $this->notify('actionValidateOrder', $params);
    }

    public function hookActionOrderStatusPostUpdate(array $params): void
    {
        $this->notify('actionOrderStatusPostUpdate', $params);
    }

    public function hookActionObjectOrderUpdateAfter(array $params): void
    {
        $this->notify('actionObjectOrderUpdateAfter', $params);
    }

    public function hookActionOrderSlipAdd(array $params): void
    {
        $this->notify('actionOrderSlipAdd', $params);
    }

    public function hookActionAdminOrdersTrackingNumberUpdate(array $params): void
    {
        $this->notify('actionAdminOrdersTrackingNumberUpdate', $params);
    }

    public function hookActionObjectOrderCarrierUpdateAfter(array $params): void
    {
        $this->notify('actionObjectOrderCarrierUpdateAfter', $params);
    }

    public function hookActionObjectCustomerMessageAddAfter(array $params): void
    {
        $this->notify('actionObjectCustomerMessageAddAfter', $params);
    }

    public function getContent(): string
    {
        $output = '';
        $testing = Tools::isSubmit('submitComptoirTest');
        if ($testing || Tools::isSubmit('submitComptoirSettings')) {
            // The test button saves the form first: paste the URL and secret, click, see.
            $error = $this->saveSettings();
            if ($error !== null) {
                $output .= $this->displayError($error);
            } elseif ($testing) {
                $output .= $this->sendTest();
            } else {
                $output .= $this->displayConfirmation($this->trans('Settings saved.', [], self::DOMAIN));
            }
        }

        return $output . $this->renderForm();
    }

    /** The request's notifier: PrestaShop's settings, curl, its log. */
    protected function notifier(): Notifier
    {
        return self::$notifier ??= new Notifier(
            new ConfigurationSettings(),
            new CurlTransport(),
            new SystemClock(),
            new ShopLogger(),
            $this->version,
            _PS_VERSION_
        );
    }

    /** Queue the hook's notification; whatever happens, the shop's own work goes on. */
    private function notify(string $hook, array $params): void
    {
        try {
            $method = self::HOOKS[$hook];
            $notification = (new HookEvents(new ShopOrders()))->$method($params);
            if ($notification !== null) {
                $this->notifier()->queue($notification);
            }
        } catch (\Throwable $e) {
            (new ShopLogger())->log(
                Logger::ERROR,
                sprintf('hook %s failed, no notification sent. %s: %s', $hook, get_class($e), $e->getMessage()),
                self::orderIdIn($params)
            );
        }
    }

    /** The order a hook is about, for the log line (0 when it cannot tell). */
    private static function orderIdIn(array $params): int
    {
        if (isset($params['id_order'])) {
            return (int) $params['id_order'];
        }
        $object = $params['order'] ?? $params['object'] ?? null;
        if ($object instanceof Order) {
            return (int) $object->id;
        }

        return is_object($object) ? (int) ($object->id_order ?? 0) : 0;
    }

    /** Save the submitted URL and secret; the error to show instead, if any. */
    private function saveSettings(): ?string
    {
        $url = trim((string) Tools::getValue(ConfigurationSettings::URL));
        $secret = (string) Tools::getValue(ConfigurationSettings::SECRET);
        if (!SettingsForm::isWebhookUrl($url)) {
            return $this->trans(
                'The webhook URL must be a full http:// or https:// address, as Comptoir shows it.',
                [],
                self::DOMAIN
            );
        }
        if ($secret === '' && (string) Configuration::get(ConfigurationSettings::SECRET) === '') {
            return $this->trans('Enter the webhook secret Comptoir shows.', [], self::DOMAIN);
        }
        Configuration::updateValue(ConfigurationSettings::URL, $url);
        if ($secret !== '') {
            // Stored as given ($html = true: no strip_tags): Comptoir signs with exactly these bytes.
            Configuration::updateValue(ConfigurationSettings::SECRET, $secret, true);
        }

        return null;
    }

    private function sendTest(): string
    {
        try {
            $outcome = $this->notifier()->send(Notification::test());
        } catch (\Throwable $e) {
            return $this->displayError($this->trans('The test notification failed: %error%', [
                '%error%' => $e->getMessage(),
            ], self::DOMAIN));
        }
        if ($outcome->accepted) {
            return $this->displayConfirmation($this->trans('Comptoir answered: %answer%', [
                '%answer%' => $outcome->detail,
            ], self::DOMAIN));
        }
        if (!$outcome->reached) {
            return $this->displayError($this->trans('Comptoir could not be reached: %error%', [
                '%error%' => $outcome->detail,
            ], self::DOMAIN));
        }

        return $this->displayError($this->trans('Comptoir answered %status%: %error%', [
            '%status%' => (string) $outcome->status,
            '%error%' => $outcome->detail,
        ], self::DOMAIN));
    }

    private function renderForm(): string
    {
        $saved = (string) Configuration::get(ConfigurationSettings::SECRET);
        $secretHelp = $saved === ''
            ? $this->trans('The webhook secret shown on the shop\'s settings page in Comptoir.', [], self::DOMAIN)
            : $this->trans('Saved: %masked%. Leave empty to keep it.', [
                '%masked%' => SettingsForm::mask($saved),
            ], self::DOMAIN);
        $form = [
            'form' => [
                'legend' => ['title' => $this->trans('Comptoir', [], self::DOMAIN), 'icon' => 'icon-cogs'],
                'input' => [
                    [
                        'type' => 'text',
                        'label' => $this->trans('Webhook URL', [], self::DOMAIN),
                        'name' => ConfigurationSettings::URL,
                        'required' => true,
                        'desc' => $this->trans(
                            'The PrestaShop webhook URL shown on the shop\'s settings page in Comptoir.',
                            [],
                            self::DOMAIN
                        ),
                    ],
                    [
                        'type' => 'password',
                        'label' => $this->trans('Webhook secret', [], self::DOMAIN),
                        'name' => ConfigurationSettings::SECRET,
                        'required' => $saved === '',
                        'desc' => $secretHelp,
                    ],
                ],
                'submit' => ['title' => $this->trans('Save', [], self::DOMAIN)],
                'buttons' => [
                    [
                        'type' => 'submit',
                        'name' => 'submitComptoirTest',
                        'title' => $this->trans('Send a test notification', [], self::DOMAIN),
                        'icon' => 'process-icon-envelope',
                        'class' => 'btn btn-default pull-right',
                    ],
                ],
            ],
        ];
        $helper = new HelperForm();
        $helper->module = $this;
        $helper->name_controller = $this->name;
        $helper->table = $this->name;
        $helper->token = Tools::getAdminTokenLite('AdminModules');
        $helper->currentIndex = AdminController::$currentIndex . '&configure=' . $this->name;
        $helper->default_form_language = (int) Configuration::get('PS_LANG_DEFAULT');
        $helper->submit_action = 'submitComptoirSettings';
        $helper->fields_value = [
            ConfigurationSettings::URL => (string) Configuration::get(ConfigurationSettings::URL),
            ConfigurationSettings::SECRET => '',
        ];

        return $helper->generateForm([$form]);
    }
}
