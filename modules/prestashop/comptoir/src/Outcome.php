<?php
/**
 * @license AGPL-3.0-or-later
 */

namespace Comptoir;

if (!defined('_PS_VERSION_')) {
    exit;
}

/** How one notification went: accepted (with Comptoir's status word) or why not. */
final class Outcome
{
    public function __construct(
        public readonly bool $accepted,
        public readonly int $status,
        public readonly string $detail,
        public readonly bool $reached
    ) {
    }

    public function describe(): string
    {
        if ($this->accepted) {
            return 'Comptoir answered: ' . $this->detail;
        }
        if (!$this->reached) {
            return 'Comptoir could not be reached: ' . $this->detail;
        }

        return 'Comptoir answered ' . $this->status . ($this->detail !== '' ? ': ' . $this->detail : '');
    }
}
