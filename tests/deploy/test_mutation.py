"""bin/mutation (make mutation) still runs end to end on a tiny sample: it scores the module in
its own report and leaves the working tree as it was (mutmut works in a scratch copy)."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MODULE = "web/services/csvsafe.py"

pytestmark = pytest.mark.skipif(
    bool(os.environ.get("TEST_DATABASE_URL")),
    reason="mutation testing runs on SQLite only: nothing here depends on the database",
)


def tree_state() -> str:
    status = subprocess.run(
        ["git", "status", "--porcelain", "--untracked-files=all"],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    return status


def test_a_sampled_run_scores_the_module_and_leaves_the_tree_untouched(tmp_path: Path) -> None:
    doc = tmp_path / "MUTATION.md"
    doc.write_text(
        "# Mutation\n\n<!-- mutation-table -->\n<!-- /mutation-table -->\n\n"
        "<!-- mutation-survivors -->\n<!-- /mutation-survivors -->\n",
        encoding="utf-8",
    )
    source = (ROOT / MODULE).read_bytes()
    before = tree_state()
    env = {k: v for k, v in os.environ.items() if k != "TEST_DATABASE_URL"}
    result = subprocess.run(
        [sys.executable, "bin/mutation", "--module", "csvsafe", "--sample", "4", "--jobs", "1"]
        + ["--tests", "tests/services/test_csvsafe.py", "--scratch", str(tmp_path / "scratch")]
        + ["--doc", str(doc)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    line = rf"=== {MODULE}: (\d+)/4 killed, [\d.]+ % \(sample 4 of (\d+)\)"
    score = re.search(line, result.stdout)
    assert score is not None, result.stdout[-2000:]
    killed, total = int(score.group(1)), int(score.group(2))
    assert killed <= 4 < total
    report = doc.read_text(encoding="utf-8")
    assert re.search(rf"\| `{MODULE}` \| {killed}/4 \| .* \| sample 4 of {total} \|", report)
    assert f"#### `{MODULE}` ({4 - killed})" in report
    # The mutants lived in the scratch copy only.
    assert (ROOT / MODULE).read_bytes() == source
    assert tree_state() == before
    assert (tmp_path / "scratch" / "services.csvsafe" / "mutants" / MODULE).exists()
