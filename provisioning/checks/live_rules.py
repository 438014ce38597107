#!/usr/bin/env python3
"""Checks the alert rules as a real Prometheus evaluates them on live data.

Usage: live_rules.py PROMETHEUS_URL ALERTNAME LABEL=VALUE TIMEOUT_SECONDS
Within TIMEOUT: every rule group has been evaluated, every rule's health is
"ok" (no evaluation error such as many-to-many matching on real series), and
ALERTNAME is pending or firing with LABEL=VALUE (the test provoked it).
Python standard library only.
"""

import json
import sys
import time
import urllib.request


def get(base, path):
    with urllib.request.urlopen(base + path, timeout=10) as r:
        body = json.load(r)
    if body.get("status") != "success":
        raise RuntimeError(body)
    return body["data"]


def main(base, alertname, matcher, timeout):
    label, _, value = matcher.partition("=")
    deadline = time.monotonic() + timeout
    while True:
        groups = get(base, "/api/v1/rules")["groups"]
        rules = [r for g in groups for r in g["rules"] if r["type"] == "alerting"]
        bad = [f"{r['name']}: {r.get('health')} {r.get('lastError', '')}" for r in rules if r.get("health") != "ok"]
        alerts = get(base, "/api/v1/alerts")["alerts"]
        seen = [a for a in alerts if a["labels"].get("alertname") == alertname and a["labels"].get(label) == value]
        if rules and not bad and seen:
            break
        if time.monotonic() > deadline:
            why = bad or ([] if rules else ["no alerting rules loaded"]) or [f"{alertname}{{{matcher}}} not active"]
            for w in why:
                print(f"live rules: {w}", file=sys.stderr)
            return 1
        time.sleep(1)
    print(f"live rules: {len(rules)} alert rules evaluate without error on live data; "
          f"{alertname}{{{matcher}}} is {seen[0]['state']}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1].rstrip("/"), sys.argv[2], sys.argv[3], float(sys.argv[4])))
