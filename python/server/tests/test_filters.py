"""ListModels and ListModelVersions with filters and orders: what matches, in what order, and
what a bad filter is told."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime

import pytest
from grpclib.const import Status
from server_testing import Api, Caller, expect_error
from test_versions import request_stream, split

from modelcatalog import v1
from modelcatalog_server.domain.errors import InvalidArgument
from modelcatalog_server.domain.filters import MODEL_FIELDS, Condition, parse_filter


async def models_named(
    caller: Caller, filter_text: str = "", order_by: str = "", page_size: int = 0
) -> list[str]:
    """The names of every model the list returns, following the pages."""
    names: list[str] = []
    token = ""
    while True:
        page = await caller.models.list_models(
            v1.ListModelsRequest(
                page_size=page_size, page_token=token, filter=filter_text, order_by=order_by
            )
        )
        if page.next_page_token:
            assert len(page.models) == (page_size or 50), "a page before the last is full"
        names += [m.name for m in page.models]
        if not page.next_page_token:
            return names
        token = page.next_page_token


async def upload_labelled(caller: Caller, model_id: str, **labels: str) -> v1.ModelVersion:
    data = model_id.encode() + repr(sorted(labels.items())).encode()
    header = v1.UploadModelVersionHeader(
        model_id=model_id,
        file_name="m.bin",
        size_bytes=len(data),
        sha256=hashlib.sha256(data).hexdigest(),
        labels=labels,
    )
    return (await caller.models.upload_model_version(request_stream(header, split(data)))).version


@pytest.fixture
async def catalog(api: Api) -> Caller:
    """alice's folders vision (ResNet-50, resnet-101, ViT) and nlp (BERT-base, distilbert),
    created in that order; resnet-101 and BERT-base have a version labelled stage=prod."""
    alice = await api.caller("alice")
    for folder_name, model_names in (
        ("vision", ["ResNet-50", "resnet-101", "ViT"]),
        ("nlp", ["BERT-base", "distilbert"]),
    ):
        folder = (await alice.folders.create_folder(v1.CreateFolderRequest(folder_name))).folder
        for name in model_names:
            model = (await alice.models.create_model(v1.CreateModelRequest(folder.id, name))).model
            if name in ("resnet-101", "BERT-base"):
                await upload_labelled(alice, model.id, stage="prod", arch="x")
            else:
                await upload_labelled(alice, model.id, stage="dev")
    return alice


@pytest.mark.parametrize(
    ("filter_text", "expected"),
    [
        ("", ["ResNet-50", "resnet-101", "ViT", "BERT-base", "distilbert"]),
        ('name = "ViT"', ["ViT"]),
        ('name = "vit"', []),
        ('name = "res*"', ["resnet-101"]),
        ('name : "resnet"', ["ResNet-50", "resnet-101"]),
        ('name : "BERT"', ["BERT-base", "distilbert"]),
        ('name : "%"', []),
        ('labels.stage = "prod"', ["resnet-101", "BERT-base"]),
        ("labels.arch : *", ["resnet-101", "BERT-base"]),
        ('labels.stage = "prod" AND name : "bert"', ["BERT-base"]),
        ('name : "e" AND name : "t" AND name = "ViT"', []),
        ('create_time < "2000-01-01T00:00:00Z"', []),
        (
            'create_time > "2000-01-01T00:00:00+02:00"',
            ["ResNet-50", "resnet-101", "ViT", "BERT-base", "distilbert"],
        ),
    ],
)
async def test_filters_select_the_models_that_match(
    catalog: Caller, filter_text: str, expected: list[str]
) -> None:
    """Each filter returns exactly the models it describes, oldest first, over full pages."""
    assert await models_named(catalog, filter_text, page_size=1) == expected


@pytest.mark.parametrize(
    ("filter_text", "expected"),
    [
        ('name : "Ärzte"', ["Ärzte-Modell", "ÄRZTE-GROSS"]),
        ('name : "ärzte"', ["ärzte-klein-ß"]),
        ('name : "MODELL"', ["Ärzte-Modell"]),
        ('name : "SS"', ["ÄRZTE-GROSS"]),
    ],
)
async def test_a_name_condition_ignores_the_case_of_ascii_letters_only(
    api: Api, filter_text: str, expected: list[str]
) -> None:
    """``name :`` finds a name by any part of it written as it is, whatever the case of its
    ASCII letters; other letters match only in their own case, on every backend."""
    bob = await api.caller("bob")
    folder = (await bob.folders.create_folder(v1.CreateFolderRequest("medical"))).folder
    for name in ("Ärzte-Modell", "ärzte-klein-ß", "ÄRZTE-GROSS"):
        await bob.models.create_model(v1.CreateModelRequest(folder.id, name))
    assert await models_named(bob, filter_text) == expected


async def test_a_folder_condition_keeps_to_the_folder(catalog: Caller) -> None:
    """folder_id = "ID" lists that folder's models only."""
    folders = (await catalog.folders.list_folders(v1.ListFoldersRequest())).folders
    nlp = next(f for f in folders if f.name == "nlp")
    assert await models_named(catalog, f'folder_id = "{nlp.id}"') == ["BERT-base", "distilbert"]


@pytest.mark.parametrize(
    ("order_by", "expected"),
    [
        ("create_time desc", ["distilbert", "BERT-base", "ViT", "resnet-101", "ResNet-50"]),
        ("name", ["BERT-base", "ResNet-50", "ViT", "distilbert", "resnet-101"]),
        ("name desc", ["resnet-101", "distilbert", "ViT", "ResNet-50", "BERT-base"]),
    ],
)
async def test_orders_hold_across_pages(
    catalog: Caller, order_by: str, expected: list[str]
) -> None:
    """order_by sorts the whole list, page after page (pages of 2 here)."""
    assert await models_named(catalog, order_by=order_by, page_size=2) == expected


async def test_another_users_models_never_match(catalog: Caller, api: Api) -> None:
    """A filter only ever narrows what the caller may see: bob matches nothing of alice's."""
    bob = await api.caller("bob")
    assert await models_named(bob, 'name : "e"') == []


async def test_a_page_token_is_bound_to_its_filter_and_order(catalog: Caller) -> None:
    """A page token used with another filter or order is PAGE_TOKEN_INVALID."""
    first = await catalog.models.list_models(v1.ListModelsRequest(page_size=1, filter='name : "e"'))
    for changed in (
        v1.ListModelsRequest(page_size=1, page_token=first.next_page_token),
        v1.ListModelsRequest(
            page_size=1, page_token=first.next_page_token, filter='name : "e"', order_by="name"
        ),
    ):
        await expect_error(
            catalog.models.list_models(changed), Status.INVALID_ARGUMENT, "PAGE_TOKEN_INVALID"
        )


@pytest.mark.parametrize(
    ("filter_text", "says"),
    [
        ('nmae = "x"', "unknown field 'nmae' at character 1; expected name, folder_id"),
        ('name = "x" OR name = "y"', "expected AND at character 12, found 'OR'"),
        ("name = x", "expected a value in double quotes at character 8"),
        ('name < "x"', "name takes : or =, not <"),
        ('name = "x" AND', "expected a field"),
        ("name =", "expected a value after name = at the end"),
        ('create_time > "yesterday"', "create_time needs an RFC 3339 time"),
        ('create_time > "2026-01-01T00:00:00"', "create_time needs an RFC 3339 time"),
        ('labels.Stage = "x"', "label key 'Stage' must be"),
        ('folder_id = ""', 'folder_id = "" names no folder'),
        ('name = "abc', "the string that starts at character 8 has no closing quote"),
        ('labels.stage : "dev"', "labels.stage takes =, not :"),
        ('name : "' + "x" * 1100 + '"', "filter must be at most 1024 characters"),
        (" AND ".join(['name : "x"'] * 17), "at most 16 conditions"),
    ],
)
async def test_a_bad_filter_says_what_was_expected_where(
    catalog: Caller, filter_text: str, says: str
) -> None:
    """A malformed filter is INVALID_ARGUMENT on the filter field, saying what is wrong."""
    error = await expect_error(
        catalog.models.list_models(v1.ListModelsRequest(filter=filter_text)),
        Status.INVALID_ARGUMENT,
        "INVALID_FIELD",
        field="filter",
    )
    assert says in str(error.message)


@pytest.mark.parametrize("order_by", ["size", "name sideways", "name desc name", "version"])
async def test_a_bad_order_is_refused_naming_the_choices(catalog: Caller, order_by: str) -> None:
    """order_by other than the keys the list knows is INVALID_ARGUMENT listing them."""
    error = await expect_error(
        catalog.models.list_models(v1.ListModelsRequest(order_by=order_by)),
        Status.INVALID_ARGUMENT,
        "INVALID_FIELD",
        field="order_by",
    )
    assert '"create_time", "create_time desc", "name", "name desc"' in str(error.message)


async def test_versions_filter_by_label_and_time_in_either_order(api: Api) -> None:
    """ListModelVersions filters by label and creation time, newest first by default and
    oldest first with order_by "version", over full pages."""
    alice = await api.caller("alice")
    folder = (await alice.folders.create_folder(v1.CreateFolderRequest("vision"))).folder
    model = (await alice.models.create_model(v1.CreateModelRequest(folder.id, "resnet"))).model
    stages = ["dev", "prod", "dev", "prod", "prod"]
    made = [await upload_labelled(alice, model.id, stage=s, n=str(i)) for i, s in enumerate(stages)]

    async def numbers(filter_text: str = "", order_by: str = "") -> list[int]:
        found: list[int] = []
        token = ""
        while True:
            page = await alice.models.list_model_versions(
                v1.ListModelVersionsRequest(model.id, 1, token, filter_text, order_by)
            )
            found += [v.version for v in page.versions]
            token = page.next_page_token
            if not token:
                return found

    assert await numbers('labels.stage = "prod"') == [5, 4, 2]
    assert await numbers('labels.stage = "prod"', "version") == [2, 4, 5]
    assert await numbers("labels.n : *", "create_time") == [1, 2, 3, 4, 5]
    third = made[2].create_time.astimezone(UTC).isoformat()
    assert await numbers(f'create_time >= "{third}"') == [5, 4, 3]
    assert await numbers(f'create_time < "{third}" AND labels.stage = "dev"') == [1]
    assert await numbers("labels.missing : *") == []
    await expect_error(
        alice.models.list_model_versions(
            v1.ListModelVersionsRequest(model.id, filter='name = "x"')
        ),
        Status.INVALID_ARGUMENT,
        "INVALID_FIELD",
        field="filter",
    )


def test_quoted_values_keep_escaped_quotes_and_backslashes() -> None:
    """\\" and \\\\ inside a value stand for a quote and a backslash; blanks are free."""
    parsed = parse_filter(r'name:"a \"b\" \\c"   AND  labels.k:*', MODEL_FIELDS)
    assert parsed == [Condition("name", ":", 'a "b" \\c'), Condition("labels.k", ":", None)]


def test_a_time_condition_is_compared_in_utc() -> None:
    """Times with offsets are the same instant as their UTC spelling."""
    from modelcatalog_server.domain.filters import timestamp_us

    local = timestamp_us(Condition("create_time", ">", "2026-01-01T02:00:00+02:00"))
    utc = datetime(2026, 1, 1, tzinfo=UTC).timestamp() * 1_000_000
    assert local == utc
    with pytest.raises(InvalidArgument):
        timestamp_us(Condition("create_time", ">", "2026-01-01"))
