"""``python -m bench [--short] [--json FILE] [--only FIGURE ...]``: run the suite, print the table.

Figures run in order of importance (transfers, unary calls, one server process against two,
memory under concurrent uploads, health under sign-ins, CLI start-up, the message codec), so
an interrupted or partial run is still useful.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import sys
import tempfile
import time
import traceback
from dataclasses import asdict
from pathlib import Path

from tests.server_process import write_signing_key

from ._report import Results, evaluate, table
from ._session import FULL, SHORT, Sizes, session
from .figures import FIGURES


async def run_figures(work: Path, sizes: Sizes, names: list[str], results: Results) -> None:
    signing_key = write_signing_key(work / "jwt.pem")
    async with session(work, sizes, results, signing_key) as bench:
        for name in names:
            started = time.perf_counter()
            try:
                await FIGURES[name][0](bench)
            except Exception as error:  # a failed figure must not lose the others' results
                traceback.print_exc()
                results.facts.setdefault("failed_figures", {})[name] = repr(error)
            results.facts[f"{name}_seconds"] = round(time.perf_counter() - started, 1)
            print(f"{name}: done in {results.facts[f'{name}_seconds']} s", file=sys.stderr)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--short", action="store_true", help="small sizes, to check the suite")
    parser.add_argument("--json", type=Path, help="write the results to this file")
    parser.add_argument(
        "--only", nargs="+", choices=list(FIGURES), default=list(FIGURES), help="figures to run"
    )
    parser.add_argument("--repetitions", type=int, help="interleaved repetitions (at least 3)")
    args = parser.parse_args()
    sizes = SHORT if args.short else FULL
    if args.repetitions:
        sizes = Sizes(**{**asdict(sizes), "repetitions": max(3, args.repetitions)})
    results = Results()
    results.facts.update(
        {
            "mode": "short" if args.short else "full",
            "sizes": asdict(sizes),
            "python": platform.python_version(),
            "machine": platform.machine(),
            "cpus": os.cpu_count(),
            "load_average_at_start": os.getloadavg(),
        }
    )
    with tempfile.TemporaryDirectory(prefix="modelcatalog-bench-") as work:
        asyncio.run(run_figures(Path(work), sizes, args.only, results))
    comparisons = [row for name in args.only for row in FIGURES[name][1]]
    rows = evaluate(results, comparisons)
    document = {"facts": results.facts, "figures": rows}
    if args.json:
        args.json.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
    print(table(rows))
    if "failed_figures" in results.facts:
        sys.exit(f"figures that failed: {', '.join(results.facts['failed_figures'])}")


if __name__ == "__main__":
    main()
