<?php
/**
 * One PrestaShop request, as a separate PHP process: the module as shipped (its own notifier,
 * curl, register_shutdown_function), configured to the URL given, sees a status change fire
 * its hooks twice, and the request ends. What reaches the URL is checked by the caller.
 *
 *   php request.php <webhook url> <secret>
 *
 * @license AGPL-3.0-or-later
 */
require __DIR__ . '/../stubs/prestashop.php';
require __DIR__ . '/../../comptoir/comptoir.php';

Configuration::updateValue('COMPTOIR_URL', $argv[1]);
Configuration::updateValue('COMPTOIR_SECRET', $argv[2], true);
StubDb::$rows[Order::class][1042] = ['id_customer' => 7, 'date_upd' => '2026-12-04 10:15:02'];

$module = new Comptoir();
$order = new Order(1042);
$module->hookActionOrderStatusPostUpdate(['id_order' => 1042]);
$module->hookActionObjectOrderUpdateAfter(['object' => $order]);
$module->hookActionOrderStatusPostUpdate(['id_order' => 1042]);
echo "hooks done\n";
