"""The SDK's public surface is exactly what it promises: ``__all__`` and the clients' methods."""

import inspect
from typing import Any

import modelcatalog
from modelcatalog import v1

CLIENT_MEMBERS = {
    "change_password",
    "close",
    "create_access_token",
    "create_folder",
    "create_model",
    "delete_account",
    "delete_folder",
    "explain_access",
    "delete_model",
    "delete_model_alias",
    "delete_model_version",
    "download",
    "get_current_user",
    "get_folder",
    "get_model",
    "get_model_version",
    "grant_folder_access",
    "leave_folder",
    "list_access_tokens",
    "list_folder_access",
    "list_audit_events",
    "list_folders",
    "list_model_aliases",
    "list_model_versions",
    "list_models",
    "revoke_access_token",
    "revoke_folder_access",
    "set_model_alias",
    "sign_in",
    "sign_out",
    "sign_out_everywhere",
    "sign_up",
    "token",
    "update_folder",
    "update_model",
    "update_model_version",
    "upload",
    "watch_events",
}
"""The public methods and properties both clients have."""


def public_members(cls: type[Any]) -> set[str]:
    """The public names a class defines or inherits (methods, properties, class methods)."""
    return {name for name, _ in inspect.getmembers(cls) if not name.startswith("_")}


def test_all_is_pinned() -> None:
    """modelcatalog.__all__ names the clients, their types, the errors and the subpackages."""
    assert sorted(modelcatalog.__all__) == [
        "Aborted",
        "AlreadyExists",
        "AsyncClient",
        "Cancelled",
        "Client",
        "DataLoss",
        "DeadlineExceeded",
        "DownloadedFile",
        "FailedPrecondition",
        "InvalidArgument",
        "ModelCatalogError",
        "NotFound",
        "OutOfRange",
        "PermissionDenied",
        "ProgressCallback",
        "ResourceExhausted",
        "ServerError",
        "StatusCode",
        "Unauthenticated",
        "Unavailable",
        "__version__",
        "v1",
        "wire",
    ]


def test_clients_public_members_are_pinned() -> None:
    """Client and AsyncClient have exactly the pinned public members (AsyncClient also
    from_channel, for channels made in the caller's event loop)."""
    assert public_members(modelcatalog.Client) == CLIENT_MEMBERS
    assert public_members(modelcatalog.AsyncClient) == CLIENT_MEMBERS | {"from_channel"}


def test_downloaded_file_fields_are_pinned() -> None:
    """DownloadedFile carries the saved path, the version and the resumed byte count."""
    fields = modelcatalog.DownloadedFile.__dataclass_fields__
    assert list(fields) == ["path", "version", "resumed_from"]


def test_every_name_in_all_is_exported() -> None:
    """Each name listed in modelcatalog.__all__ can be imported from modelcatalog."""
    for name in modelcatalog.__all__:
        assert hasattr(modelcatalog, name), name


def test_every_public_name_is_in_all() -> None:
    """Nothing public is exported by accident: the public names are exactly __all__."""
    # The CLI subpackage is not part of the SDK's API; once imported it is bound as an attribute.
    public = {name for name in dir(modelcatalog) if not name.startswith("_")} - {"cli"}
    assert public == set(modelcatalog.__all__) - {"__version__"}


def test_errors_are_exported_under_their_class_names() -> None:
    """Every exported error class is a ModelCatalogError and is reachable by its own name."""
    errors = {
        name
        for name in modelcatalog.__all__
        if isinstance(value := getattr(modelcatalog, name), type)
        and issubclass(value, modelcatalog.ModelCatalogError)
    }
    assert len(errors) == 15
    assert all(getattr(modelcatalog, name).__name__ == name for name in errors)


def test_v1_exposes_the_contract() -> None:
    """modelcatalog.v1 carries the stubs, bases and messages of all three services."""
    for service in ("AuthService", "FolderService", "ModelService"):
        assert hasattr(v1, f"{service}Stub")
        assert hasattr(v1, f"{service}Base")
    assert v1.FolderRole.OWNER == 3
    assert str(v1.ErrorReason(6)) == "USERNAME_TAKEN"
