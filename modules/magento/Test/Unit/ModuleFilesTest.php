<?php

declare(strict_types=1);

namespace Comptoir\Connector\Test\Unit;

use Comptoir\Connector\Model\Config;
use Comptoir\Connector\Notification\Recorder;
use Magento\Framework\Event\ObserverInterface;
use PHPUnit\Framework\TestCase;

/** The module's declarations, read as Magento reads them. */
final class ModuleFilesTest extends TestCase
{
    private const ROOT = __DIR__ . '/../..';

    private const OBSERVED = [
        'sales_order_save_after' => Recorder::ORDER,
        'sales_order_invoice_save_after' => Recorder::INVOICE,
        'sales_order_shipment_save_after' => Recorder::SHIPMENT,
        'sales_order_shipment_track_save_after' => Recorder::TRACK,
        'sales_order_creditmemo_save_after' => Recorder::CREDITMEMO,
        'sales_order_status_history_save_after' => Recorder::STATUS_HISTORY,
    ];

    public function testEventsXmlDeclaresExactlyTheObserversAndEachIsAnObserver(): void
    {
        $declared = [];
        foreach ($this->xml('etc/events.xml')->event as $event) {
            self::assertCount(1, $event->observer, (string) $event['name']);
            $declared[(string) $event['name']] = (string) $event->observer['instance'];
        }

        self::assertSame(array_keys(self::OBSERVED), array_keys($declared));
        foreach ($declared as $name => $class) {
            self::assertTrue(class_exists($class), $class);
            self::assertTrue(is_subclass_of($class, ObserverInterface::class), $class);
            self::assertSame(self::OBSERVED[$name], (new \ReflectionClassConstant($class, 'KIND'))->getValue(), $class);
        }
    }

    public function testModuleAndComposerDeclarations(): void
    {
        $module = $this->xml('etc/module.xml')->module;
        self::assertSame('Comptoir_Connector', (string) $module['name']);
        self::assertSame('Magento_Sales', (string) $module->sequence->module['name']);

        $composer = json_decode((string) file_get_contents(self::ROOT . '/composer.json'), true, 8, JSON_THROW_ON_ERROR);
        self::assertSame('comptoir/module-connector', $composer['name']);
        self::assertSame('magento2-module', $composer['type']);
        self::assertSame(['Comptoir\\Connector\\' => ''], $composer['autoload']['psr-4']);
        self::assertSame(['registration.php'], $composer['autoload']['files']);
        self::assertStringContainsString("'Comptoir_Connector'", (string) file_get_contents(self::ROOT . '/registration.php'));
    }

    public function testConfigurationDefaultsAndFieldsMatchTheConfigReader(): void
    {
        $defaults = $this->xml('etc/config.xml')->default->comptoir->notifications;
        self::assertSame('0', (string) $defaults->enabled);
        self::assertSame('2', (string) $defaults->timeout);

        $section = $this->xml('etc/adminhtml/system.xml')->system->section;
        self::assertSame('sales', (string) $section->tab);
        $fields = [];
        foreach ($section->group->field as $field) {
            $fields[sprintf('%s/%s/%s', $section['id'], $section->group['id'], $field['id'])] = $field;
        }
        foreach ([Config::XML_PATH_ENABLED, Config::XML_PATH_WEBHOOK_URL, Config::XML_PATH_SECRET, Config::XML_PATH_TIMEOUT] as $path) {
            self::assertArrayHasKey($path, $fields);
        }
        $secret = $fields[Config::XML_PATH_SECRET];
        self::assertSame('obscure', (string) $secret['type']);
        self::assertSame('Magento\\Config\\Model\\Config\\Backend\\Encrypted', (string) $secret->backend_model);
        $button = (string) $fields['comptoir/notifications/test']->frontend_model;
        self::assertFileExists(self::ROOT . '/' . str_replace(['Comptoir\\Connector\\', '\\'], ['', '/'], $button) . '.php');
    }

    public function testTheTestButtonsRouteAndAclAreWired(): void
    {
        $route = $this->xml('etc/adminhtml/routes.xml')->router->route;
        self::assertSame('comptoir', (string) $route['frontName']);
        self::assertFileExists(self::ROOT . '/Controller/Adminhtml/Notification/Test.php');
        $controller = (string) file_get_contents(self::ROOT . '/Controller/Adminhtml/Notification/Test.php');
        self::assertStringContainsString("ADMIN_RESOURCE = 'Comptoir_Connector::config'", $controller);
        self::assertStringContainsString("'comptoir/notification/test'", (string) file_get_contents(self::ROOT . '/Block/Adminhtml/System/Config/TestButton.php'));
        self::assertCount(1, $this->xml('etc/acl.xml')->xpath('//resource[@id="Comptoir_Connector::config"]'));
        self::assertSame('Comptoir_Connector::config', (string) $this->xml('etc/adminhtml/system.xml')->system->section->resource);
    }

    public function testDiPreferencesResolveAndTheLogGoesToItsOwnFile(): void
    {
        $di = $this->xml('etc/di.xml');
        foreach ($di->preference as $preference) {
            $interface = (string) $preference['for'];
            $class = (string) $preference['type'];
            self::assertTrue(interface_exists($interface), $interface);
            self::assertTrue(is_subclass_of($class, $interface), $class);
        }
        self::assertCount(5, $di->preference);
        self::assertSame(['/var/log/comptoir.log'], array_map('strval', $di->xpath('//virtualType/arguments/argument[@name="fileName"]')));
    }

    /** The files PHPUnit does not load itself: Magento glue and the template. */
    public function testEveryModuleFileParses(): void
    {
        $files = new \RegexIterator(
            new \RecursiveIteratorIterator(new \RecursiveDirectoryIterator(self::ROOT, \FilesystemIterator::SKIP_DOTS)),
            '/\.(php|phtml)$/',
        );
        $broken = [];
        foreach ($files as $file) {
            if (str_contains((string) $file, '/Test/')) {
                continue;
            }
            exec(escapeshellarg(PHP_BINARY) . ' -l ' . escapeshellarg((string) $file) . ' 2>&1', $output, $status);
            if ($status !== 0) {
                $broken[] = (string) $file;
            }
        }
        self::assertSame([], $broken);
    }

    private function xml(string $path): \SimpleXMLElement
    {
        $xml = simplexml_load_file(self::ROOT . '/' . $path);
        self::assertNotFalse($xml, $path);
        return $xml;
    }
}
