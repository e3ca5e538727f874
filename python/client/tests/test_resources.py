"""Folder and model methods send the right request and return the resource inside the reply."""

from collections.abc import AsyncIterator
from typing import Any

import pytest
from grpclib.testing import ChannelFor

from modelcatalog import AsyncClient, v1


class EchoFolders(v1.FolderServiceBase):
    """Builds each reply from its request and records the requests."""

    def __init__(self) -> None:
        self.requests: list[object] = []

    async def create_folder(
        self, create_folder_request: v1.CreateFolderRequest
    ) -> v1.CreateFolderResponse:
        request = create_folder_request
        folder = v1.Folder(id="f1", name=request.name, description=request.description)
        return v1.CreateFolderResponse(folder=folder)

    async def get_folder(self, get_folder_request: v1.GetFolderRequest) -> v1.GetFolderResponse:
        return v1.GetFolderResponse(folder=v1.Folder(id=get_folder_request.folder_id))

    async def update_folder(
        self, update_folder_request: v1.UpdateFolderRequest
    ) -> v1.UpdateFolderResponse:
        self.requests.append(update_folder_request)
        return v1.UpdateFolderResponse(folder=update_folder_request.folder)

    async def grant_folder_access(
        self, grant_folder_access_request: v1.GrantFolderAccessRequest
    ) -> v1.GrantFolderAccessResponse:
        request = grant_folder_access_request
        self.requests.append(request)
        member = v1.FolderMember(username=request.username, role=request.role)
        return v1.GrantFolderAccessResponse(member=member)

    async def revoke_folder_access(
        self, revoke_folder_access_request: v1.RevokeFolderAccessRequest
    ) -> v1.RevokeFolderAccessResponse:
        self.requests.append(revoke_folder_access_request)
        return v1.RevokeFolderAccessResponse()

    async def delete_folder(
        self, delete_folder_request: v1.DeleteFolderRequest
    ) -> v1.DeleteFolderResponse:
        self.requests.append(delete_folder_request)
        return v1.DeleteFolderResponse(deleted_models=2, deleted_versions=5)


class EchoModels(v1.ModelServiceBase):
    """Builds each reply from its request (a version named by alias is number 7) and records
    the version and alias requests."""

    def __init__(self) -> None:
        self.requests: list[object] = []

    async def create_model(
        self, create_model_request: v1.CreateModelRequest
    ) -> v1.CreateModelResponse:
        request = create_model_request
        model = v1.Model(id="m1", folder_id=request.folder_id, name=request.name)
        return v1.CreateModelResponse(model=model)

    async def get_model(self, get_model_request: v1.GetModelRequest) -> v1.GetModelResponse:
        return v1.GetModelResponse(model=v1.Model(id=get_model_request.model_id))

    async def update_model(
        self, update_model_request: v1.UpdateModelRequest
    ) -> v1.UpdateModelResponse:
        self.requests.append(update_model_request)
        return v1.UpdateModelResponse(model=update_model_request.model)

    async def update_model_version(
        self, update_model_version_request: v1.UpdateModelVersionRequest
    ) -> v1.UpdateModelVersionResponse:
        self.requests.append(update_model_version_request)
        return v1.UpdateModelVersionResponse(version=update_model_version_request.version)

    async def get_model_version(
        self, get_model_version_request: v1.GetModelVersionRequest
    ) -> v1.GetModelVersionResponse:
        request = get_model_version_request
        version = v1.ModelVersion(model_id=request.model_id, version=request.version or 7)
        self.requests.append(request)
        return v1.GetModelVersionResponse(version=version)

    async def set_model_alias(
        self, set_model_alias_request: v1.SetModelAliasRequest
    ) -> v1.SetModelAliasResponse:
        request = set_model_alias_request
        self.requests.append(request)
        alias = v1.ModelAlias(model_id=request.model_id, name=request.name, version=request.version)
        return v1.SetModelAliasResponse(alias=alias)

    async def delete_model_alias(
        self, delete_model_alias_request: v1.DeleteModelAliasRequest
    ) -> v1.DeleteModelAliasResponse:
        self.requests.append(delete_model_alias_request)
        return v1.DeleteModelAliasResponse()

    async def delete_model_version(
        self, delete_model_version_request: v1.DeleteModelVersionRequest
    ) -> v1.DeleteModelVersionResponse:
        request = delete_model_version_request
        self.requests.append(request)
        return v1.DeleteModelVersionResponse(
            deleted_aliases=["production"] if request.force else []
        )

    async def delete_model(
        self, delete_model_request: v1.DeleteModelRequest
    ) -> v1.DeleteModelResponse:
        self.requests.append(delete_model_request)
        return v1.DeleteModelResponse(deleted_versions=3)


@pytest.fixture
def folders() -> EchoFolders:
    return EchoFolders()


@pytest.fixture
def models() -> EchoModels:
    return EchoModels()


@pytest.fixture
async def client(folders: EchoFolders, models: EchoModels) -> AsyncIterator[AsyncClient]:
    async with ChannelFor([folders, models]) as channel:
        yield AsyncClient.from_channel(channel, token="tok")


async def test_folder_methods_return_the_folder(client: AsyncClient) -> None:
    """create_folder and get_folder return the Folder of their reply."""
    created = await client.create_folder("weights", description="nightly")
    fetched = await client.get_folder("f9")
    assert (created.id, created.name, created.description) == ("f1", "weights", "nightly")
    assert fetched.id == "f9"


async def test_model_methods_return_the_model_or_version(client: AsyncClient) -> None:
    """create_model, get_model and get_model_version return the resource of their reply."""
    created = await client.create_model("f1", "resnet")
    fetched = await client.get_model("m9")
    version = await client.get_model_version("m9", 3)
    assert (created.folder_id, created.name) == ("f1", "resnet")
    assert fetched.id == "m9"
    assert (version.model_id, version.version) == ("m9", 3)


@pytest.mark.parametrize(
    ("role", "expected"),
    [
        ("viewer", v1.FolderRole.VIEWER),
        ("editor", v1.FolderRole.EDITOR),
        ("owner", v1.FolderRole.OWNER),
        (v1.FolderRole.EDITOR, v1.FolderRole.EDITOR),
    ],
)
async def test_role_names_map_to_the_enum(
    client: AsyncClient, folders: EchoFolders, role: v1.FolderRole | str, expected: v1.FolderRole
) -> None:
    """grant_folder_access sends the FolderRole for a role name or passes an enum through."""
    member = await client.grant_folder_access("f1", "bob", role)
    assert member.role == expected
    assert folders.requests == [
        v1.GrantFolderAccessRequest(folder_id="f1", username="bob", role=expected)
    ]


@pytest.mark.parametrize("role", ["Owner", "admin", "", "unspecified"])
async def test_unknown_role_names_are_refused(
    client: AsyncClient, folders: EchoFolders, role: str
) -> None:
    """A role name other than viewer, editor or owner raises ValueError and sends nothing."""
    with pytest.raises(ValueError, match="role must be one of viewer, editor, owner"):
        await client.grant_folder_access("f1", "bob", role)
    assert folders.requests == []


async def test_revoke_returns_none(client: AsyncClient, folders: EchoFolders) -> None:
    """revoke_folder_access sends folder and username and returns nothing."""
    await client.revoke_folder_access("f1", "bob")
    assert folders.requests == [v1.RevokeFolderAccessRequest(folder_id="f1", username="bob")]


async def test_alias_methods_send_an_expectation_only_when_given(
    client: AsyncClient, models: EchoModels
) -> None:
    """expected_version=None leaves the field absent (unconditional); 0 and N are sent as
    they are, so "must not exist yet" and "must point at N" reach the server."""
    alias = await client.set_model_alias("m1", "production", 3)
    assert (alias.model_id, alias.name, alias.version) == ("m1", "production", 3)
    await client.set_model_alias("m1", "production", 3, expected_version=0)
    await client.set_model_alias("m1", "production", 4, expected_version=3)
    await client.delete_model_alias("m1", "production")
    await client.delete_model_alias("m1", "production", expected_version=4)
    sent = [
        r.expected_version
        for r in models.requests
        if isinstance(r, v1.SetModelAliasRequest | v1.DeleteModelAliasRequest)
    ]
    assert sent == [None, 0, 3, None, 4]


async def test_a_version_is_named_by_number_or_by_alias(
    client: AsyncClient, models: EchoModels
) -> None:
    """get_model_version sends an int as the version number and a str as an alias."""
    await client.get_model_version("m1", 2)
    found = await client.get_model_version("m1", "production")
    assert found.version == 7
    named = [
        (r.version, r.alias) for r in models.requests if isinstance(r, v1.GetModelVersionRequest)
    ]
    assert named == [(2, ""), (0, "production")]


async def test_updates_mask_exactly_the_fields_given(
    client: AsyncClient, folders: EchoFolders, models: EchoModels
) -> None:
    """update_* send the fields given, and only those in the mask; the etag when given."""
    renamed = await client.update_folder("f1", name="sight", etag="e1")
    await client.update_folder("f1", description="")
    await client.update_model("m1", name="vit", description="transformer")
    await client.update_model_version("m1", 2, labels={})
    await client.update_model_version("m1", 2, description="epoch 40", labels={"a": "b"})
    assert (renamed.id, renamed.name, renamed.etag) == ("f1", "sight", "e1")
    sent: list[tuple[Any, list[str]]] = [
        (r.folder, r.update_mask.paths)
        for r in folders.requests
        if isinstance(r, v1.UpdateFolderRequest)
    ]
    sent += [
        (r.model if isinstance(r, v1.UpdateModelRequest) else r.version, r.update_mask.paths)
        for r in models.requests
        if isinstance(r, v1.UpdateModelRequest | v1.UpdateModelVersionRequest)
    ]
    assert sent == [
        (v1.Folder(id="f1", name="sight", etag="e1"), ["name"]),
        (v1.Folder(id="f1"), ["description"]),
        (v1.Model(id="m1", name="vit", description="transformer"), ["name", "description"]),
        (v1.ModelVersion(model_id="m1", version=2), ["labels"]),
        (
            v1.ModelVersion(model_id="m1", version=2, description="epoch 40", labels={"a": "b"}),
            ["description", "labels"],
        ),
    ]


async def test_an_update_of_nothing_is_refused_before_sending(
    client: AsyncClient, folders: EchoFolders, models: EchoModels
) -> None:
    """An update without any field to change raises ValueError and sends nothing."""
    with pytest.raises(ValueError, match="name, description"):
        await client.update_folder("f1", etag="e1")
    with pytest.raises(ValueError, match="description, labels"):
        await client.update_model_version("m1", 1)
    assert folders.requests == []
    assert models.requests == []


async def test_delete_methods_send_force_only_when_asked(
    client: AsyncClient, folders: EchoFolders, models: EchoModels
) -> None:
    """Deletes send the ids and force (off by default) and return the server's counts."""
    assert (await client.delete_model_version("m1", 2)).deleted_aliases == []
    forced = await client.delete_model_version("m1", 3, force=True)
    assert forced.deleted_aliases == ["production"]
    assert (await client.delete_model("m1")).deleted_versions == 3
    folder = await client.delete_folder("f1")
    assert (folder.deleted_models, folder.deleted_versions) == (2, 5)
    await client.delete_folder("f1", force=True)
    assert models.requests == [
        v1.DeleteModelVersionRequest(model_id="m1", version=2),
        v1.DeleteModelVersionRequest(model_id="m1", version=3, force=True),
        v1.DeleteModelRequest(model_id="m1"),
    ]
    assert folders.requests == [
        v1.DeleteFolderRequest(folder_id="f1"),
        v1.DeleteFolderRequest(folder_id="f1", force=True),
    ]
