"""UpdateFolder, UpdateModel and UpdateModelVersion: field masks, etags, roles, unique names."""

from __future__ import annotations

import asyncio
import hashlib

import pytest
from betterproto.lib.google.protobuf import FieldMask
from grpclib.const import Status
from grpclib.exceptions import GRPCError
from server_testing import EDITOR, VIEWER, Api, Caller, expect_error
from test_versions import download, model_of, upload

from modelcatalog import v1


async def update_folder(caller: Caller, folder: v1.Folder, *paths: str) -> v1.Folder:
    request = v1.UpdateFolderRequest(folder=folder, update_mask=FieldMask(list(paths)))
    return (await caller.folders.update_folder(request)).folder


async def update_model(caller: Caller, model: v1.Model, *paths: str) -> v1.Model:
    request = v1.UpdateModelRequest(model=model, update_mask=FieldMask(list(paths)))
    return (await caller.models.update_model(request)).model


async def update_version(caller: Caller, version: v1.ModelVersion, *paths: str) -> v1.ModelVersion:
    request = v1.UpdateModelVersionRequest(version=version, update_mask=FieldMask(list(paths)))
    return (await caller.models.update_model_version(request)).version


async def folder_of(caller: Caller, name: str = "vision", description: str = "") -> v1.Folder:
    request = v1.CreateFolderRequest(name, description)
    return (await caller.folders.create_folder(request)).folder


async def get_folder(caller: Caller, folder_id: str) -> v1.Folder:
    return (await caller.folders.get_folder(v1.GetFolderRequest(folder_id))).folder


async def get_version(caller: Caller, model_id: str, number: int) -> v1.ModelVersion:
    request = v1.GetModelVersionRequest(model_id, number)
    return (await caller.models.get_model_version(request)).version


async def test_only_the_masked_fields_change(api: Api) -> None:
    """A folder renamed by mask "name" keeps its description; its update_time and etag move,
    and get and list return the new etag."""
    alice = await api.caller("alice")
    folder = await folder_of(alice, "vision", "images")
    assert folder.etag
    assert folder.update_time == folder.create_time
    renamed = await update_folder(alice, v1.Folder(id=folder.id, name="sight"), "name")
    assert (renamed.name, renamed.description) == ("sight", "images")
    assert renamed.caller_role == folder.caller_role
    assert renamed.update_time > folder.update_time
    assert renamed.etag != folder.etag
    assert await get_folder(alice, folder.id) == renamed
    listed = await alice.folders.list_folders(v1.ListFoldersRequest())
    assert listed.folders == [renamed]


async def test_the_star_mask_replaces_every_updatable_field(api: Api) -> None:
    """Mask "*" sets name and description both, so an empty description clears it."""
    alice = await api.caller("alice")
    model = await model_of(alice)
    described = await update_model(alice, v1.Model(id=model.id, description="cnn"), "description")
    assert (described.name, described.description) == ("resnet", "cnn")
    replaced = await update_model(alice, v1.Model(id=model.id, name="resnet50"), "*")
    assert (replaced.name, replaced.description) == ("resnet50", "")
    assert replaced.folder_id == model.folder_id


async def test_version_description_and_labels_change_and_its_bytes_do_not(api: Api) -> None:
    """A version's description and labels (the whole map) change; its file, size, digest and
    bytes stay whatever the request's other fields say."""
    alice = await api.caller("alice")
    model = await model_of(alice)
    data = b"weights" * 1000
    version = await upload(alice, model.id, data, labels={"stage": "dev", "arch": "cnn"})
    sent = v1.ModelVersion(
        model_id=model.id,
        version=1,
        description="epoch 40",
        labels={"stage": "prod"},
        file_name="other.bin",
        sha256="0" * 64,
        size_bytes=1,
    )
    edited = await update_version(alice, sent, "description", "labels")
    assert (edited.description, edited.labels) == ("epoch 40", {"stage": "prod"})
    assert (edited.file_name, edited.size_bytes, edited.sha256, edited.create_time) == (
        version.file_name,
        version.size_bytes,
        hashlib.sha256(data).hexdigest(),
        version.create_time,
    )
    assert edited.etag != version.etag
    assert await get_version(alice, model.id, 1) == edited
    metadata, received = await download(alice, model.id, 1)
    assert received == data
    assert metadata.labels == {"stage": "prod"}
    cleared = await update_version(alice, v1.ModelVersion(model_id=model.id, version=1), "labels")
    assert (cleared.description, cleared.labels) == ("epoch 40", {})


async def test_a_stale_etag_is_aborted_and_changes_nothing(api: Api) -> None:
    """An update with the current etag succeeds; one with an etag read before it is ABORTED
    (ETAG_MISMATCH) and leaves the model as the first update made it."""
    alice = await api.caller("alice")
    model = await model_of(alice)
    first = await update_model(
        alice, v1.Model(id=model.id, description="first", etag=model.etag), "description"
    )
    await expect_error(
        update_model(
            alice, v1.Model(id=model.id, description="second", etag=model.etag), "description"
        ),
        Status.ABORTED,
        "ETAG_MISMATCH",
    )
    got = (await alice.models.get_model(v1.GetModelRequest(model.id))).model
    assert (got.description, got.etag) == ("first", first.etag)
    again = await update_model(
        alice, v1.Model(id=model.id, description="second", etag=first.etag), "description"
    )
    assert again.description == "second"


async def test_of_two_concurrent_updates_with_the_same_etag_one_wins(api: Api) -> None:
    """Two editors labelling a version from the same etag at once: exactly one succeeds, the
    other is ABORTED, and the version carries the winner's labels."""
    alice = await api.caller("alice")
    model = await model_of(alice)
    version = await upload(alice, model.id, b"data")

    def labelled(stage: str) -> v1.ModelVersion:
        return v1.ModelVersion(
            model_id=model.id, version=1, labels={"stage": stage}, etag=version.etag
        )

    outcomes = await asyncio.gather(
        update_version(alice, labelled("a"), "labels"),
        update_version(alice, labelled("b"), "labels"),
        return_exceptions=True,
    )
    winners = [o for o in outcomes if isinstance(o, v1.ModelVersion)]
    losers = [o for o in outcomes if isinstance(o, GRPCError)]
    assert (len(winners), len(losers)) == (1, 1), outcomes
    assert losers[0].status == Status.ABORTED
    assert (await get_version(alice, model.id, 1)).labels == winners[0].labels


async def test_unchanged_values_and_other_changes_keep_the_etag(api: Api) -> None:
    """Setting the values a resource has, granting access to its folder or uploading a
    version to its model changes neither its etag nor its update_time."""
    alice = await api.caller("alice")
    await api.caller("bob")
    model = await model_of(alice)
    folder = await get_folder(alice, model.folder_id)
    same = await update_folder(alice, v1.Folder(id=folder.id, name=folder.name), "name")
    assert (same.etag, same.update_time) == (folder.etag, folder.update_time)
    await alice.folders.grant_folder_access(v1.GrantFolderAccessRequest(folder.id, "bob", EDITOR))
    assert (await get_folder(alice, folder.id)).etag == folder.etag
    await upload(alice, model.id, b"data")
    after_upload = (await alice.models.get_model(v1.GetModelRequest(model.id))).model
    assert after_upload.latest_version == 1
    assert (after_upload.etag, after_upload.update_time) == (model.etag, model.update_time)


async def test_an_etag_belongs_to_one_resource(api: Api) -> None:
    """The etag of one version does not pass for another's."""
    alice = await api.caller("alice")
    model = await model_of(alice)
    first = await upload(alice, model.id, b"one")
    await upload(alice, model.id, b"two")
    await expect_error(
        update_version(
            alice,
            v1.ModelVersion(model_id=model.id, version=2, description="x", etag=first.etag),
            "description",
        ),
        Status.ABORTED,
        "ETAG_MISMATCH",
    )


@pytest.mark.parametrize(
    "paths",
    [[], ["id"], ["etag"], ["creator_username"], ["labels"], ["*", "name"], ["Name"]],
    ids=["empty", "id", "etag", "creator", "not-a-folder-field", "star-and-more", "case"],
)
async def test_a_folder_mask_names_only_updatable_fields(api: Api, paths: list[str]) -> None:
    """An empty mask, or one naming a field that cannot change, is INVALID_ARGUMENT on
    update_mask and changes nothing."""
    alice = await api.caller("alice")
    folder = await folder_of(alice)
    await expect_error(
        update_folder(alice, v1.Folder(id=folder.id, name="new"), *paths),
        Status.INVALID_ARGUMENT,
        "INVALID_FIELD",
        field="update_mask",
    )
    assert await get_folder(alice, folder.id) == folder


@pytest.mark.parametrize(
    "path", ["file_name", "sha256", "size_bytes", "content_type", "version", "name"]
)
async def test_a_versions_bytes_and_their_description_are_immutable(api: Api, path: str) -> None:
    """A mask naming anything of a version but its description and labels is refused."""
    alice = await api.caller("alice")
    model = await model_of(alice)
    await upload(alice, model.id, b"data")
    await expect_error(
        update_version(alice, v1.ModelVersion(model_id=model.id, version=1), path),
        Status.INVALID_ARGUMENT,
        "INVALID_FIELD",
        field="update_mask",
    )


async def test_fields_follow_the_rules_of_create(api: Api) -> None:
    """Names, descriptions, labels and etags are checked as on create, naming the field."""
    alice = await api.caller("alice")
    model = await model_of(alice)
    await upload(alice, model.id, b"data")
    cases = [
        (update_folder(alice, v1.Folder(id=model.folder_id, name=" x"), "name"), "folder.name"),
        (update_folder(alice, v1.Folder(id=model.folder_id), "*"), "folder.name"),
        (update_folder(alice, v1.Folder(name="x"), "name"), "folder.id"),
        (
            update_model(alice, v1.Model(id=model.id, description="\x1b[2J"), "description"),
            "model.description",
        ),
        (update_model(alice, v1.Model(id=model.id, name="a" * 129), "name"), "model.name"),
        (
            update_model(alice, v1.Model(id=model.id, name="x", etag="é"), "name"),
            "model.etag",
        ),
        (
            update_version(
                alice, v1.ModelVersion(model_id=model.id, version=1, labels={"A": "b"}), "labels"
            ),
            "version.labels",
        ),
        (
            update_version(alice, v1.ModelVersion(model_id=model.id), "description"),
            "version.version",
        ),
    ]
    for call, field in cases:
        await expect_error(call, Status.INVALID_ARGUMENT, "INVALID_FIELD", field=field)


async def test_renames_keep_names_unique(api: Api) -> None:
    """A folder cannot take the name of another of its creator's folders, nor a model the
    name of another model in its folder; another user's folder may have the name."""
    alice = await api.caller("alice")
    bob = await api.caller("bob")
    vision = await folder_of(alice, "vision")
    nlp = await folder_of(alice, "nlp")
    await folder_of(bob, "audio")
    await expect_error(
        update_folder(alice, v1.Folder(id=nlp.id, name="vision"), "name"),
        Status.ALREADY_EXISTS,
        "FOLDER_NAME_TAKEN",
    )
    assert (await update_folder(alice, v1.Folder(id=nlp.id, name="audio"), "name")).name == "audio"
    resnet = await alice.models.create_model(v1.CreateModelRequest(vision.id, "resnet"))
    vit = await alice.models.create_model(v1.CreateModelRequest(vision.id, "vit"))
    await expect_error(
        update_model(alice, v1.Model(id=vit.model.id, name="resnet"), "name"),
        Status.ALREADY_EXISTS,
        "MODEL_NAME_TAKEN",
    )
    assert (await get_folder(alice, vision.id)).name == "vision"
    assert resnet.model.name == "resnet"


async def test_who_may_edit_what(api: Api) -> None:
    """Viewers edit nothing, editors models and versions but not the folder, strangers
    nothing; each refusal is the same PERMISSION_DENIED whether or not the resource exists."""
    alice = await api.caller("alice")
    eve = await api.caller("eve")
    vic = await api.caller("vic")
    stranger = await api.caller("stranger")
    model = await model_of(alice)
    await upload(alice, model.id, b"data")
    for username, role in (("eve", EDITOR), ("vic", VIEWER)):
        await alice.folders.grant_folder_access(
            v1.GrantFolderAccessRequest(model.folder_id, username, role)
        )
    folder_edit = v1.Folder(id=model.folder_id, name="renamed")
    model_edit = v1.Model(id=model.id, description="edited")
    version_edit = v1.ModelVersion(model_id=model.id, version=1, description="edited")
    for caller in (eve, vic, stranger):
        await expect_error(
            update_folder(caller, folder_edit, "name"),
            Status.PERMISSION_DENIED,
            "FOLDER_ACCESS_DENIED",
        )
    for caller in (vic, stranger):
        await expect_error(
            update_model(caller, model_edit, "description"),
            Status.PERMISSION_DENIED,
            "FOLDER_ACCESS_DENIED",
        )
        await expect_error(
            update_version(caller, version_edit, "description"),
            Status.PERMISSION_DENIED,
            "FOLDER_ACCESS_DENIED",
        )
    missing = await expect_error(
        update_model(stranger, v1.Model(id="no-such-model", description="x"), "description"),
        Status.PERMISSION_DENIED,
        "FOLDER_ACCESS_DENIED",
    )
    hidden = await expect_error(
        update_model(stranger, model_edit, "description"),
        Status.PERMISSION_DENIED,
        "FOLDER_ACCESS_DENIED",
    )
    assert missing.message == hidden.message
    assert (await update_model(eve, model_edit, "description")).description == "edited"
    assert (await update_version(eve, version_edit, "description")).description == "edited"
    assert (await update_folder(alice, folder_edit, "name")).name == "renamed"


async def test_a_missing_version_is_not_found(api: Api) -> None:
    """Editing a version the model does not have is NOT_FOUND (VERSION_NOT_FOUND)."""
    alice = await api.caller("alice")
    model = await model_of(alice)
    await expect_error(
        update_version(
            alice, v1.ModelVersion(model_id=model.id, version=3, description="x"), "description"
        ),
        Status.NOT_FOUND,
        "VERSION_NOT_FOUND",
    )


async def test_a_listed_model_is_the_model_as_it_is_now(api: Api) -> None:
    """Lists answer from remembered encodings; a renamed, described or newly versioned model
    is listed as GetModel shows it, never as it was listed before."""
    alice = await api.caller("alice")
    folder = await folder_of(alice)
    created = (await alice.models.create_model(v1.CreateModelRequest(folder.id, "resnet"))).model

    async def listed() -> v1.Model:
        page = await alice.models.list_models(v1.ListModelsRequest(folder.id))
        [model] = page.models
        assert model == (await alice.models.get_model(v1.GetModelRequest(model.id))).model
        return model

    assert await listed() == created
    created.name, created.description = "resnet-50", "fifty layers"
    renamed = await update_model(alice, created, "name", "description")
    assert await listed() == renamed
    await upload(alice, renamed.id, b"weights")
    assert (await listed()).latest_version == 1
