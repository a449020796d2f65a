"""Fails when a fuzzed operation never got a 2xx answer.

A run in which an operation answers only 4xx (a session that ended part-way,
an admin operation fuzzed as a member, a parameter pattern the server refuses)
passes every schemathesis check while testing nothing past validation. This
reads the server's own request counter (palaver_http_requests_total, labelled
by method, route pattern and status) before and after the run and requires,
for every operation of the OpenAPI document, more 2xx answers after than
before.

    python3 scripts/schemathesis_2xx.py snapshot BASE_URL > before.json
    python3 scripts/schemathesis_2xx.py check BASE_URL before.json [METHOD PATH]...

The METHOD PATH pairs after `check` are exempt (each one says why where it
is passed). Exit status 1 names every operation without a 2xx.
"""

from __future__ import annotations

import json
import re
import sys
import urllib.request

_SAMPLE = re.compile(r'^palaver_http_requests_total\{(?P<labels>.*)\}\s+(?P<value>\S+)$')
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')
METHODS = {"get", "put", "post", "delete", "patch", "head", "options"}


def fetch(url: str) -> bytes:
    with urllib.request.urlopen(url, timeout=10) as response:
        return response.read()


def successes(base: str) -> dict[str, float]:
    """"METHOD route" -> 2xx answers so far."""
    counts: dict[str, float] = {}
    for line in fetch(f"{base}/metrics").decode().splitlines():
        match = _SAMPLE.match(line)
        if not match:
            continue
        labels = dict(_LABEL.findall(match.group("labels")))
        if labels.get("status", "").startswith("2"):
            key = f'{labels.get("method")} {labels.get("route")}'
            counts[key] = counts.get(key, 0.0) + float(match.group("value"))
    return counts


def operations(base: str) -> list[str]:
    doc = json.loads(fetch(f"{base}/api/v1/openapi.json"))
    return sorted(f"{method.upper()} {path}" for path, item in doc["paths"].items()
                  for method in item if method in METHODS)


def main(argv: list[str]) -> int:
    if len(argv) >= 2 and argv[0] == "snapshot":
        json.dump(successes(argv[1]), sys.stdout)
        return 0
    if len(argv) >= 3 and argv[0] == "check" and len(argv[3:]) % 2 == 0:
        base, before = argv[1], json.load(open(argv[2]))
        exempt = {f"{m.upper()} {p}" for m, p in zip(argv[3::2], argv[4::2])}
        ops = operations(base)
        unknown = sorted(exempt - set(ops))
        if unknown:
            print(f"exempt operations not in the document: {unknown}", file=sys.stderr)
            return 1
        after = successes(base)
        missing = [op for op in ops if op not in exempt and after.get(op, 0.0) <= before.get(op, 0.0)]
        for op in missing:
            print(f"never answered 2xx during the run: {op}", file=sys.stderr)
        checked = len(ops) - len(exempt)
        print(f"    {checked - len(missing)} of {checked} operations answered 2xx ({len(exempt)} exempt)")
        return 1 if missing else 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
