#!/usr/bin/env python3
"""Checks the links every alert rule carries.

For each `- alert: NAME` in prometheus/rules/*.yml:
  1. a `runbook_url` annotation `provisioning/RUNBOOK.md#ANCHOR` whose anchor is
     a heading of that file (GitHub's anchor for it), and
  2. a `dashboard` annotation `<grafana>/d/UID/SLUG?var-NAME=...` whose UID is a
     provisioned dashboard, SLUG its title's, and each NAME one of its template
     variables (so the link opens the dashboard filtered, not an error page).
It proves itself first: a rule file with a missing section must be refused.

Usage: alert_links.py REPO_ROOT   (prints a one-line summary)
"""

import json
import pathlib
import re
import sys
import urllib.parse

ALERT = re.compile(r"^(\s*)- alert:\s*(\S+)\s*\n((?:\1  .*\n|\s*\n)*)", re.M)
ANNOTATION = re.compile(r'^\s+(runbook_url|dashboard):\s*"([^"]*)"\s*$', re.M)


def anchor(heading):
    """GitHub's anchor for a Markdown heading: lower case, punctuation dropped, spaces to dashes."""
    return re.sub(r"[^a-z0-9 _-]", "", heading.strip().lower()).replace(" ", "-")


def anchors(markdown):
    return {anchor(m.group(1)) for m in re.finditer(r"^#{1,6}\s+(.+?)\s*$", markdown, re.M)}


def slug(title):
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


def problems(rules_text, root):
    dashboards = {}
    for f in (root / "provisioning/grafana/dashboards").glob("*.json"):
        d = json.loads(f.read_text())
        dashboards[d["uid"]] = (slug(d["title"]), {v["name"] for v in d["templating"]["list"]})
    found = []
    alerts = ALERT.findall(rules_text)
    if not alerts:
        found.append("no alert rules found")
    for _, name, body in alerts:
        links = dict(ANNOTATION.findall(body))
        runbook = links.get("runbook_url")
        if not runbook:
            found.append(f"{name}: no runbook_url annotation")
        else:
            path, _, frag = runbook.partition("#")
            doc = root / path
            if not doc.is_file():
                found.append(f"{name}: runbook_url {runbook}: no file {path}")
            elif frag not in anchors(doc.read_text()):
                found.append(f"{name}: runbook_url {runbook}: {path} has no section #{frag}")
        dash = links.get("dashboard")
        if not dash:
            found.append(f"{name}: no dashboard annotation")
            continue
        url = urllib.parse.urlsplit(dash)
        m = re.fullmatch(r"/d/([^/]+)/([^/]+)", url.path)
        if not m or m.group(1) not in dashboards:
            found.append(f"{name}: dashboard {dash}: no provisioned dashboard with that uid")
            continue
        want_slug, variables = dashboards[m.group(1)]
        if m.group(2) != want_slug:
            found.append(f"{name}: dashboard {dash}: slug {m.group(2)!r}, the dashboard's is {want_slug!r}")
        params = [k for k, _ in urllib.parse.parse_qsl(url.query)]
        if not params:
            found.append(f"{name}: dashboard {dash}: not filtered (no var-... parameter)")
        for k in params:
            if not k.startswith("var-") or k[4:] not in variables:
                found.append(f"{name}: dashboard {dash}: {k} is not a variable of the dashboard "
                             f"({', '.join(sorted(variables))})")
    return found, len(alerts)


def main(root):
    rule_files = sorted((root / "provisioning/prometheus/rules").glob("*.yml"))
    # Self-test: a link to a section that does not exist must be caught.
    bogus = "  - alert: Bogus\n    annotations:\n      runbook_url: \"provisioning/RUNBOOK.md#no-such-section\"\n" \
            "      dashboard: \"http://localhost:3000/d/statescope-breakers/circuit-breakers?var-nope=x\"\n"
    caught, _ = problems(bogus, root)
    if len(caught) != 2:
        print(f"alert links: internal: the check does not catch bad links: {caught}", file=sys.stderr)
        return 1
    total = 0
    bad = []
    for f in rule_files:
        found, n = problems(f.read_text(), root)
        total += n
        bad += [f"{f.name}: {p}" for p in found]
    for p in bad:
        print(f"alert links: {p}", file=sys.stderr)
    if bad:
        return 1
    print(f"alert links: {total} alert rules each link a runbook section and a filtered dashboard that exist")
    return 0


if __name__ == "__main__":
    sys.exit(main(pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else ".").resolve()))
