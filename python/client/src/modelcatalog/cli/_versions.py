"""The ``version`` commands: upload, download, list, show and delete model versions."""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import click

from . import _context as context
from . import _output as out
from ._confirm import confirm_deletion, yes_option
from ._errors import CliError, ExitCode
from ._root import (
    CONTEXT_SETTINGS,
    Group,
    connection_options,
    examples,
    id_argument,
    json_option,
    quiet_option,
)

if TYPE_CHECKING:
    from .. import AsyncClient, DownloadedFile, v1


@click.group(
    cls=Group,
    context_settings=CONTEXT_SETTINGS,
    epilog=examples("modelcatalog version list MODEL_ID"),
)
def version() -> None:
    """Upload, download, list, show and delete model versions."""


def _version_pairs(item: v1.ModelVersion) -> list[tuple[str, str]]:
    labels = ", ".join(f"{key}={value}" for key, value in sorted(item.labels.items()))
    return [
        ("model", item.model_id),
        ("version", str(item.version)),
        ("file name", item.file_name),
        ("content type", item.content_type),
        ("size", f"{out.human_size(item.size_bytes)} ({item.size_bytes} bytes)"),
        ("sha256", item.sha256),
        ("description", item.description),
        ("labels", labels),
        ("creator", item.creator_username),
        ("created", out.timestamp(item.create_time)),
    ]


def _parse_labels(
    ctx: click.Context, param: click.Parameter, values: Sequence[str]
) -> dict[str, str]:
    labels: dict[str, str] = {}
    for value in values:
        key, equals, text = value.partition("=")
        if not equals or not key:
            raise click.BadParameter(f"expected KEY=VALUE, got {value!r}", ctx, param)
        labels[key] = text
    return labels


def _show_progress(quiet: bool, as_json: bool) -> bool:
    return not quiet and not as_json and out.stdout_is_terminal()


@version.command(
    "upload",
    epilog=examples(
        "modelcatalog version upload MODEL_ID resnet50.onnx",
        "modelcatalog version upload MODEL_ID ckpt.tar.gz --label stage=dev --label arch=vit",
        'modelcatalog version upload MODEL_ID model.onnx --description "epoch 40" -q',
    ),
)
@id_argument("model_id")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--description", default="", help="Free text, at most 4096 characters.")
@click.option(
    "--label",
    "labels",
    multiple=True,
    metavar="KEY=VALUE",
    callback=_parse_labels,
    help="A label; repeat for several.",
)
@click.option(
    "--content-type", metavar="TYPE", help="Media type, e.g. application/onnx (default: the SDK's)."
)
@quiet_option
@connection_options
@json_option
@click.pass_context
def version_upload(
    ctx: click.Context,
    model_id: str,
    file: Path,
    description: str,
    labels: dict[str, str],
    content_type: str | None,
    quiet: bool,
    as_json: bool,
) -> None:
    """Upload FILE as the next version of a model; prints the version number and SHA-256."""
    settings = context.settings(ctx)
    total = file.stat().st_size

    async def upload(client: AsyncClient) -> v1.ModelVersion:
        enabled = _show_progress(quiet, as_json)
        with out.transfer_progress(f"upload {file.name}", enabled=enabled, total=total) as bar:
            return await client.upload(
                model_id,
                file,
                content_type=content_type,
                description=description,
                labels=labels,
                progress=bar,
            )

    try:
        uploaded = context.run(ctx, upload, settings=settings)
    except KeyboardInterrupt as interrupt:
        raise CliError(
            "interrupted; the upload stored nothing, run the same command again to upload the file",
            ExitCode.INTERRUPTED,
        ) from interrupt
    if as_json:
        out.print_json(uploaded)
        return
    out.echo(
        f"Uploaded {file.name} as version {uploaded.version} of model {uploaded.model_id}"
        f" ({out.human_size(uploaded.size_bytes)}), sha256 {uploaded.sha256}"
    )


@version.command(
    "download",
    epilog=examples(
        "modelcatalog version download MODEL_ID 3",
        "modelcatalog version download MODEL_ID 3 -o weights/resnet50.onnx",
        "modelcatalog version download MODEL_ID 3 --no-resume --quiet",
    ),
)
@id_argument("model_id")
@click.argument("number", metavar="VERSION", type=click.IntRange(min=1))
@click.option(
    "-o",
    "--output",
    "destination",
    type=click.Path(path_type=Path),
    help="File (replaced if it exists) or existing folder to write to (default: the uploaded"
    " file name, here).",
)
@click.option(
    "--resume/--no-resume",
    default=True,
    help="Continue a partial DEST.part from an earlier attempt (default) or start over.",
)
@click.option(
    "--force",
    is_flag=True,
    help="Replace an existing file that has the uploaded file name (without -o or with -o FOLDER).",
)
@quiet_option
@connection_options
@json_option
@click.pass_context
def version_download(
    ctx: click.Context,
    model_id: str,
    number: int,
    destination: Path | None,
    resume: bool,
    force: bool,
    quiet: bool,
    as_json: bool,
) -> None:
    """Download a version; resumes a partial download and verifies its SHA-256.

    The uploaded file name is used without its folders; one starting with "." is saved as
    MODEL_ID-vVERSION instead. A file of that name is not replaced without --force.
    """
    settings = context.settings(ctx)
    # The SDK decides the file: a folder (here, by default) gets the uploaded file name.
    where = Path(os.curdir) if destination is None else destination

    async def download(client: AsyncClient) -> DownloadedFile:
        label = f"download version {number}" if destination is None else f"download {where}"
        enabled = _show_progress(quiet, as_json)
        with out.transfer_progress(label, enabled=enabled, resumable=True) as bar:
            return await client.download(
                model_id, number, where, resume=resume, overwrite=force, progress=bar
            )

    try:
        saved = context.run(ctx, download, settings=settings)
    except KeyboardInterrupt as interrupt:
        again = "the same command" if resume else "the command without --no-resume"
        raise CliError(
            f"interrupted; the bytes received are kept, run {again} again to resume the download",
            ExitCode.INTERRUPTED,
        ) from interrupt
    except FileExistsError as error:
        raise CliError(
            f"{os.path.normpath(error.filename)} exists already; pass --force to replace it,"
            " or -o to save the download elsewhere",
            ExitCode.CONFLICT,
        ) from error
    downloaded = saved.version
    if as_json:
        out.print_json({"path": str(saved.path), "version": out.jsonable(downloaded)})
        return
    resumed = f", resumed from {out.human_size(saved.resumed_from)}" if saved.resumed_from else ""
    out.echo(
        f"Downloaded version {downloaded.version} of model {downloaded.model_id} to {saved.path}"
        f" ({out.human_size(downloaded.size_bytes)}{resumed}), sha256 {downloaded.sha256}"
        " verified"
    )


@version.command(
    "list",
    epilog=examples(
        "modelcatalog version list MODEL_ID", "modelcatalog version list MODEL_ID --json"
    ),
)
@id_argument("model_id")
@connection_options
@json_option
@click.pass_context
def version_list(ctx: click.Context, model_id: str, as_json: bool) -> None:
    """List the versions of a model, newest first."""
    versions = context.run(
        ctx,
        lambda client: context.collect(client.list_model_versions(model_id)),
    )
    out.listing(
        versions,
        as_json,
        ["VERSION", "FILE", "SIZE", "SHA256", "CREATOR", "CREATED"],
        lambda v: [
            str(v.version),
            v.file_name,
            out.human_size(v.size_bytes),
            v.sha256[:12],
            v.creator_username,
            out.timestamp(v.create_time),
        ],
        empty="no versions; upload one with `modelcatalog version upload MODEL_ID FILE`",
    )


@version.command("show", epilog=examples("modelcatalog version show MODEL_ID 3"))
@id_argument("model_id")
@click.argument("number", metavar="VERSION", type=click.IntRange(min=1))
@connection_options
@json_option
@click.pass_context
def version_show(ctx: click.Context, model_id: str, number: int, as_json: bool) -> None:
    """Show one version: file, size, SHA-256, labels."""
    found = context.run(ctx, lambda client: client.get_model_version(model_id, number))
    out.show(found, _version_pairs(found), as_json)


@version.command(
    "delete",
    epilog=examples(
        "modelcatalog version delete MODEL_ID 3",
        "modelcatalog version delete MODEL_ID 3 --force --yes",
    ),
)
@id_argument("model_id")
@click.argument("number", metavar="VERSION", type=click.IntRange(min=1))
@click.option("--force", is_flag=True, help="Also delete the aliases that point at the version.")
@yes_option
@connection_options
@json_option
@click.pass_context
def version_delete(
    ctx: click.Context, model_id: str, number: int, force: bool, yes: bool, as_json: bool
) -> None:
    """Delete one version; editors and owners. Its number is never given again.

    A version that aliases point at (production, ...) is refused unless --force, which
    deletes those aliases too. Its bytes are freed unless another version has the same file.
    Asks first unless --yes.
    """
    aliases = " and the aliases that point at it" if force else ""
    confirm_deletion(f"Delete version {number} of model {model_id}{aliases}?", yes=yes)
    deleted = context.run(
        ctx, lambda client: client.delete_model_version(model_id, number, force=force)
    )
    if as_json:
        out.print_json({"model_id": model_id, "version": number, **out.jsonable(deleted)})
        return
    names = ", ".join(deleted.deleted_aliases)
    with_aliases = f", and alias(es) {names} that pointed at it" if names else ""
    out.echo(f"Deleted version {number} of model {model_id}{with_aliases}.")
