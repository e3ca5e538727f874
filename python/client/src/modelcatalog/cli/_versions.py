"""The ``version`` commands: upload, download, list, show, edit and delete model versions."""

from __future__ import annotations

import json
import os
import uuid
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

import click

from . import _context as context
from . import _output as out
from ._config import config_dir
from ._confirm import confirm_deletion, yes_option
from ._errors import CliError, ExitCode
from ._root import (
    CONTEXT_SETTINGS,
    Group,
    connection_options,
    examples,
    if_match_option,
    json_option,
    model_argument,
    quiet_option,
)

if TYPE_CHECKING:
    from .. import AsyncClient, DownloadedFile, v1


@click.group(
    cls=Group,
    context_settings=CONTEXT_SETTINGS,
    epilog=examples("modelcatalog version list resnet50"),
)
def version() -> None:
    """Upload, download, list, show, edit and delete model versions.

    MODEL is a model's id, or its name when only one model you can see has it (anything
    written like an id is read as one). VERSION is a version's number or the name of an alias
    pointing at it; MODEL@ALIAS says both at once (split at the last "@": for a model whose
    name holds "@", give MODEL VERSION).
    """


_F = TypeVar("_F", bound=Callable[..., Any])


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
        ("updated", out.timestamp(item.update_time)),
        ("etag", item.etag),
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


def _version_reference(model: str, version: str | None) -> tuple[str, int | str]:
    """MODEL and the version it names: VERSION as a number (digits) or an alias name, or,
    without VERSION, the alias after the last "@" of MODEL@ALIAS (alias names never
    contain "@" and are never digits only, so neither reading is ambiguous)."""
    if version is None:
        name, at, alias = model.rpartition("@")
        if not at or not name or not alias:
            raise click.UsageError("missing VERSION: give MODEL VERSION or MODEL@ALIAS")
        return name, alias
    if not version.isdigit():
        return model, version
    if int(version) < 1:
        raise click.BadParameter("a version number is 1 or more", param_hint="'VERSION'")
    return model, int(version)


def _version_argument(function: _F) -> _F:
    """The optional VERSION argument of ``download`` and ``show``: a number or an alias."""
    return click.argument("version", metavar="[VERSION]", required=False)(function)


def _show_progress(quiet: bool, as_json: bool) -> bool:
    return not quiet and not as_json and out.stdout_is_terminal()


class UploadState:
    """The request id of an upload of FILE that has not finished yet, kept in a small file
    (``$XDG_CONFIG_HOME/modelcatalog/uploads/``) named by a digest of the server, model, file
    (absolute path, size, modification time) and header fields: running an interrupted
    command again reuses the id, so the server resumes that upload; an upload that finished or
    was refused removes the file, so the next run of the command is a new upload."""

    def __init__(
        self, server: str, model_id: str, file: Path, fields: Mapping[str, object]
    ) -> None:
        import hashlib  # here: OpenSSL's bindings would add 5 ms to every command's start

        status = file.stat()
        what = [server, model_id, str(file.resolve()), status.st_size, status.st_mtime_ns, fields]
        name = hashlib.sha256(json.dumps(what, sort_keys=True).encode()).hexdigest()
        self.path = config_dir() / "uploads" / name

    def request_id(self) -> str:
        """The id of the unfinished upload, or a new one, kept until ``finished``."""
        try:
            kept = self.path.read_text().strip()
            return str(uuid.UUID(kept))
        except (OSError, ValueError):
            pass
        request_id = str(uuid.uuid4())
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(request_id + "\n")
        os.replace(temporary, self.path)
        return request_id

    def finished(self) -> None:
        self.path.unlink(missing_ok=True)


@version.command(
    "upload",
    epilog=examples(
        "modelcatalog version upload resnet50 resnet50.onnx",
        "modelcatalog version upload MODEL_ID ckpt.tar.gz --label stage=dev --label arch=vit",
        'modelcatalog version upload MODEL_ID model.onnx --description "epoch 40" -q',
    ),
)
@model_argument
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
    model: str,
    file: Path,
    description: str,
    labels: dict[str, str],
    content_type: str | None,
    quiet: bool,
    as_json: bool,
) -> None:
    """Upload FILE as the next version of a model; prints the version number and SHA-256.

    An upload whose connection breaks resumes where the server's bytes end. An interrupted
    upload (Ctrl-C, a lost connection) resumes when the same command runs again within the
    server's resume period (24 h by default), as long as FILE is unchanged: its request id is
    kept under $XDG_CONFIG_HOME/modelcatalog/uploads/ until the upload finishes or the
    server refuses it.
    """
    settings = context.settings(ctx)
    total = file.stat().st_size

    async def upload(client: AsyncClient) -> v1.ModelVersion:
        from .. import DeadlineExceeded, ModelCatalogError, Unavailable

        enabled = _show_progress(quiet, as_json)
        model_id = await context.model_id(client, model)
        fields = {"content_type": content_type, "description": description, "labels": labels}
        state = UploadState(settings.server, model_id, file, fields)
        with out.transfer_progress(
            f"upload {file.name}", enabled=enabled, total=total, resumable=True
        ) as bar:
            try:
                stored = await client.upload(
                    model_id,
                    file,
                    content_type=content_type,
                    description=description,
                    labels=labels,
                    progress=bar,
                    request_id=state.request_id(),
                )
            except (Unavailable, DeadlineExceeded):
                raise  # the id is kept: running the command again resumes the upload
            except ModelCatalogError:
                state.finished()  # refused: there is nothing to resume
                raise
        state.finished()
        return stored

    try:
        uploaded = context.run(ctx, upload, settings=settings)
    except KeyboardInterrupt as interrupt:
        raise CliError(
            "interrupted; the server keeps the bytes it received for a while: run the same "
            "command again to resume the upload",
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
        "modelcatalog version download resnet50 3",
        "modelcatalog version download resnet50@production -o weights/resnet50.onnx",
        "modelcatalog version download MODEL_ID staging --no-resume --quiet",
    ),
)
@model_argument
@_version_argument
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
    model: str,
    version: str | None,
    destination: Path | None,
    resume: bool,
    force: bool,
    quiet: bool,
    as_json: bool,
) -> None:
    """Download a version (MODEL VERSION, or MODEL@ALIAS); resumes a partial download and
    verifies its SHA-256.

    The uploaded file name is used without its folders; one starting with "." is saved as
    MODEL_ID-vVERSION instead. A file of that name is not replaced without --force. An
    alias is read once, as the download starts: resuming after it moved still gets the
    version the download started with.
    """
    model, wanted = _version_reference(model, version)
    settings = context.settings(ctx)
    # The SDK decides the file: a folder (here, by default) gets the uploaded file name.
    where = Path(os.curdir) if destination is None else destination

    async def download(client: AsyncClient) -> DownloadedFile:
        model_id = await context.model_id(client, model)
        label = f"download version {wanted}" if destination is None else f"download {where}"
        enabled = _show_progress(quiet, as_json)
        with out.transfer_progress(label, enabled=enabled, resumable=True) as bar:
            return await client.download(
                model_id, wanted, where, resume=resume, overwrite=force, progress=bar
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
        "modelcatalog version list resnet50",
        "modelcatalog version list MODEL_ID --json",
        """modelcatalog version list resnet50 --filter 'labels.stage = "prod"'""",
        "modelcatalog version list resnet50 --order-by version",
    ),
)
@model_argument
@click.option(
    "--filter",
    "filter_text",
    default="",
    metavar="FILTER",
    help="Only the versions that match, e.g. 'labels.stage = \"prod\"', 'labels.stage : *'"
    " (has the label), 'create_time >= \"2026-11-01T00:00:00Z\"'; join conditions with AND.",
)
@click.option(
    "--order-by",
    default="",
    metavar="ORDER",
    help='"version desc" (newest first, the default) or "version" (oldest first).',
)
@connection_options
@json_option
@click.pass_context
def version_list(
    ctx: click.Context, model: str, filter_text: str, order_by: str, as_json: bool
) -> None:
    """List the versions of a model, newest first unless --order-by says otherwise."""

    async def versions_of(client: AsyncClient) -> list[v1.ModelVersion]:
        model_id = await context.model_id(client, model)
        listed = client.list_model_versions(model_id, filter=filter_text, order_by=order_by)
        return await context.collect(listed)

    versions = context.run(ctx, versions_of)
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
        empty="no versions; upload one with `modelcatalog version upload MODEL FILE`",
    )


@version.command(
    "show",
    epilog=examples(
        "modelcatalog version show resnet50 3", "modelcatalog version show resnet50@production"
    ),
)
@model_argument
@_version_argument
@connection_options
@json_option
@click.pass_context
def version_show(ctx: click.Context, model: str, version: str | None, as_json: bool) -> None:
    """Show one version (MODEL VERSION, or MODEL@ALIAS): file, size, SHA-256, labels."""
    model, wanted = _version_reference(model, version)

    async def show(client: AsyncClient) -> v1.ModelVersion:
        return await client.get_model_version(await context.model_id(client, model), wanted)

    found = context.run(ctx, show)
    out.show(found, _version_pairs(found), as_json)


@version.command(
    "update",
    epilog=examples(
        'modelcatalog version update resnet 3 --description "epoch 40, best val loss"',
        "modelcatalog version update resnet@production --label stage=prod --remove-label rc",
        "modelcatalog version update MODEL_ID 3 --clear-labels --label stage=archived --json",
    ),
)
@model_argument
@_version_argument
@click.option("--description", help='The new description, at most 4096 characters ("" clears).')
@click.option(
    "--label",
    "labels",
    multiple=True,
    metavar="KEY=VALUE",
    callback=_parse_labels,
    help="Add a label or change its value; repeat for several.",
)
@click.option(
    "--remove-label", "removed", multiple=True, metavar="KEY", help="Remove a label; repeatable."
)
@click.option(
    "--clear-labels", is_flag=True, help="Remove every label first (then add the --label ones)."
)
@if_match_option("version")
@connection_options
@json_option
@click.pass_context
def version_update(
    ctx: click.Context,
    model: str,
    version: str | None,
    description: str | None,
    labels: dict[str, str],
    removed: tuple[str, ...],
    clear_labels: bool,
    if_match: str | None,
    as_json: bool,
) -> None:
    """Change a version's description or labels (MODEL VERSION, or MODEL@ALIAS); editor or
    owner of the model's folder.

    Its file and SHA-256 never change. Label changes apply to the labels the version has
    when the command reads them: if someone changes the version before this command writes,
    nothing is changed and the command fails (exit code 6); run it again.
    """
    model, wanted = _version_reference(model, version)
    relabel = bool(labels or removed or clear_labels)
    if description is None and not relabel:
        raise click.UsageError("give --description, --label, --remove-label or --clear-labels")

    async def update(client: AsyncClient) -> v1.ModelVersion:
        model_id = await context.model_id(client, model)
        number = wanted
        if isinstance(number, str):  # an alias: the version it points at now
            number = (await client.get_model_version(model_id, number)).version
        new_labels: dict[str, str] | None = None
        etag = if_match
        if relabel:
            new_labels = {}
            if not clear_labels:
                current = await client.get_model_version(model_id, number)
                new_labels = {k: v for k, v in current.labels.items() if k not in removed}
                etag = if_match or current.etag
            new_labels.update(labels)
        return await client.update_model_version(
            model_id, number, description=description, labels=new_labels, etag=etag
        )

    changed = context.run(ctx, update)
    if as_json:
        out.print_json(changed)
        return
    out.echo(f"Updated version {changed.version} of model {changed.model_id} (etag {changed.etag})")


@version.command(
    "delete",
    epilog=examples(
        "modelcatalog version delete resnet 3",
        "modelcatalog version delete MODEL_ID 3 --force --yes",
    ),
)
@model_argument
@click.argument("number", metavar="VERSION", type=click.IntRange(min=1))
@click.option("--force", is_flag=True, help="Also delete the aliases that point at the version.")
@yes_option
@connection_options
@json_option
@click.pass_context
def version_delete(
    ctx: click.Context, model: str, number: int, force: bool, yes: bool, as_json: bool
) -> None:
    """Delete one version, named by its number; editors and owners. Its number is never
    given again.

    A version that aliases point at (production, ...) is refused unless --force, which
    deletes those aliases too. Its bytes are freed unless another version has the same file.
    Asks first unless --yes.
    """
    aliases = " and the aliases that point at it" if force else ""
    confirm_deletion(f"Delete version {number} of model {model}{aliases}?", yes=yes)

    async def delete(client: AsyncClient) -> tuple[str, v1.DeleteModelVersionResponse]:
        model_id = await context.model_id(client, model)
        return model_id, await client.delete_model_version(model_id, number, force=force)

    model_id, deleted = context.run(ctx, delete)
    if as_json:
        out.print_json({"model_id": model_id, "version": number, **out.jsonable(deleted)})
        return
    names = ", ".join(deleted.deleted_aliases)
    with_aliases = f", and alias(es) {names} that pointed at it" if names else ""
    out.echo(f"Deleted version {number} of model {model}{with_aliases}.")
