"""The deny-by-default table covers every method the server answers, and nothing else; a
method missing from it is refused."""

from collections.abc import AsyncIterator
from importlib import resources

import pytest
from google.protobuf import descriptor_pb2
from grpclib.const import Status
from grpclib.testing import ChannelFor
from server_testing import Api, expect_error

from modelcatalog import v1
from modelcatalog_server.app import Application, build_application
from modelcatalog_server.auth.hook import METHOD_ACCESS, Access
from modelcatalog_server.config import Settings

PUBLIC = {
    "/modelcatalog.v1.AuthService/SignUp",
    "/modelcatalog.v1.AuthService/SignIn",
    "/grpc.health.v1.Health/Check",
    "/grpc.health.v1.Health/Watch",
    "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
    "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
}


def served_methods(app: Application) -> set[str]:
    return {method for service in app.services for method in service.__mapping__()}


def test_every_served_method_has_an_access_rule(app: Application) -> None:
    """A method added to any service without a rule in METHOD_ACCESS fails this test."""
    assert served_methods(app) == set(METHOD_ACCESS)


def test_only_sign_up_sign_in_health_and_reflection_are_public(app: Application) -> None:
    """Everything except SignUp, SignIn, health and reflection needs a token."""
    public = {method for method, access in METHOD_ACCESS.items() if access is Access.PUBLIC}
    assert public == PUBLIC


def side_effect_free_methods() -> set[str]:
    """The API's methods whose proto says ``idempotency_level = NO_SIDE_EFFECTS``."""
    descriptors = descriptor_pb2.FileDescriptorSet.FromString(
        resources.files("modelcatalog._gen").joinpath("modelcatalog.binpb").read_bytes()
    )
    no_side_effects = descriptor_pb2.MethodOptions.NO_SIDE_EFFECTS
    return {
        f"/{file.package}.{service.name}/{method.name}"
        for file in descriptors.file
        if file.package == "modelcatalog.v1"
        for service in file.service
        for method in service.method
        if method.options.idempotency_level == no_side_effects
    }


def test_read_only_access_tokens_may_call_exactly_the_side_effect_free_methods() -> None:
    """The methods a read-only access token may call (READ) are those the contract marks
    NO_SIDE_EFFECTS, except the account methods no access token may call."""
    api_reads = {
        method
        for method, access in METHOD_ACCESS.items()
        if access is Access.READ and method.startswith("/modelcatalog.")
    }
    account = {method for method, access in METHOD_ACCESS.items() if access is Access.ACCOUNT}
    assert api_reads == side_effect_free_methods() - account


GET_CURRENT_USER = "/modelcatalog.v1.AuthService/GetCurrentUser"


@pytest.fixture
async def api_without_a_rule(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Api]:
    """The application built after GetCurrentUser lost its access rule."""
    monkeypatch.delitem(METHOD_ACCESS, GET_CURRENT_USER)
    async with build_application(settings) as app, ChannelFor(app.services) as channel:
        yield Api(channel)


async def test_a_method_without_an_access_rule_is_refused(api_without_a_rule: Api) -> None:
    """A served method missing from the table is denied to everyone, signed in or not."""
    alice = await api_without_a_rule.caller("alice")
    for caller in (alice.auth, api_without_a_rule.auth):
        await expect_error(
            caller.get_current_user(v1.GetCurrentUserRequest()),
            Status.PERMISSION_DENIED,
            "ACCESS_RULE_MISSING",
        )
