"""The deny-by-default table covers every method the server answers, and nothing else."""

from modelcatalog_server.app import Application
from modelcatalog_server.auth.hook import METHOD_ACCESS, Access

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
