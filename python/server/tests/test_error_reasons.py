"""No error can leave the server with reason UNSPECIFIED or a reason the contract does not declare.

Every reason the server sends is a string literal in its source: a CatalogError's ``reason=``,
an InvalidArgument's default, or the reason given to ``errors.refusal``. The scan below finds
each one (and refuses reasons computed any other way), so a typo or a new undeclared reason
fails here rather than reaching a client as an ErrorInfo it cannot interpret.
"""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

import modelcatalog_server
from modelcatalog import v1
from modelcatalog_server import errors
from modelcatalog_server.domain import errors as domain_errors

SOURCE = Path(modelcatalog_server.__file__).parent
DECLARED = {reason.name for reason in v1.ErrorReason} - {"UNSPECIFIED"}
#: Where a reason passes through as a variable: it was named by a literal where it was raised.
PASS_THROUGH = {
    "errors.py": {"error.reason", "reason"},
    "domain/errors.py": {"reason"},
}


def reasons_in(path: Path) -> tuple[set[str], set[str]]:
    """The literal reasons ``path`` uses, and the non-literal reason expressions it passes on."""
    literals: set[str] = set()
    computed: set[str] = set()

    def take(node: ast.expr) -> None:
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            literals.add(node.value)
        else:
            computed.add(ast.unparse(node))

    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Call):
            for keyword in node.keywords:
                if keyword.arg == "reason":
                    take(keyword.value)
            name = node.func.id if isinstance(node.func, ast.Name) else None
            if name == "refusal" and len(node.args) > 1:
                take(node.args[1])
        elif isinstance(node, ast.arguments):
            for argument, default in zip(node.kwonlyargs, node.kw_defaults, strict=True):
                if argument.arg == "reason" and default is not None:
                    take(default)
        elif isinstance(node, ast.Assign | ast.AnnAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == "reason" for t in targets) and node.value:
                take(node.value)
    return literals, computed


def test_every_reason_in_the_server_source_is_declared() -> None:
    """Each reason literal in the server is an ErrorReason name, never UNSPECIFIED."""
    used: set[str] = set()
    for path in sorted(SOURCE.rglob("*.py")):
        literals, computed = reasons_in(path)
        relative = path.relative_to(SOURCE).as_posix()
        assert computed <= PASS_THROUGH.get(relative, set()), (relative, computed)
        assert literals <= DECLARED, (relative, literals - DECLARED)
        used |= literals
    # The scan sees the reasons of the domain, the auth hook, the transport and the codec.
    assert {"INVALID_FIELD", "FOLDER_ACCESS_DENIED", "TOKEN_MISSING", "MESSAGE_TOO_LARGE"} <= used
    assert {"MALFORMED_REQUEST", "METHOD_NOT_FOUND", "INTERNAL"} <= used


def domain_error_classes() -> list[type[domain_errors.CatalogError]]:
    return [
        cls
        for _, cls in inspect.getmembers(domain_errors, inspect.isclass)
        if issubclass(cls, domain_errors.CatalogError)
    ]


@pytest.mark.parametrize("cls", domain_error_classes(), ids=lambda cls: cls.__name__)
def test_domain_errors_need_a_reason(cls: type[domain_errors.CatalogError]) -> None:
    """A domain error cannot be made without a reason, except InvalidArgument (INVALID_FIELD)."""
    if cls is domain_errors.InvalidArgument:
        assert domain_errors.InvalidArgument("name", "bad").reason == "INVALID_FIELD"
        return
    with pytest.raises(TypeError):
        cls("a message")  # type: ignore[call-arg]


@pytest.mark.parametrize(
    "cls",
    [cls for cls in domain_error_classes() if cls is not domain_errors.CatalogError],
    ids=lambda cls: cls.__name__,
)
def test_every_domain_error_has_a_status(cls: type[domain_errors.CatalogError]) -> None:
    """to_grpc_error gives each kind of domain error a status and its ErrorInfo reason."""
    error = (
        cls("field", "bad")
        if cls is domain_errors.InvalidArgument
        else cls("a message", reason="OVERLOADED")
    )
    grpc_error = errors.to_grpc_error(error)
    assert grpc_error.details
    assert grpc_error.details[0].reason == error.reason
