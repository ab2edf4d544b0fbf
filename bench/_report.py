"""How every bench script reports: figures against a baseline measured in the same run, and
whether each target holds.

    report = Report("webhook intake", full=args.full)
    report.baseline("GET /healthz", 1850.0, "req/s")
    report.figure("signed deliveries", 1020.0, "req/s", baseline="GET /healthz")
    report.target("deliveries/healthz ≥ 0.4", 1020 / 1850 >= 0.4, "0.55")
    sys.exit(report.finish())

Figures are printed as they come. `finish()` prints the targets (HOLDS / MISSED) and, when
BENCH_RESULTS names a folder, writes `<script>.json` there (what `make bench` gathers into
docs/PERFORMANCE.md). A missed target is a finding, not a crash: `finish()` returns 0 unless
`strict` is set; a script that could not check its own results (a lost delivery, a wrong count)
exits non-zero itself.

Quick mode is the default (sizes that finish in well under a minute); `--full` or BENCH_FULL=1
selects the sizes the issue's targets are stated for.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path


def full_mode(flag: bool = False) -> bool:
    """The full sizes: asked by `--full` or by BENCH_FULL=1 (what `make bench` passes on)."""
    return flag or os.environ.get("BENCH_FULL") == "1"


@dataclass
class Figure:
    name: str
    value: float
    unit: str
    baseline: str | None = None
    ratio: float | None = None


@dataclass
class Target:
    description: str
    holds: bool
    detail: str = ""


@dataclass
class Report:
    title: str
    full: bool = False
    script: str = field(default_factory=lambda: Path(sys.argv[0]).stem)
    figures: list[Figure] = field(default_factory=list)
    targets: list[Target] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        mode = "full" if self.full else "quick"
        print(f"== {self.title} ({mode} mode) ==", flush=True)

    def _value(self, name: str) -> float:
        for figure in self.figures:
            if figure.name == name:
                return figure.value
        raise KeyError(f"no figure named {name!r} measured yet")

    def baseline(self, name: str, value: float, unit: str) -> Figure:
        figure = Figure(name, value, unit)
        self.figures.append(figure)
        print(f"baseline  {name:<52} {value:10.2f} {unit}", flush=True)
        return figure

    def figure(self, name: str, value: float, unit: str, baseline: str | None = None) -> Figure:
        """A figure, with its ratio to an earlier figure when `baseline` names one."""
        ratio = None
        if baseline is not None:
            base = self._value(baseline)
            ratio = value / base if base else None
        figure = Figure(name, value, unit, baseline, ratio)
        self.figures.append(figure)
        shown = f"  {ratio:6.2f}x {baseline}" if ratio is not None else ""
        print(f"figure    {name:<52} {value:10.2f} {unit}{shown}", flush=True)
        return figure

    def target(self, description: str, holds: bool, detail: str = "") -> bool:
        self.targets.append(Target(description, holds, detail))
        verdict = "HOLDS" if holds else "MISSED"
        print(f"target    {description:<52} {verdict}  {detail}".rstrip(), flush=True)
        return holds

    def note(self, text: str) -> None:
        self.notes.append(text)
        print(f"note      {text}", flush=True)

    def finish(self, strict: bool = False) -> int:
        missed = [t for t in self.targets if not t.holds]
        print(f"targets   {len(self.targets) - len(missed)} held, {len(missed)} missed", flush=True)
        folder = os.environ.get("BENCH_RESULTS")
        if folder:
            path = Path(folder) / f"{self.script}.json"
            path.parent.mkdir(parents=True, exist_ok=True)
            data = {
                "script": self.script,
                "title": self.title,
                "mode": "full" if self.full else "quick",
                "figures": [asdict(f) for f in self.figures],
                "targets": [asdict(t) for t in self.targets],
                "notes": self.notes,
            }
            path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n")
        return 1 if strict and missed else 0
