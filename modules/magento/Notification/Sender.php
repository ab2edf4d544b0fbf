<?php

declare(strict_types=1);

namespace Comptoir\Connector\Notification;

use Psr\Log\LoggerInterface;

/**
 * Builds, signs and posts one notification as docs/NOTIFICATIONS.md says. Never throws and never
 * retries: a failure is logged once and Comptoir's change probe catches the change up.
 */
final class Sender
{
    public const MODULE_VERSION = '1.0.0';
    public const SIGNATURE_HEADER = 'X-Comptoir-Hmac-Sha256';
    public const EVENT_HEADER = 'X-Comptoir-Event';
    /** Enough of Comptoir's answer to tell the merchant what went wrong. */
    private const ANSWER_LOGGED = 300;

    public function __construct(
        private readonly Config $config,
        private readonly Transport $transport,
        private readonly Clock $clock,
        private readonly LoggerInterface $logger,
    ) {
    }

    /** Switched on and given a URL and a secret. */
    public function isActive(): bool
    {
        return $this->config->isEnabled() && $this->isConfigured();
    }

    public function isConfigured(): bool
    {
        return $this->config->webhookUrl() !== '' && $this->config->secret() !== '';
    }

    /** Base64 of HMAC-SHA256 over the raw body, as Comptoir checks it. */
    public static function sign(string $body, string $secret): string
    {
        return base64_encode(hash_hmac('sha256', $body, $secret, true));
    }

    public function body(Notification $notification): string
    {
        $body = [
            'version' => 1,
            'event' => $notification->event,
            'order_id' => $notification->orderId,
            'date_upd' => $notification->dateUpd,
        ];
        if ($notification->changeId !== null) {
            $body['change_id'] = $notification->changeId;
        }
        $body['sent_at'] = $this->clock->now()->format(\DATE_ATOM);
        $body['module_version'] = self::MODULE_VERSION;
        $body['platform_version'] = $this->config->platformVersion();
        return json_encode($body, JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE | JSON_THROW_ON_ERROR);
    }

    /** Send a change when the module is switched on and configured; otherwise send nothing. */
    public function send(Notification $notification): Outcome
    {
        if (!$this->isActive()) {
            return new Outcome(false, 0, 'Comptoir notifications are switched off or not configured.');
        }
        return $this->post($notification);
    }

    /** The configuration page's button: enabled or not, a configured module pings Comptoir. */
    public function sendTest(): Outcome
    {
        if (!$this->isConfigured()) {
            return new Outcome(false, 0, 'Save a webhook URL and a secret first.');
        }
        return $this->post(Notification::test());
    }

    private function post(Notification $notification): Outcome
    {
        try {
            $body = $this->body($notification);
        } catch (\JsonException $exc) {
            return $this->failed($notification, 0, 'not sent, unencodable: ' . $exc->getMessage());
        }
        try {
            $answer = $this->transport->post(
                $this->config->webhookUrl(),
                [
                    'Content-Type' => 'application/json',
                    'User-Agent' => sprintf(
                        'Comptoir-Magento/%s (Magento %s)',
                        self::MODULE_VERSION,
                        $this->config->platformVersion(),
                    ),
                    self::EVENT_HEADER => $notification->event,
                    self::SIGNATURE_HEADER => self::sign($body, $this->config->secret()),
                ],
                $body,
                $this->config->timeoutSeconds(),
            );
        } catch (\Throwable $exc) {
            return $this->failed($notification, 0, 'not sent: ' . $exc->getMessage(), true);
        }
        $said = mb_substr(trim($answer->body), 0, self::ANSWER_LOGGED);
        if ($answer->status < 200 || $answer->status >= 300) {
            return $this->failed($notification, $answer->status, sprintf('Comptoir answered %d: %s', $answer->status, $said));
        }
        return new Outcome(true, $answer->status, sprintf('Comptoir answered %d: %s', $answer->status, $said));
    }

    private function failed(Notification $notification, int $status, string $message, bool $unreachable = false): Outcome
    {
        $this->logger->warning('Comptoir notification failed: ' . $message, [
            'event' => $notification->event,
            'order_id' => $notification->orderId,
            'date_upd' => $notification->dateUpd,
            'change_id' => $notification->changeId,
        ]);
        return new Outcome(false, $status, $message, $unreachable);
    }
}
