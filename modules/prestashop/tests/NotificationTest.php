<?php
/**
 * The body and its signature, byte for byte as docs/NOTIFICATIONS.md shows them.
 *
 * @license AGPL-3.0-or-later
 */

namespace Comptoir\Tests;

use Comptoir\Notification;
use Comptoir\Notifier;
use Comptoir\SettingsForm;
use PHPUnit\Framework\TestCase;

final class NotificationTest extends TestCase
{
    private const CONTRACT_EXAMPLE = '{"version":1,"event":"order.status_changed","order_id":"1042",'
        . '"date_upd":"2026-12-04 10:15:02","sent_at":"2026-12-04T10:15:02+01:00",'
        . '"module_version":"1.0.0","platform_version":"8.1.7"}';

    public function testTheBodyIsTheContractsExampleByteForByte(): void
    {
        $body = (new Notification('order.status_changed', '1042', '2026-12-04 10:15:02'))
            ->body(new \DateTimeImmutable('2026-12-04T10:15:02+01:00'), '1.0.0', '8.1.7');

        $this->assertSame(self::CONTRACT_EXAMPLE, $body);
    }

    public function testTheSignatureMatchesAVectorComputedInPython(): void
    {
        // python3: base64.b64encode(hmac.new(b"comptoir-test-secret", body, hashlib.sha256).digest())
        $this->assertSame(
            'Mi4hLKaII1CBB/k+3yjO3rJwuY+MfEknzeEjr5z8+OI=',
            Notifier::sign(self::CONTRACT_EXAMPLE, 'comptoir-test-secret')
        );
    }

    public function testTheSignatureCoversEveryByte(): void
    {
        $tampered = str_replace('"1042"', '"1043"', self::CONTRACT_EXAMPLE);

        $this->assertNotSame(
            Notifier::sign(self::CONTRACT_EXAMPLE, 'comptoir-test-secret'),
            Notifier::sign($tampered, 'comptoir-test-secret')
        );
        $this->assertNotSame(
            Notifier::sign(self::CONTRACT_EXAMPLE, 'comptoir-test-secret'),
            Notifier::sign(self::CONTRACT_EXAMPLE, 'comptoir-test-secret ')
        );
    }

    public function testAChangeIdIsCutAt100CharactersAndSlashesAndAccentsStayReadable(): void
    {
        $notification = new Notification('order.shipped', '7', '2026-12-04 10:15:02', 'tracking:12:' . str_repeat('É/', 60));

        $body = json_decode($notification->body(new \DateTimeImmutable(), '1.0.0', '9.0.0'), true);

        $this->assertSame(100, mb_strlen($body['change_id']));
        $this->assertStringStartsWith('tracking:12:É/É/', $body['change_id']);
        $this->assertSame(['version', 'event', 'order_id', 'date_upd', 'change_id', 'sent_at', 'module_version', 'platform_version'], array_keys($body));
    }

    public function testTheSecretIsShownMasked(): void
    {
        $this->assertSame('', SettingsForm::mask(''));
        $this->assertSame('••••••••', SettingsForm::mask('short-secret'));
        $this->assertSame('••••••••cdef', SettingsForm::mask('whsec_0123456789abcdef'));
    }
}
