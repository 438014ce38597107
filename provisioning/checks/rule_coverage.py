#!/usr/bin/env python3
"""Checks that every alert rule's unit tests can tell it firing from not firing.

For each `- alert: NAME` in prometheus/rules/*.yml:
  1. the tests in prometheus/tests/*.yml hold at least one `alertname: NAME`
     case that expects alerts and one that expects none (`exp_alerts: []`);
  2. with that one rule renamed (so it can never raise NAME), `promtool test
     rules` must FAIL: proof that a firing case really depends on the rule.

Usage: rule_coverage.py PROMETHEUS_DIR   (prints a one-line summary)
"""

import pathlib
import re
import shutil
import subprocess
import sys
import tempfile

ALERT = re.compile(r"^\s*-\s*alert:\s*(\S+)\s*$", re.M)
CASE = re.compile(r"alertname:\s*(\S+)\s*\n\s*exp_alerts:\s*(\[\s*\])?")


def main(prom_dir: pathlib.Path) -> int:
    rule_files = sorted((prom_dir / "rules").glob("*.yml"))
    test_files = sorted((prom_dir / "tests").glob("*.yml"))
    alerts = [(f, name) for f in rule_files for name in ALERT.findall(f.read_text())]
    fires: dict[str, int] = {}
    quiet: dict[str, int] = {}
    for t in test_files:
        for name, empty in CASE.findall(t.read_text()):
            bucket = quiet if empty else fires
            bucket[name] = bucket.get(name, 0) + 1

    problems = []
    names = {n for _, n in alerts}
    for name in sorted(set(fires) | set(quiet)):
        if name not in names:
            problems.append(f"tests name alert {name}, which no rule defines")
    for _, name in alerts:
        if not fires.get(name):
            problems.append(f"{name}: no test case expects it to fire")
        if not quiet.get(name):
            problems.append(f"{name}: no test case expects it not to fire (exp_alerts: [])")

    # Mutation: rename one alert at a time in a copy of the folder; the tests must fail.
    for rule_file, name in alerts:
        with tempfile.TemporaryDirectory() as tmp:
            copy = pathlib.Path(tmp) / "prometheus"
            shutil.copytree(prom_dir, copy)
            target = copy / "rules" / rule_file.name
            text = target.read_text()
            mutated = re.sub(rf"(^\s*-\s*alert:\s*){re.escape(name)}\s*$", rf"\g<1>{name}Renamed", text, flags=re.M)
            target.write_text(mutated)
            run = subprocess.run(
                ["promtool", "test", "rules", *[str(copy / "tests" / t.name) for t in test_files]],
                capture_output=True,
                text=True,
                timeout=120,
            )
            if run.returncode == 0:
                problems.append(f"{name}: the tests still pass with the rule removed")

    for p in problems:
        print(f"rule coverage: {p}", file=sys.stderr)
    if problems:
        return 1
    print(
        f"rule coverage: {len(alerts)} alert rules, {sum(fires.values())} firing and "
        f"{sum(quiet.values())} not-firing test cases in {len(test_files)} files; "
        f"each rule's removal fails the tests"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main(pathlib.Path(sys.argv[1])))
