<?php
/**
 * @license AGPL-3.0-or-later
 */

namespace Comptoir;

if (!defined('_PS_VERSION_')) {
    exit;
}

/**
 * Queues the request's notifications and sends them once the shop's response is out.
 *
 * Hooks only queue; the first queued notification schedules flush() as a shutdown function,
 * which first lets the buyer go (fastcgi_finish_request) and then POSTs each notification,
 * signed. Nothing here throws to its caller: failures are logged and the change probe catches up.
 */
final class Notifier
{
    /** @var array<string, Notification> */
    private array $queue = [];
    private bool $scheduled = false;
    private \Closure $defer;
    private \Closure $finishResponse;

    /**
     * @param \Closure(callable): void|null $defer runs its callable at the end of the request
     * @param \Closure(): void|null $finishResponse sends the response before the notifications
     */
    public function __construct(
        private readonly Settings $settings,
        private readonly Transport $transport,
        private readonly Clock $clock,
        private readonly Logger $logger,
        private readonly string $moduleVersion,
        private readonly string $platformVersion,
        ?\Closure $defer = null,
        ?\Closure $finishResponse = null
    ) {
        $this->defer = $defer ?? static function (callable $flush): void {
            register_shutdown_function($flush);
        };
        $this->finishResponse = $finishResponse ?? static function (): void {
            ignore_user_abort(true);
            if (function_exists('fastcgi_finish_request')) {
                fastcgi_finish_request();
            } elseif (function_exists('litespeed_finish_request')) {
                litespeed_finish_request();
            }
        };
    }

    /** Base64 HMAC-SHA256 of the raw body: the X-Comptoir-Hmac-Sha256 header. */
    public static function sign(string $body, string $secret): string
    {
        return base64_encode(hash_hmac('sha256', $body, $secret, true));
    }

    public function isConfigured(): bool
    {
        return $this->settings->url() !== '' && $this->settings->secret() !== '';
    }

    /** Queue a notification for the end of the request (nothing when not configured). */
    public function queue(Notification $notification): void
    {
        if (!$this->isConfigured()) {
            return;
        }
        $this->queue[$notification->key()] = $notification;
        if (!$this->scheduled) {
            $this->scheduled = true;
            ($this->defer)(function (): void {
                $this->flush();
            });
        }
    }

    /** @return list<Notification> what the end of the request will send */
    public function pending(): array
    {
        return array_values($this->queue);
    }

    /** Send what is queued, after the response; log each failure, throw nothing. */
    public function flush(): void
    {
        $queue = $this->queue;
        $this->queue = [];
        $this->scheduled = false;
        if ($queue === []) {
            return;
        }
        try {
            ($this->finishResponse)();
        } catch (\Throwable $e) {
            // The notifications still go; only the buyer waits a little longer.
        }
        $unreachable = null;
        $skipped = 0;
        foreach ($queue as $notification) {
            if ($unreachable !== null) {
                // One timeout is enough: the rest would each cost another 2 s for nothing.
                ++$skipped;
                continue;
            }
            try {
                $outcome = $this->send($notification);
            } catch (\Throwable $e) {
                $this->logFailure($notification, Logger::ERROR, get_class($e) . ': ' . $e->getMessage());
                continue;
            }
            if ($outcome->accepted) {
                continue;
            }
            $this->logFailure($notification, self::severity($outcome), $outcome->describe());
            if (!$outcome->reached) {
                $unreachable = $outcome;
            }
        }
        if ($skipped > 0) {
            $this->logger->log(
                Logger::WARNING,
                sprintf('%d more notification(s) not sent: Comptoir is unreachable; its change probe will catch up', $skipped),
                0
            );
        }
    }

    /** Sign and POST one notification now; how it went (throws only on a bug). */
    public function send(Notification $notification): Outcome
    {
        $url = $this->settings->url();
        $secret = $this->settings->secret();
        if ($url === '' || $secret === '') {
            return new Outcome(false, 0, 'the Comptoir URL or secret is not configured', false);
        }
        $body = $notification->body($this->clock->now(), $this->moduleVersion, $this->platformVersion);
        $headers = [
            'Content-Type' => 'application/json',
            'User-Agent' => sprintf('Comptoir-PrestaShop/%s (PrestaShop %s)', $this->moduleVersion, $this->platformVersion),
            'X-Comptoir-Event' => $notification->event,
            'X-Comptoir-Hmac-Sha256' => self::sign($body, $secret),
        ];
        try {
            $response = $this->transport->post($url, $body, $headers);
        } catch (TransportFailed $e) {
            return new Outcome(false, 0, $e->getMessage(), false);
        }
        $answer = json_decode($response->body, true);
        if ($response->status >= 200 && $response->status < 300) {
            $word = is_array($answer) && is_string($answer['status'] ?? null) ? $answer['status'] : '';

            return new Outcome(true, $response->status, $word, true);
        }
        $error = is_array($answer) && is_string($answer['error'] ?? null)
            ? $answer['error']
            : mb_substr(trim(strip_tags($response->body)), 0, 200, 'UTF-8');

        return new Outcome(false, $response->status, $error, true);
    }

    private static function severity(Outcome $outcome): int
    {
        // A 4xx means the module's settings are wrong: that needs the merchant, not patience.
        return $outcome->status >= 400 && $outcome->status < 500 ? Logger::ERROR : Logger::WARNING;
    }

    private function logFailure(Notification $notification, int $severity, string $why): void
    {
        $this->logger->log(
            $severity,
            sprintf('notification %s for order %s not sent. %s', $notification->event, $notification->orderId, $why),
            $notification->orderIdAsInt()
        );
    }
}
