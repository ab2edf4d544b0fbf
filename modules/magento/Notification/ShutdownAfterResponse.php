<?php

declare(strict_types=1);

namespace Comptoir\Connector\Notification;

/**
 * Under PHP-FPM: at shutdown, after the response has gone (fastcgi_finish_request).
 * On the command line (cron, bin/magento, queue consumers) there is no response to wait for and
 * a long-running process would hold the notifications until it exits: the work runs at once.
 */
final class ShutdownAfterResponse implements AfterResponse
{
    public function defer(callable $work): void
    {
        if (PHP_SAPI === 'cli') {
            $work();
            return;
        }
        register_shutdown_function(static function () use ($work): void {
            // Release the session lock first: the buyer's next page must not wait for Comptoir.
            if (session_status() === PHP_SESSION_ACTIVE) {
                session_write_close();
            }
            if (function_exists('fastcgi_finish_request')) {
                fastcgi_finish_request();
            }
            $work();
        });
    }
}
