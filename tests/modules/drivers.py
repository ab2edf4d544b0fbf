"""The modules' PHP drivers: one notification sent by a module's own code (its notifier, its
signing, its curl transport, as shipped, with the platform's classes stubbed), in a PHP process
of its own — for the contract test (tests/modules/test_contract.py) and the propagation bench
(bench/shop_propagation.py)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
DRIVERS = {
    "prestashop": ROOT / "modules/prestashop/tests/scripts/notify.php",
    "magento": ROOT / "modules/magento/Test/scripts/notify.php",
}


def notify(
    platform: str,
    webhook_url: str,
    secret: str,
    order_id: str,
    date_upd: str,
    event: str,
    *,
    tamper: bool = False,
) -> dict[str, Any]:
    """Send one notification with the module's PHP driver; what the module made of the answer."""
    args = [webhook_url, secret, order_id, date_upd, event] + (["tamper"] if tamper else [])
    result = subprocess.run(
        ["php", str(DRIVERS[platform]), *args], capture_output=True, text=True, timeout=30
    )
    if result.returncode != 0:
        raise RuntimeError(f"{DRIVERS[platform].name} failed: {result.stdout}{result.stderr}")
    answer: dict[str, Any] = json.loads(result.stdout)
    return answer
