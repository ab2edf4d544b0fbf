"""axe-core in the browser tests: the audit every page must pass with no violation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

# axe-core from npm (MPL-2.0), vendored like the front-end libraries: version in the name.
AXE = Path(__file__).parent / "vendor" / "axe-4.14.1.min.js"
WCAG_TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


def install_axe(page: Any) -> None:
    """Make axe available on every document the page's context loads (CSP-proof)."""
    page.context.add_init_script(path=str(AXE))


def axe_violations(page: Any) -> list[str]:
    """Run axe on the page as it is (WCAG 2.x A and AA rules); one line per violation."""
    return page.evaluate(
        """async (tags) => {
            const result = await axe.run(document, {runOnly: {type: 'tag', values: tags}});
            return result.violations.map(
                (v) => `${v.id}: ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`
            );
        }""",
        WCAG_TAGS,
    )
