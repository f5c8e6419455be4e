#!/usr/bin/env python
"""Where the service's CPU goes: a summary of py-spy's collapsed stacks.

    .venv/bin/python scripts/bench/transfers.py --scenarios service/uniform --profile /tmp/prof
    .venv/bin/python scripts/bench/profile_summary.py /tmp/prof/service-uniform.txt [--ms-per-transfer 0.8]

Each sample is charged to the layer of the innermost frame that belongs to a known
layer (the HTTP server, Litestar, the app's middleware, authentication, the ledger,
JSON, the log's signatures, asyncpg, logging, the event loop), so the shares add up
to 100%. With ``--ms-per-transfer`` (the service CPU per transfer the same run
measured without the profiler) each share is also shown in ms per transfer. Idle
samples (a process waiting in epoll) are left out: py-spy records only busy threads
with ``--nonblocking`` unless ``--idle`` was given.
"""

from __future__ import annotations

import argparse
import re
from collections import Counter
from pathlib import Path

# (layer, pattern on "function (file:line)"), innermost match wins; first pattern that matches a frame.
LAYERS: list[tuple[str, re.Pattern[str]]] = [
    ("json (msgspec/json)", re.compile(r"msgspec|/json/|canonical\.py")),
    ("signing (SET, Ed25519)", re.compile(r"cryptography|nacl|/log/(timestamps|receipts|keys)\.py")),
    ("request log (structlog, logging)", re.compile(r"structlog|/logging/|timebank/logs\.py")),
    ("asyncpg", re.compile(r"asyncpg")),
    ("sqlalchemy", re.compile(r"sqlalchemy")),
    ("authentication", re.compile(r"timebank/security\.py")),
    ("idempotency", re.compile(r"timebank/ledger/idempotency\.py")),
    ("ledger service", re.compile(r"timebank/ledger/")),
    (
        "app middleware (edge, metrics, outage)",
        re.compile(r"timebank/(edge|metrics|outage|counters|app)\.py"),
    ),
    ("timebank other", re.compile(r"timebank/")),
    ("litestar", re.compile(r"litestar")),
    ("http server (uvicorn, httptools)", re.compile(r"uvicorn|httptools|h11")),
    ("event loop (asyncio, uvloop)", re.compile(r"asyncio|uvloop")),
]


def layer_of(stack: list[str]) -> str:
    for frame in reversed(stack):  # innermost first
        for name, pattern in LAYERS:
            if pattern.search(frame):
                return name
    return "other (interpreter, libraries)"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("files", nargs="+", type=Path, help="py-spy --format raw outputs")
    parser.add_argument(
        "--ms-per-transfer", type=float, help="service CPU per transfer measured without profiling"
    )
    parser.add_argument("--top", type=int, default=25, help="functions by own samples (default 25)")
    args = parser.parse_args()
    layers: Counter[str] = Counter()
    own: Counter[str] = Counter()
    total = 0
    for path in args.files:
        for line in path.read_text().splitlines():
            stack_text, _, count_text = line.rpartition(" ")
            if not stack_text:
                continue
            count = int(count_text)
            stack = stack_text.split(";")
            if stack and stack[0].startswith("process "):
                stack = stack[1:]
            if stack and stack[0].startswith("thread "):
                stack = stack[1:]
            total += count
            layers[layer_of(stack)] += count
            own[stack[-1] if stack else "?"] += count
    if not total:
        raise SystemExit("no samples")
    print(f"{total:,} samples")
    print(f"\n{'layer':42} {'share':>7}" + ("  ms/transfer" if args.ms_per_transfer else ""))
    for name, n in layers.most_common():
        share = n / total
        ms = f"  {share * args.ms_per_transfer:11.3f}" if args.ms_per_transfer else ""
        print(f"{name:42} {share:7.1%}{ms}")
    print(f"\nfunctions by own samples (top {args.top}):")
    for name, n in own.most_common(args.top):
        print(f"{n / total:6.1%}  {name[:150]}")


if __name__ == "__main__":
    main()
