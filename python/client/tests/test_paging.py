"""List methods follow next_page_token across pages and stop at the last one."""

from collections.abc import AsyncIterator, Sequence
from typing import TypeVar

import pytest
from grpclib.testing import ChannelFor

from modelcatalog import AsyncClient, v1

T = TypeVar("T")

FOLDERS = [v1.Folder(id=f"f{i}", name=f"folder {i}") for i in range(5)]
MEMBERS = [v1.FolderMember(username=f"user{i}") for i in range(3)]
MODELS = [v1.Model(id=f"m{i}", folder_id="f0") for i in range(4)]
VERSIONS = [v1.ModelVersion(model_id="m0", version=n) for n in (3, 2, 1)]


def page_of(items: Sequence[T], page_size: int, page_token: str) -> tuple[list[T], str]:
    """One page as the server cuts it: the token is the offset, empty after the last page."""
    start = int(page_token or 0)
    end = start + (page_size or 2)
    return list(items[start:end]), str(end) if end < len(items) else ""


class PagingFolders(v1.FolderServiceBase):
    """Serves FOLDERS and MEMBERS in pages and records every List request."""

    def __init__(self) -> None:
        self.requests: list[v1.ListFoldersRequest | v1.ListFolderAccessRequest] = []

    async def list_folders(
        self, list_folders_request: v1.ListFoldersRequest
    ) -> v1.ListFoldersResponse:
        self.requests.append(list_folders_request)
        folders, token = page_of(
            FOLDERS, list_folders_request.page_size, list_folders_request.page_token
        )
        return v1.ListFoldersResponse(folders=folders, next_page_token=token)

    async def list_folder_access(
        self, list_folder_access_request: v1.ListFolderAccessRequest
    ) -> v1.ListFolderAccessResponse:
        request = list_folder_access_request
        self.requests.append(request)
        members, token = page_of(MEMBERS, request.page_size, request.page_token)
        return v1.ListFolderAccessResponse(members=members, next_page_token=token)


class PagingModels(v1.ModelServiceBase):
    """Serves MODELS and VERSIONS in pages and records every List request."""

    def __init__(self) -> None:
        self.model_requests: list[v1.ListModelsRequest] = []
        self.version_requests: list[v1.ListModelVersionsRequest] = []

    async def list_models(self, list_models_request: v1.ListModelsRequest) -> v1.ListModelsResponse:
        request = list_models_request
        self.model_requests.append(request)
        models, token = page_of(MODELS, request.page_size, request.page_token)
        return v1.ListModelsResponse(models=models, next_page_token=token)

    async def list_model_versions(
        self, list_model_versions_request: v1.ListModelVersionsRequest
    ) -> v1.ListModelVersionsResponse:
        request = list_model_versions_request
        self.version_requests.append(request)
        versions, token = page_of(VERSIONS, request.page_size, request.page_token)
        return v1.ListModelVersionsResponse(versions=versions, next_page_token=token)


@pytest.fixture
def folders() -> PagingFolders:
    return PagingFolders()


@pytest.fixture
def models() -> PagingModels:
    return PagingModels()


@pytest.fixture
async def client(folders: PagingFolders, models: PagingModels) -> AsyncIterator[AsyncClient]:
    async with ChannelFor([folders, models]) as channel:
        yield AsyncClient.from_channel(channel, token="tok")


async def test_list_folders_iterates_every_page(
    client: AsyncClient, folders: PagingFolders
) -> None:
    """Five folders in pages of two take three requests, each sending the previous token."""
    listed = [folder async for folder in client.list_folders(page_size=2)]
    assert listed == FOLDERS
    assert [(r.page_size, r.page_token) for r in folders.requests] == [(2, ""), (2, "2"), (2, "4")]


async def test_single_page_takes_one_request(client: AsyncClient, folders: PagingFolders) -> None:
    """A first page with an empty next_page_token ends the iteration after one request."""
    listed = [member async for member in client.list_folder_access("f0", page_size=10)]
    assert listed == MEMBERS
    assert len(folders.requests) == 1


async def test_next_page_is_fetched_only_when_needed(
    client: AsyncClient, folders: PagingFolders
) -> None:
    """Stopping after the first item leaves the later pages unrequested."""
    async for folder in client.list_folders(page_size=2):
        assert folder == FOLDERS[0]
        break
    assert len(folders.requests) == 1


async def test_list_models_keeps_its_filter_on_every_page(
    client: AsyncClient, models: PagingModels
) -> None:
    """folder_id is sent with every page, since tokens are only valid with the same filter."""
    listed = [model async for model in client.list_models("f0")]
    assert listed == MODELS
    assert [(r.folder_id, r.page_token) for r in models.model_requests] == [("f0", ""), ("f0", "2")]


async def test_list_models_without_folder_lists_all(
    client: AsyncClient, models: PagingModels
) -> None:
    """Without folder_id the request leaves the filter empty, meaning every folder."""
    assert len([model async for model in client.list_models()]) == len(MODELS)
    assert {r.folder_id for r in models.model_requests} == {""}


async def test_list_model_versions_iterates_every_page(
    client: AsyncClient, models: PagingModels
) -> None:
    """The versions of a model come back in the server's order across pages."""
    listed = [version async for version in client.list_model_versions("m0")]
    assert [version.version for version in listed] == [3, 2, 1]
    assert len(models.version_requests) == 2
