"""FolderService: folders, who may use them, and their deletion."""

from __future__ import annotations

import betterproto

from modelcatalog import v1, wire

from ..auth.hook import current_principal
from ..domain.catalog import Catalog
from ..domain.deletion import Deletions
from ..domain.edits import Edits
from . import _convert


class FolderService(v1.FolderServiceBase):
    def __init__(self, catalog: Catalog, edits: Edits, deletions: Deletions) -> None:
        self._catalog = catalog
        self._edits = edits
        self._deletions = deletions

    async def create_folder(
        self, create_folder_request: v1.CreateFolderRequest
    ) -> v1.CreateFolderResponse:
        request = create_folder_request
        folder = await self._catalog.create_folder(
            current_principal().user_id, request.name, request.description, request.request_id
        )
        return v1.CreateFolderResponse(folder=_convert.folder(folder))

    async def get_folder(self, get_folder_request: v1.GetFolderRequest) -> v1.GetFolderResponse:
        folder = await self._catalog.get_folder(
            current_principal().user_id, get_folder_request.folder_id
        )
        return wire.new(v1.GetFolderResponse, folder=_convert.folder(folder))

    async def list_folders(
        self, list_folders_request: v1.ListFoldersRequest
    ) -> v1.ListFoldersResponse:
        request = list_folders_request
        page = await self._catalog.list_folders(
            current_principal().user_id, request.page_size, request.page_token
        )
        return wire.new(
            v1.ListFoldersResponse,
            folders=[_convert.folder(f) for f in page.items],
            next_page_token=page.next_page_token,
        )

    async def update_folder(
        self, update_folder_request: v1.UpdateFolderRequest
    ) -> v1.UpdateFolderResponse:
        request = update_folder_request
        folder = await self._edits.update_folder(
            current_principal().user_id,
            request.folder.id,
            request.update_mask.paths,
            name=request.folder.name,
            description=request.folder.description,
            etag=request.folder.etag,
        )
        return wire.new(v1.UpdateFolderResponse, folder=_convert.folder(folder))

    async def grant_folder_access(
        self, grant_folder_access_request: v1.GrantFolderAccessRequest
    ) -> v1.GrantFolderAccessResponse:
        request = grant_folder_access_request
        member = await self._catalog.grant(
            current_principal().user_id,
            request.folder_id,
            request.username,
            _convert.role_from_request(request.role),
        )
        return v1.GrantFolderAccessResponse(member=_convert.member(member))

    async def revoke_folder_access(
        self, revoke_folder_access_request: v1.RevokeFolderAccessRequest
    ) -> v1.RevokeFolderAccessResponse:
        request = revoke_folder_access_request
        await self._catalog.revoke(current_principal().user_id, request.folder_id, request.username)
        return v1.RevokeFolderAccessResponse()

    async def list_folder_access(
        self, list_folder_access_request: v1.ListFolderAccessRequest
    ) -> v1.ListFolderAccessResponse:
        request = list_folder_access_request
        page = await self._catalog.list_access(
            current_principal().user_id, request.folder_id, request.page_size, request.page_token
        )
        return wire.new(
            v1.ListFolderAccessResponse,
            members=[_convert.member(m) for m in page.items],
            next_page_token=page.next_page_token,
        )

    async def explain_access(
        self, explain_access_request: v1.ExplainAccessRequest
    ) -> v1.ExplainAccessResponse:
        request = explain_access_request
        resource, resource_id = betterproto.which_one_of(request, "resource")
        named = str(resource_id or "")
        caller = current_principal()
        explanation = await self._catalog.explain_access(
            caller.user_id,
            named if resource == "folder_id" else "",
            named if resource == "model_id" else "",
            request.username,
            access_token_id=request.access_token_id,
            calling_token_id=caller.token_id if caller.access_token_name is not None else None,
        )
        answer = wire.new(
            v1.ExplainAccessResponse,
            folder_id=explanation.folder.id,
            username=explanation.username,
            explanation=explanation.sentence(),
        )
        if explanation.grant is not None:
            answer.grant = _convert.member(explanation.grant)
        if explanation.role is not None:
            answer.role = v1.FolderRole(int(explanation.role))
        if explanation.token is not None:
            answer.access_token = _convert.access_token(explanation.token)
        return answer

    async def delete_folder(
        self, delete_folder_request: v1.DeleteFolderRequest
    ) -> v1.DeleteFolderResponse:
        request = delete_folder_request
        models, versions = await self._deletions.delete_folder(
            current_principal().user_id, request.folder_id, force=request.force
        )
        return v1.DeleteFolderResponse(deleted_models=models, deleted_versions=versions)
