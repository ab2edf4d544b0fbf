"""axe-core in the browser tests: the audit every page must pass with no violation."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

# axe-core from npm (MPL-2.0), vendored like the front-end libraries: version in the name.
AXE = Path(__file__).parent / "vendor" / "axe-4.14.1.min.js"
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


@cache
def _axe_source() -> str:
    return AXE.read_text(encoding="utf-8")


def install_axe(page: Any) -> None:
    """Nothing to do before the pages load: axe_violations brings axe into the page audited.

    Kept so a test says where its audit starts; loading axe into every document the context
    opened (an init script) parsed half a megabyte of script on every navigation.
    """


def axe_violations(page: Any) -> list[str]:
    """Run axe on the page as it is (WCAG 2.x A and AA rules); one line per violation.

    axe is evaluated through the DevTools protocol, which the page's Content-Security-Policy
    does not govern (a script tag would be refused by it).
    """
    if not page.evaluate("typeof window.axe !== 'undefined'"):
        page.evaluate(_axe_source())
    return page.evaluate(
        """async (tags) => {
            const result = await axe.run(document, {runOnly: {type: 'tag', values: tags}});
            return result.violations.map(
                (v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`
            );
        }""",
        WCAG_TAGS,
    )
