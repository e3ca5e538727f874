"""The SDK's public names are exactly what its __all__ promises."""

import modelcatalog
from modelcatalog import v1


def test_every_name_in_all_is_exported() -> None:
    """Each name listed in modelcatalog.__all__ can be imported from modelcatalog."""
    for name in modelcatalog.__all__:
        assert hasattr(modelcatalog, name), name


def test_every_public_name_is_in_all() -> None:
    """Nothing public is exported by accident: the public names are exactly __all__."""
    # The CLI subpackage is not part of the SDK's API; once imported it is bound as an attribute.
    public = {name for name in dir(modelcatalog) if not name.startswith("_")} - {"cli"}
    assert public == set(modelcatalog.__all__) - {"__version__"}


def test_v1_exposes_the_contract() -> None:
    """modelcatalog.v1 carries the stubs, bases and messages of all three services."""
    for service in ("AuthService", "FolderService", "ModelService"):
        assert hasattr(v1, f"{service}Stub")
        assert hasattr(v1, f"{service}Base")
    assert v1.FolderRole.OWNER == 3
    assert str(v1.ErrorReason(6)) == "USERNAME_TAKEN"
