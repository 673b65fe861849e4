"""Parse time of adversarial note bodies at growing sizes: linear parsing shows as time x10 per size x10.

    python benchmarks/adversarial.py [--sizes 10000 100000 1000000 8000000] [--limit 60]

Each case is parsed by notegraph's parser (front matter, markdown-it with our rules, links, text) in a
child process killed after --limit seconds, so one quadratic case cannot stall the run; it then reads
"over N s". Printed: seconds per case and size, and the ratio to the case's time at the previous size.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time

CASES = {
    "[[ without ]]": "[[",
    "[ without ]": "[",
    "![[ without ]]": "![[",
    "[[a word": "[[a ",
    "nested [ then ]": None,  # half openers, then half closers
    "[text]( unclosed": "[a](",
    "backticks": "` ",
    "dollars": "$a ",
    "%% and ``": "%% `` ",
    "> [!note] callouts": "> [!note] x\n",
    "==marks": "==a ",
}


def body(case: str, size: int) -> str:
    unit = CASES[case]
    if unit is None:
        return "[" * (size // 2) + "]" * (size // 2)
    return unit * max(1, size // len(unit))


def child(case: str, size: int) -> None:
    from notegraph.parse.note import parse_note

    data = body(case, size).encode()
    started = time.perf_counter()
    parse_note("adversarial.md", data)
    print(f"{time.perf_counter() - started:.3f}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10_000, 100_000, 1_000_000, 8_000_000])
    parser.add_argument("--limit", type=float, default=60.0, help="seconds a case may take before it is stopped")
    parser.add_argument("--child", nargs=2, metavar=("CASE", "SIZE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        child(args.child[0], int(args.child[1]))
        return 0
    print(f"{'case':22}" + "".join(f"{size:>16,}" for size in args.sizes))
    for case in CASES:
        row, previous = [], None
        for size in args.sizes:
            try:
                done = subprocess.run(
                    [sys.executable, __file__, "--child", case, str(size)], capture_output=True, text=True, timeout=args.limit, check=True
                )
                seconds = float(done.stdout.strip().splitlines()[-1])
                ratio = f" (x{seconds / previous:.0f})" if previous and previous > 0.001 else ""
                row.append(f"{seconds:.2f}s{ratio}")
                previous = seconds
            except subprocess.TimeoutExpired:
                row.append(f"over {args.limit:.0f}s")
                previous = None
        print(f"{case:22}" + "".join(f"{cell:>16}" for cell in row), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
