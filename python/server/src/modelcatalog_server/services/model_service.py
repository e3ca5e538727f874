"""ModelService: models in folders, their versions and their aliases."""

from __future__ import annotations

from collections.abc import AsyncIterator

import betterproto
from grpclib.const import Handler
from grpclib.server import Stream

from modelcatalog import v1, wire

from ..auth.hook import current_peer, current_principal
from ..domain.aliases import Aliases
from ..domain.catalog import Catalog
from ..domain.deletion import Deletions
from ..domain.edits import Edits
from ..domain.errors import InvalidArgument
from ..domain.versions import UploadTrailer, Versions
from . import _convert

_DOWNLOAD = "/modelcatalog.v1.ModelService/DownloadModelVersion"
_LIST_MODELS = "/modelcatalog.v1.ModelService/ListModels"


class ModelService(v1.ModelServiceBase):
    def __init__(
        self,
        catalog: Catalog,
        versions: Versions,
        aliases: Aliases,
        edits: Edits,
        deletions: Deletions,
    ) -> None:
        self._catalog = catalog
        self._versions = versions
        self._aliases = aliases
        self._edits = edits
        self._deletions = deletions

    async def create_model(
        self, create_model_request: v1.CreateModelRequest
    ) -> v1.CreateModelResponse:
        request = create_model_request
        model = await self._catalog.create_model(
            current_principal().user_id,
            request.folder_id,
            request.name,
            request.description,
            request.request_id,
        )
        return v1.CreateModelResponse(model=_convert.model(model))

    async def get_model(self, get_model_request: v1.GetModelRequest) -> v1.GetModelResponse:
        model = await self._catalog.get_model(
            current_principal().user_id, get_model_request.model_id
        )
        return wire.new(v1.GetModelResponse, model=_convert.model(model))

    async def update_model(
        self, update_model_request: v1.UpdateModelRequest
    ) -> v1.UpdateModelResponse:
        request = update_model_request
        model = await self._edits.update_model(
            current_principal().user_id,
            request.model.id,
            request.update_mask.paths,
            name=request.model.name,
            description=request.model.description,
            etag=request.model.etag,
        )
        return wire.new(v1.UpdateModelResponse, model=_convert.model(model))

    async def get_model_version(
        self, get_model_version_request: v1.GetModelVersionRequest
    ) -> v1.GetModelVersionResponse:
        request = get_model_version_request
        version = await self._versions.get(
            current_principal().user_id, request.model_id, request.version, request.alias
        )
        return wire.new(v1.GetModelVersionResponse, version=_convert.version(version))

    async def list_model_versions(
        self, list_model_versions_request: v1.ListModelVersionsRequest
    ) -> v1.ListModelVersionsResponse:
        request = list_model_versions_request
        page = await self._versions.list(
            current_principal().user_id,
            request.model_id,
            request.page_size,
            request.page_token,
            request.filter,
            request.order_by,
        )
        return wire.new(
            v1.ListModelVersionsResponse,
            versions=[_convert.version(v) for v in page.items],
            next_page_token=page.next_page_token,
        )

    async def update_model_version(
        self, update_model_version_request: v1.UpdateModelVersionRequest
    ) -> v1.UpdateModelVersionResponse:
        request = update_model_version_request
        version = await self._edits.update_version(
            current_principal().user_id,
            request.version.model_id,
            request.version.version,
            request.update_mask.paths,
            description=request.version.description,
            labels=dict(request.version.labels),
            etag=request.version.etag,
        )
        return wire.new(v1.UpdateModelVersionResponse, version=_convert.version(version))

    async def upload_model_version(
        self, upload_model_version_request_iterator: AsyncIterator[v1.UploadModelVersionRequest]
    ) -> v1.UploadModelVersionResponse:
        messages = upload_model_version_request_iterator
        first = await anext(messages, None)
        header = first.header if first and _content(first) == "header" else None
        if header is None:
            raise _out_of_order("header", "the first message of an upload must be the header")
        version = await self._versions.upload(
            current_principal().user_id,
            _convert.upload_header(header),
            _chunks(messages),
            peer=current_peer() or "-",
        )
        return v1.UploadModelVersionResponse(version=_convert.version(version))

    async def set_model_alias(
        self, set_model_alias_request: v1.SetModelAliasRequest
    ) -> v1.SetModelAliasResponse:
        request = set_model_alias_request
        alias = await self._aliases.set(
            current_principal().user_id,
            request.model_id,
            request.name,
            request.version,
            request.expected_version,
            request.request_id,
        )
        return wire.new(v1.SetModelAliasResponse, alias=_convert.alias(alias))

    async def delete_model_alias(
        self, delete_model_alias_request: v1.DeleteModelAliasRequest
    ) -> v1.DeleteModelAliasResponse:
        request = delete_model_alias_request
        await self._aliases.delete(
            current_principal().user_id, request.model_id, request.name, request.expected_version
        )
        return v1.DeleteModelAliasResponse()

    async def list_model_aliases(
        self, list_model_aliases_request: v1.ListModelAliasesRequest
    ) -> v1.ListModelAliasesResponse:
        request = list_model_aliases_request
        page = await self._aliases.list(
            current_principal().user_id, request.model_id, request.page_size, request.page_token
        )
        return wire.new(
            v1.ListModelAliasesResponse,
            aliases=[_convert.alias(a) for a in page.items],
            next_page_token=page.next_page_token,
        )

    async def delete_model_version(
        self, delete_model_version_request: v1.DeleteModelVersionRequest
    ) -> v1.DeleteModelVersionResponse:
        request = delete_model_version_request
        aliases = await self._deletions.delete_version(
            current_principal().user_id, request.model_id, request.version, force=request.force
        )
        return v1.DeleteModelVersionResponse(deleted_aliases=aliases)

    async def delete_model(
        self, delete_model_request: v1.DeleteModelRequest
    ) -> v1.DeleteModelResponse:
        versions = await self._deletions.delete_model(
            current_principal().user_id, delete_model_request.model_id
        )
        return v1.DeleteModelResponse(deleted_versions=versions)

    async def get_upload_status(
        self, get_upload_status_request: v1.GetUploadStatusRequest
    ) -> v1.GetUploadStatusResponse:
        status = await self._versions.upload_status(
            current_principal().user_id,
            _convert.upload_header(get_upload_status_request.header),
        )
        return _convert.upload_status(status)

    def __mapping__(self) -> dict[str, Handler]:
        mapping = super().__mapping__()
        mapping[_DOWNLOAD] = mapping[_DOWNLOAD]._replace(func=self._download)
        mapping[_LIST_MODELS] = mapping[_LIST_MODELS]._replace(func=self._list_models)
        return mapping

    async def _list_models(
        self,
        stream: Stream[
            v1.ListModelsRequest, v1.ListModelsResponse | wire.Encoded[v1.ListModelsResponse]
        ],
    ) -> None:
        """Answers with the page's models encoded once and remembered (``encoded_model``)."""
        request = await stream.recv_message()
        assert request is not None  # the transport's guard answers a call without a message
        page = await self._catalog.list_models(
            current_principal().user_id,
            request.folder_id,
            request.page_size,
            request.page_token,
            request.filter,
            request.order_by,
        )
        await stream.send_message(
            wire.encode_with_items(
                v1.ListModelsResponse(next_page_token=page.next_page_token),
                "models",
                map(_convert.encoded_model, page.items),
            )
        )

    async def _download(
        self,
        stream: Stream[v1.DownloadModelVersionRequest, v1.DownloadModelVersionResponse],
    ) -> None:
        """Sends a version's metadata, then its bytes, on the stream itself: when the call ends
        early (the client left, a deadline, a stall) the stored file is closed at once, not
        whenever the garbage collector reaches a suspended generator."""
        request = await stream.recv_message()
        assert request is not None  # the transport's guard answers a call without a message
        async with self._versions.download(
            current_principal().user_id,
            request.model_id,
            request.version,
            request.offset,
            alias=request.alias,
            peer=current_peer() or "-",
        ) as (version, chunks):
            await stream.send_message(
                v1.DownloadModelVersionResponse(version=_convert.version(version))
            )
            async for chunk in chunks:
                await stream.send_message(v1.DownloadModelVersionResponse(chunk=chunk))


def _content(message: v1.UploadModelVersionRequest) -> str:
    return betterproto.which_one_of(message, "content")[0]


async def _chunks(
    messages: AsyncIterator[v1.UploadModelVersionRequest],
) -> AsyncIterator[bytes | UploadTrailer]:
    """The chunks after the header, then the trailer if one came: held back until the stream
    has ended, so that a trailer always reaches the domain as the last item."""
    trailer: UploadTrailer | None = None
    async for message in messages:
        content = _content(message)
        if trailer is not None:
            raise _out_of_order("trailer", "the trailer must be the last message of an upload")
        if content == "header":
            raise _out_of_order("header", "an upload has exactly one header, in its first message")
        if content == "trailer":
            trailer = UploadTrailer(sha256=message.trailer.sha256)
            continue
        if content != "chunk":
            raise _out_of_order(
                "chunk", "every message after an upload's header carries a chunk or the trailer"
            )
        if not message.chunk:
            raise InvalidArgument("chunk", "a chunk must carry at least one byte")
        yield message.chunk
    if trailer is not None:
        yield trailer


def _out_of_order(field: str, message: str) -> InvalidArgument:
    """An upload message in the wrong place; ``field`` names the kind of message at fault."""
    return InvalidArgument(field, message, reason="UPLOAD_OUT_OF_ORDER")
