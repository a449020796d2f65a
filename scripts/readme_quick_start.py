"""Runs the README quick start's curl lines, as written, against a server.

    python3 scripts/readme_quick_start.py http://127.0.0.1:PORT

Reads the first ```sh block after "A few requests" in README.md, joins its
continuation lines, points `localhost:8080` at the given server and runs each
line in order with bash in one empty folder (so the cookie jar the first line
writes is the one the later lines read). The only change to a line is that
curl also gets `--fail-with-body -sS` (any status >= 400 fails the line) and,
on the stream line (`-N`), `--max-time 3`: that line must then time out
having received the `caught_up` event. A server that answers the v1 lines
401 (no session) fails the check. README_FILE=path reads another copy.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

README = Path(os.environ.get("README_FILE", Path(__file__).resolve().parent.parent / "README.md"))
HOST = "localhost:8080"


def quick_start_lines(text: str) -> list[str]:
    start = text.index("A few requests")
    block = re.search(r"```sh\n(.*?)```", text[start:], re.S)
    if not block:
        raise SystemExit("README.md: no ```sh block after 'A few requests'")
    joined = re.sub(r"\\\n\s*", "", block.group(1))
    return [line.strip() for line in joined.splitlines() if line.strip() and not line.strip().startswith("#")]


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    target = re.sub(r"^https?://", "", argv[0]).rstrip("/")
    lines = quick_start_lines(README.read_text())
    v1 = [line for line in lines if "/api/v1/" in line]
    if len(lines) < 5 or not v1 or not any("auth/register" in line or "auth/login" in line for line in lines):
        print(f"README quick start: expected curl lines that sign in and use the v1 API, got {lines}", file=sys.stderr)
        return 1
    failed = 0
    with tempfile.TemporaryDirectory(prefix="palaver-readme-") as folder:
        for line in lines:
            if not line.startswith("curl ") or HOST not in line:
                print(f"not a curl line against {HOST}: {line}", file=sys.stderr)
                failed += 1
                continue
            stream = " -N " in f" {line} "
            flags = "--fail-with-body -sS" + (" --max-time 3" if stream else "")
            command = "curl " + flags + " " + line[len("curl "):].replace(HOST, target)
            run = subprocess.run(["bash", "-c", command], cwd=folder, capture_output=True, text=True, timeout=30)
            if stream:
                ok = run.returncode == 28 and "event: caught_up" in run.stdout
            else:
                ok = run.returncode == 0
            print(f"    {'ok ' if ok else 'FAIL'} {line}")
            if not ok:
                failed += 1
                print(f"      exit {run.returncode}\n      stdout: {run.stdout[-500:]}\n      stderr: {run.stderr[-500:]}",
                      file=sys.stderr)
    print(f"README quick start: {len(lines) - failed} of {len(lines)} lines work as written")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
