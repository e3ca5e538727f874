"""Figure (3b): server peak RSS above idle while many uploads run at once.

``Sizes.concurrent_uploads`` SDK uploads of ``Sizes.concurrent_upload_mib`` MiB each (distinct
files, so each is a new blob) start together against one server, then against the other. The
RSS during single large transfers is measured by ``transfer``.
"""

from __future__ import annotations

import asyncio

from ._processes import RssSampler
from ._report import Comparison
from ._session import Session, random_file

COMPARISONS = [
    Comparison(
        "memory",
        "rss growth concurrent uploads ours",
        "rss growth concurrent uploads reference",
        "MiB",
        "lower",
        max_value=256,
    ),
]


async def run(bench: Session) -> None:
    count, size = bench.sizes.concurrent_uploads, bench.sizes.concurrent_upload_mib
    sources = [random_file(bench.work / f"small-{index}.bin", size) for index in range(count)]
    model_ids = {
        target.name: await bench.create_models(target, count, "concurrent")
        for target in bench.targets
    }
    try:
        for repetition in range(bench.sizes.repetitions):
            for target in bench.in_turn(repetition):
                sampler = RssSampler(target.server.process.pid)
                try:
                    idle = sampler.reset()
                    async with target.sdk(bench.token) as client:
                        await asyncio.gather(
                            *(
                                client.upload(model_id, source)
                                for model_id, source in zip(
                                    model_ids[target.name], sources, strict=True
                                )
                            )
                        )
                    bench.results.add(
                        f"rss growth concurrent uploads {target.name}", sampler.peak - idle
                    )
                finally:
                    sampler.close()
    finally:
        for source in sources:
            source.unlink()
