"""What every figure needs: both servers, a signed-in user, clients for each, the run's size."""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import AsyncIterator, Awaitable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

import grpc

from modelcatalog import AsyncClient
from modelcatalog.v1 import (
    folder_service_pb2,
    folder_service_pb2_grpc,
    model_service_pb2,
    model_service_pb2_grpc,
)
from tests.server_process import RunningServer

from ._processes import start_ours, start_reference
from ._report import Results

MiB = 1 << 20
PASSWORD = "benchmark password"
USERNAME = "bench"
T = TypeVar("T")


@dataclass(frozen=True)
class Sizes:
    """How big a run is: the full figures of issue 10, or a quick run that checks the suite."""

    transfer_mib: int
    models: int
    unary_seconds: float
    concurrent_uploads: int
    concurrent_upload_mib: int
    sign_ins: int
    sign_in_bcrypt_cost: int
    repetitions: int
    workers_transfers: int
    workers_transfer_mib: int


#: Five repetitions in a full run: on the 2-core virtual machine the suite was built on, the
#: median ratio of three moved by up to 0.3 between two runs of the same code (one fast sample
#: of either side decided it).
FULL = Sizes(1024, 10_000, 3.0, 50, 20, 20, 12, 5, 8, 32)
SHORT = Sizes(32, 200, 0.2, 10, 4, 20, 8, 3, 4, 4)


@dataclass
class Target:
    """One server under test, as the benchmark user sees it."""

    name: str
    server: RunningServer
    folder_id: str = ""

    def sdk(self, token: str) -> AsyncClient:
        return AsyncClient(
            self.server.address, ca_cert=self.server.ca_cert, token=token, timeout=120
        )

    def grpcio_channel(self) -> grpc.aio.Channel:
        """A grpcio channel on a connection of its own: grpcio otherwise shares one connection
        among the channels of a process that have the same target and options."""
        credentials = grpc.ssl_channel_credentials(self.server.ca_cert.read_bytes())
        return grpc.aio.secure_channel(
            self.server.address, credentials, options=[("grpc.use_local_subchannel_pool", 1)]
        )


@dataclass
class Session:
    """Our server and the reference, the benchmark user's token, the work directory."""

    work: Path
    sizes: Sizes
    results: Results
    ours: Target
    reference: Target
    token: str
    signing_key: Path

    @property
    def targets(self) -> tuple[Target, Target]:
        return (self.ours, self.reference)

    def in_turn(self, repetition: int) -> tuple[Target, ...]:
        """Both targets in the order of ``repetition``: see ``alternated``."""
        return alternated(self.targets, repetition)

    @property
    def metadata(self) -> tuple[tuple[str, str], ...]:
        return (("authorization", f"Bearer {self.token}"),)

    async def create_folder(self, target: Target) -> None:
        """Creates the benchmark user's folder on the target, where its models go."""
        async with target.grpcio_channel() as channel:
            folders = folder_service_pb2_grpc.FolderServiceStub(channel)
            created = await folders.CreateFolder(
                folder_service_pb2.CreateFolderRequest(name="bench"), metadata=self.metadata
            )
            target.folder_id = created.folder.id

    async def create_models(self, target: Target, count: int, prefix: str) -> list[str]:
        """Creates ``count`` models in the target's folder through grpcio, 32 at a time."""
        async with target.grpcio_channel() as channel:
            stub = model_service_pb2_grpc.ModelServiceStub(channel)
            gate = asyncio.Semaphore(32)

            async def create(index: int) -> str:
                async with gate:
                    response = await stub.CreateModel(
                        model_service_pb2.CreateModelRequest(
                            folder_id=target.folder_id, name=f"{prefix}-{index:05d}"
                        ),
                        metadata=self.metadata,
                    )
                    return response.model.id

            return list(await asyncio.gather(*(create(index) for index in range(count))))


@asynccontextmanager
async def session(
    work: Path, sizes: Sizes, results: Results, signing_key: Path
) -> AsyncIterator[Session]:
    """Starts both servers, signs the benchmark user up and in, gives each a folder."""
    ours = start_ours(work / "ours", signing_key)
    try:
        reference = start_reference(work / "reference", ours, signing_key)
        try:
            bench = Session(
                work,
                sizes,
                results,
                Target("ours", ours),
                Target("reference", reference),
                await sign_up_and_in(ours),
                signing_key,
            )
            for target in bench.targets:
                await bench.create_folder(target)
            yield bench
        finally:
            reference.stop()
    finally:
        ours.stop()


async def sign_up_and_in(server: RunningServer) -> str:
    """Signs the benchmark user up and in on our server; its access token."""
    async with AsyncClient(server.address, ca_cert=server.ca_cert) as client:
        await client.sign_up(USERNAME, PASSWORD)
        return (await client.sign_in(USERNAME, PASSWORD)).access_token


def random_file(path: Path, size_mib: int) -> Path:
    """A file of ``size_mib`` MiB of random bytes (incompressible, like model weights)."""
    with path.open("wb") as file:
        for _ in range(size_mib):
            file.write(os.urandom(MiB))
    return path


def alternated(subjects: Sequence[T], repetition: int) -> tuple[T, ...]:
    """``subjects`` in their order on even repetitions, reversed on odd ones.

    The machine's speed drifts within a run (on this 2-core virtual machine, by up to 1.7x
    over tens of seconds), so whichever subject always went first would always meet the
    same phase of a drift; alternating the order spreads it over both.
    """
    return tuple(subjects) if repetition % 2 == 0 else tuple(reversed(subjects))


async def seconds(step: Awaitable[T]) -> tuple[float, T]:
    """How long awaiting ``step`` took, and what it returned."""
    started = time.perf_counter()
    value = await step
    return time.perf_counter() - started, value
