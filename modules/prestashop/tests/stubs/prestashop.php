<?php
/**
 * The few PrestaShop classes the module calls, as small as the module needs them; rows of the
 * shop's "database" live in StubDb, set by each test.
 *
 * @license AGPL-3.0-or-later
 */
define('_PS_VERSION_', '8.1.7');

final class StubDb
{
    /** @var array<string, array<int, array<string, mixed>>> class => id => fields */
    public static array $rows = [];
    /** @var array<int, list<array<string, mixed>>> id_order => slips, newest first */
    public static array $slips = [];
    public static ?\Throwable $failure = null;

    public static function reset(): void
    {
        self::$rows = [];
        self::$slips = [];
        self::$failure = null;
    }
}

abstract class ObjectModel
{
    public $id;

    public function __construct($id = null)
    {
        if (StubDb::$failure !== null) {
            throw StubDb::$failure;
        }
        $fields = StubDb::$rows[static::class][(int) $id] ?? null;
        if ($fields !== null) {
            $this->id = (int) $id;
            foreach ($fields as $name => $value) {
                $this->$name = $value;
            }
        }
    }
}

class Order extends ObjectModel
{
    public $id_customer;
    public $date_upd;
    public $id_order_carrier = 0;

    public function getIdOrderCarrier()
    {
        return (int) $this->id_order_carrier;
    }
}

class OrderCarrier extends ObjectModel
{
    public $id_order;
    public $tracking_number;
}

class CustomerThread extends ObjectModel
{
    public $id_order;
}

class CustomerMessage extends ObjectModel
{
    public $id_customer_thread;
    public $message;
}

class OrderSlip extends ObjectModel
{
    public static function getOrdersSlip($customer_id, $order_id = false)
    {
        return array_values(array_filter(
            StubDb::$slips[(int) $order_id] ?? [],
            static fn (array $slip): bool => (int) $slip['id_customer'] === (int) $customer_id
        ));
    }
}

class Validate
{
    public static function isLoadedObject($object)
    {
        return is_object($object) && !empty($object->id);
    }
}

class Configuration
{
    /** @var array<string, mixed> */
    public static array $values = [];

    public static function get($key, $idLang = null, $idShopGroup = null, $idShop = null, $default = false)
    {
        return self::$values[$key] ?? $default;
    }

    public static function updateValue($key, $values, $html = false, $idShopGroup = null, $idShop = null)
    {
        // As pSQL($value, $html) stores it: without $html, tags are stripped.
        self::$values[$key] = $html ? $values : strip_tags(nl2br((string) $values));

        return true;
    }

    public static function deleteByName($key)
    {
        unset(self::$values[$key]);

        return true;
    }
}

class PrestaShopLogger
{
    /** @var list<array<string, mixed>> */
    public static array $logs = [];

    public static function addLog($message, $severity = 1, $errorCode = null, $objectType = null, $objectId = null, $allowDuplicate = false, $idEmployee = null)
    {
        self::$logs[] = [
            'message' => $message,
            'severity' => $severity,
            'object_type' => $objectType,
            'object_id' => $objectId,
        ];

        return true;
    }
}

class Tools
{
    /** @var array<string, mixed> the submitted form */
    public static array $values = [];

    public static function isSubmit($submit)
    {
        return array_key_exists($submit, self::$values);
    }

    public static function getValue($key, $defaultValue = false)
    {
        return self::$values[$key] ?? $defaultValue;
    }

    public static function getAdminTokenLite($tab)
    {
        return 'token-' . $tab;
    }
}

class AdminController
{
    public static $currentIndex = 'index.php?controller=AdminModules';
}

class HelperForm
{
    public static ?HelperForm $last = null;
    public $module;
    public $name_controller;
    public $table;
    public $token;
    public $currentIndex;
    public $default_form_language;
    public $submit_action;
    public $fields_value = [];
    public $forms = [];

    public function generateForm($fields_form)
    {
        $this->forms = $fields_form;
        self::$last = $this;

        return '<form>';
    }
}

class Module
{
    public $name;
    public $tab;
    public $version;
    public $author;
    public $need_instance;
    public $ps_versions_compliancy;
    public $bootstrap;
    public $displayName;
    public $description;
    /** @var list<string> */
    public array $registeredHooks = [];
    public bool $installed = false;

    public function __construct($name = null, $context = null)
    {
    }

    public function install()
    {
        $this->installed = true;

        return true;
    }

    public function uninstall()
    {
        $this->installed = false;

        return true;
    }

    public function registerHook($hook_name, $shop_list = null)
    {
        foreach ((array) $hook_name as $hook) {
            $this->registeredHooks[] = $hook;
        }

        return true;
    }

    public function trans($id, array $parameters = [], $domain = null, $locale = null)
    {
        return strtr($id, $parameters);
    }

    public function displayConfirmation($string)
    {
        return '<div class="alert alert-success">' . $string . '</div>';
    }

    public function displayError($error)
    {
        return '<div class="alert alert-danger">' . $error . '</div>';
    }
}
