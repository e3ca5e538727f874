"""The deny-by-default table covers every method the server answers, and nothing else; a
method missing from it is refused."""

from collections.abc import AsyncIterator

import pytest
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
