"""Other users' text is shown as text: never read as markup, never steering the terminal.

A folder shared with you unasked can carry any name, description or label its owner chose
(or a server stored before it refused them): Rich markup such as ``[/]``, OSC 52 (write the
clipboard), OSC 0 (set the window title), CSI and bidi overrides.
"""

import json
import unicodedata

import pytest
from cli_testing import CREATED, FOLDER_ID, MODEL_ID, UNKNOWN_ID, CliHarness
from grpclib.const import Status
from rpc_testing import grpc_error

from modelcatalog import v1
from modelcatalog._text import printable, printable_json
from modelcatalog.cli import _output

pytest_plugins = ["cli_fixtures"]

MARKUP = "[/]"
CLIPBOARD = "\x1b]52;c;Y3VybCBldmlsLnNoIHwgc2g=\x07"
TITLE = "\x1b]0;title\x07"
DESCRIPTION = f"{CLIPBOARD} read me {TITLE} \u202eevil\x9b2J\x7f"
RAW = ("\x1b", "\x07", "\x9b", "\x7f", "\u202e")
"""What must never reach the output raw."""


@pytest.fixture
def harness(harness: CliHarness) -> CliHarness:
    """alice is logged in and sees mallory's folder, model and version."""
    harness.backend.folders.append(
        v1.Folder(
            id=FOLDER_ID,
            name=MARKUP,
            description=DESCRIPTION,
            creator_username=f"mallory{TITLE}",
            create_time=CREATED,
            caller_role=v1.FolderRole.from_string("VIEWER"),
        )
    )
    harness.backend.models.append(
        v1.Model(
            id=MODEL_ID,
            folder_id=FOLDER_ID,
            name=f"{MARKUP}[bold]{TITLE}",
            description=DESCRIPTION,
            creator_username="mallory",
            create_time=CREATED,
        )
    )
    harness.backend.members.append(
        v1.FolderMember(
            user_id="id-mallory",
            username=f"{MARKUP}mallory{TITLE}",
            role=v1.FolderRole.from_string("OWNER"),
            update_time=CREATED,
        )
    )
    harness.backend.versions.append(
        v1.ModelVersion(
            model_id=MODEL_ID,
            version=1,
            file_name=f"{MARKUP}w{TITLE}.onnx",
            content_type=f"text/{TITLE}",
            description=DESCRIPTION,
            labels={"stage": f"{MARKUP}{CLIPBOARD}"},
            sha256="0" * 64,
            creator_username="mallory",
            create_time=CREATED,
        )
    )
    return harness


VIEWS = [
    ("folder", "list"),
    ("folder", "show", FOLDER_ID),
    ("folder", "access", FOLDER_ID),
    ("model", "list"),
    ("model", "show", MODEL_ID),
    ("version", "list", MODEL_ID),
    ("version", "show", MODEL_ID, "1"),
]


@pytest.mark.parametrize("terminal", [False, True], ids=["piped", "terminal"])
@pytest.mark.parametrize("view", VIEWS, ids=" ".join)
def test_list_and_show_views_print_other_users_text_safely(
    harness: CliHarness, monkeypatch: pytest.MonkeyPatch, view: tuple[str, ...], terminal: bool
) -> None:
    """Every list and show view exits 0 and shows markup literally and escapes visibly."""
    if terminal:
        monkeypatch.setenv("FORCE_COLOR", "1")  # Rich then styles for a terminal
    result = harness.run(*view)
    assert result.exit_code == 0, result.stderr
    assert MARKUP in result.stdout
    for raw in RAW[1:] if terminal else RAW:  # on a terminal, ESC starts our own styles
        assert raw not in result.stdout
    assert "\x1b]" not in result.stdout
    assert "\\x1b]0;title\\x07" in result.stdout


def test_show_views_spell_each_escape_out(harness: CliHarness) -> None:
    """model show prints the description with \\x1b, \\x07, \\u202e, \\x9b and \\x7f visible."""
    result = harness.run("model", "show", MODEL_ID)
    clipboard = "\\x1b]52;c;Y3VybCBldmlsLnNoIHwgc2g=\\x07"
    assert f"{clipboard} read me \\x1b]0;title\\x07 \\u202eevil\\x9b2J\\x7f" in result.stdout


@pytest.mark.parametrize("view", VIEWS, ids=" ".join)
def test_json_is_exact_and_holds_no_raw_control_characters(
    harness: CliHarness, view: tuple[str, ...]
) -> None:
    """--json parses back to the server's exact text, yet no control or bidi character is raw."""
    result = harness.run(*view, "--json")
    assert result.exit_code == 0, result.stderr
    for raw in RAW:
        assert raw not in result.stdout
    texts = _strings(json.loads(result.stdout))
    assert any(MARKUP in text for text in texts)
    assert any(TITLE in text for text in texts)


def _strings(value: object) -> list[str]:
    """Every string in a parsed JSON value."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [text for item in value.values() for text in _strings(item)]
    if isinstance(value, list):
        return [text for item in value for text in _strings(item)]
    return []


def test_json_of_a_model_round_trips_exactly(harness: CliHarness) -> None:
    """model show --json gives back the very name and description the server sent."""
    result = harness.run("model", "show", MODEL_ID, "--json")
    shown = json.loads(result.stdout)
    assert shown["name"] == f"{MARKUP}[bold]{TITLE}"
    assert shown["description"] == DESCRIPTION


def test_server_error_messages_are_escaped(harness: CliHarness) -> None:
    """An error message quoting other users' text is one line on stderr, escapes visible."""
    harness.backend.error = grpc_error(
        Status.PERMISSION_DENIED, f"no access to {MARKUP}{DESCRIPTION}", "FOLDER_ACCESS_DENIED"
    )
    result = harness.run("model", "show", MODEL_ID)
    assert result.exit_code == 4
    assert result.stderr.startswith(f"error: no access to {MARKUP}\\x1b]52;c;")
    assert len(result.stderr.splitlines()) == 1
    for raw in RAW:
        assert raw not in result.stderr


def test_the_shell_prints_other_users_text_safely(harness: CliHarness) -> None:
    """Inside `modelcatalog shell` the same views and errors stay safe."""
    result = harness.run(
        "shell", input=f"folder list\nmodel show {MODEL_ID}\nmodel show {UNKNOWN_ID}\n"
    )
    assert MARKUP in result.stdout
    assert "\\x1b]0;title\\x07" in result.stdout
    assert result.stderr.startswith("error:")
    for raw in RAW:
        assert raw not in result.stdout + result.stderr


def test_created_and_granted_lines_escape_what_the_server_sent(harness: CliHarness) -> None:
    """One-line results (created, granted) escape names the server sends back."""
    created = harness.run("folder", "create", f"vision{TITLE}")
    granted = harness.run("folder", "grant", FOLDER_ID, f"bob{TITLE}", "viewer")
    for result in (created, granted):
        assert result.exit_code == 0, result.stderr
        assert "\\x1b]0;title\\x07" in result.stdout
        assert "\x1b" not in result.stdout


def test_progress_bar_shows_a_file_name_with_markup(
    harness: CliHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A local file named like markup uploads and downloads with its progress bar drawn."""
    monkeypatch.setattr(_output, "stdout_is_terminal", lambda: True)
    (harness.tmp_path / "[bold]w.onnx").write_bytes(b"weights")
    uploaded = harness.run("version", "upload", MODEL_ID, "[bold]w.onnx")
    downloaded = harness.run("version", "download", MODEL_ID, "2", "-o", "[red]copy.onnx")
    assert uploaded.exit_code == downloaded.exit_code == 0, uploaded.stderr + downloaded.stderr
    assert "upload [bold]w.onnx" in uploaded.stdout
    assert "download [red]copy.onnx" in downloaded.stdout


def test_printable_escapes_exactly_the_unsafe_characters() -> None:
    """Controls, DEL, C1, format and separator characters are escaped; other text is kept."""
    kept = "Grüße, 模型 🚀 a\\b [/] \u00a0"
    assert printable(kept) == kept
    assert printable("\n\t\x00\x1b\x7f\x85\x9f") == "\\x0a\\x09\\x00\\x1b\\x7f\\x85\\x9f"
    assert printable("\u200b\u202e\u2066\u2028\ufeff") == "\\u200b\\u202e\\u2066\\u2028\\ufeff"
    assert printable("\U000e0001\ud800") == "\\U000e0001\\ud800"


def test_json_escaping_keeps_every_code_point() -> None:
    """Every character survives JSON output exactly, with none of the unsafe ones left raw."""
    # Surrogates cannot come from the server (its strings are UTF-8); escaped side by side,
    # a lone high and a lone low one would read back as a pair.
    everything = "".join(chr(code) for code in range(0x110000) if not 0xD800 <= code <= 0xDFFF)
    document = printable_json(json.dumps({"text": everything}, indent=2, ensure_ascii=False))
    assert json.loads(document) == {"text": everything}
    categories = {unicodedata.category(character) for character in document.replace("\n", "")}
    assert not categories & {"Cc", "Cf", "Cs", "Zl", "Zp"}
