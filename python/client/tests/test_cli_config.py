"""The CLI's config file: where it lives, how it is written, and what overrides it."""

import json
import stat
from pathlib import Path

import pytest
from cli_testing import CliHarness
from grpclib.const import Status
from rpc_testing import grpc_error

from modelcatalog.cli._config import (
    DEFAULT_SERVER,
    ConfigError,
    Overrides,
    Profile,
    config_dir,
    load_profile,
    resolve,
    save_profile,
)

pytest_plugins = ["cli_fixtures"]


def test_config_dir_follows_xdg_and_falls_back_to_dot_config(tmp_path: Path) -> None:
    """$XDG_CONFIG_HOME/modelcatalog when absolute, else ~/.config/modelcatalog."""
    assert config_dir({"XDG_CONFIG_HOME": str(tmp_path)}) == tmp_path / "modelcatalog"
    assert config_dir({}) == Path.home() / ".config" / "modelcatalog"
    assert config_dir({"XDG_CONFIG_HOME": "relative"}) == Path.home() / ".config" / "modelcatalog"


def test_save_profile_writes_mode_0600_atomically_and_reads_back(tmp_path: Path) -> None:
    """The file is 0600 in a 0700 folder, no temporary file is left, and it reads back equal."""
    path = tmp_path / "cfg" / "modelcatalog" / "config.json"
    profile = Profile(server="h:1", ca_cert="/ca.pem", username="alice", token="tok")
    save_profile(path, profile)
    save_profile(path, profile)  # replacing an existing file works the same way
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    assert [p.name for p in path.parent.iterdir()] == ["config.json"]
    assert load_profile(path) == profile


def test_missing_file_is_an_empty_profile_and_bad_json_is_a_config_error(tmp_path: Path) -> None:
    """No file means defaults; a file that is not a JSON object raises ConfigError naming it."""
    path = tmp_path / "config.json"
    assert load_profile(path) == Profile()
    path.write_text("{not json")
    with pytest.raises(ConfigError, match=r"config\.json is not valid JSON"):
        load_profile(path)
    path.write_text('{"insecure": "yes"}')
    with pytest.raises(ConfigError, match="'insecure' must be true or false"):
        load_profile(path)


def test_login_writes_token_server_and_absolute_ca_path(new_harness: CliHarness) -> None:
    """login saves token, username, server and the CA path made absolute, in a 0600 file."""
    (new_harness.tmp_path / "tls").mkdir()
    (new_harness.tmp_path / "tls" / "server.crt").write_text("not used by the fake")
    new_harness.backend.passwords["alice"] = "secret-password"
    result = new_harness.run(
        "login",
        "alice",
        "--password-stdin",
        "--server",
        "models.test:50051",
        "--ca-cert",
        "tls/server.crt",
        input="secret-password\n",
    )
    assert result.exit_code == 0, result.stderr
    assert "Logged in to models.test:50051 as alice" in result.stdout
    assert stat.S_IMODE(new_harness.config_file.stat().st_mode) == 0o600
    assert json.loads(new_harness.config_file.read_text()) == {
        "server": "models.test:50051",
        "ca_cert": str(new_harness.tmp_path / "tls" / "server.crt"),
        "insecure": False,
        "username": "alice",
        "token": "tok-alice",
    }


def test_saved_login_is_used_by_later_commands(new_harness: CliHarness) -> None:
    """After login, a command uses the saved server and sends the saved token."""
    new_harness.login()
    result = new_harness.run("whoami")
    assert result.exit_code == 0, result.stderr
    assert new_harness.backend.settings[-1].server == DEFAULT_SERVER
    assert new_harness.backend.authorization == [None, "Bearer tok-alice"]


def test_environment_overrides_the_file_and_flags_override_the_environment(
    new_harness: CliHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """MODELCATALOG_TOKEN/SERVER beat the saved values; --server beats MODELCATALOG_SERVER."""
    new_harness.login()
    monkeypatch.setenv("MODELCATALOG_TOKEN", "from-env")
    monkeypatch.setenv("MODELCATALOG_SERVER", "env.test:1")
    assert new_harness.run("whoami").exit_code == 0
    assert new_harness.run("--server", "flag.test:2", "whoami").exit_code == 0
    assert new_harness.run("whoami", "--server", "cmd.test:3").exit_code == 0
    servers = [settings.server for settings in new_harness.backend.settings[1:]]
    assert servers == ["env.test:1", "flag.test:2", "cmd.test:3"]
    assert new_harness.backend.authorization[1:] == ["Bearer from-env"] * 3


def test_saved_token_and_ca_are_not_used_for_another_server(tmp_path: Path) -> None:
    """A token saved for one server is never sent to another; its CA path stays with it."""
    profile = Profile(server="saved:1", ca_cert="/saved.pem", token="tok")
    path = tmp_path / "config.json"
    same = resolve(Overrides(), profile, path, environ={})
    other = resolve(Overrides(server="other:2"), profile, path, environ={})
    assert (same.server, same.ca_cert, same.token) == ("saved:1", "/saved.pem", "tok")
    assert (other.server, other.ca_cert, other.token) == ("other:2", None, None)


def test_token_saved_over_tls_is_never_sent_over_plaintext(
    new_harness: CliHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After a TLS login, plaintext is refused before any RPC; a plaintext login is deliberate."""
    new_harness.login()
    flagged = new_harness.run("whoami", "--insecure")
    monkeypatch.setenv("MODELCATALOG_INSECURE", "1")
    from_env = new_harness.run("whoami")
    for result, undo in ((flagged, "drop --insecure"), (from_env, "unset MODELCATALOG_INSECURE")):
        assert result.exit_code == 1
        assert result.stderr.count("\n") == 1
        assert f"{undo}, or log in over plaintext deliberately" in result.stderr
        assert "`modelcatalog login --insecure`" in result.stderr
    assert new_harness.backend.authorization == [None]  # only the login's SignIn was sent
    assert new_harness.login().exit_code == 0  # over plaintext, as MODELCATALOG_INSECURE says
    assert new_harness.run("whoami").exit_code == 0
    assert new_harness.backend.authorization[-1] == "Bearer tok-alice"


def test_tls_for_the_saved_server_keeps_its_ca_certificate(tmp_path: Path) -> None:
    """--tls or MODELCATALOG_INSECURE=0 for the saved server still verifies with its saved CA."""
    profile = Profile(server="saved:1", ca_cert="/saved.pem", token="tok")
    path = tmp_path / "config.json"
    flagged = resolve(Overrides(insecure=False), profile, path, environ={})
    from_env = resolve(Overrides(), profile, path, environ={"MODELCATALOG_INSECURE": "0"})
    other = resolve(Overrides(server="other:2", insecure=False), profile, path, environ={})
    assert (flagged.ca_cert, flagged.token) == ("/saved.pem", "tok")
    assert (from_env.ca_cert, from_env.token) == ("/saved.pem", "tok")
    assert (other.ca_cert, other.token) == (None, None)


def test_reprs_never_show_the_token(tmp_path: Path) -> None:
    """Profile and Settings leave the token out of their repr, so logs and tracebacks cannot."""
    profile = Profile(server="h:1", token="secret-token")
    settings = resolve(Overrides(), profile, tmp_path / "config.json", environ={})
    assert settings.token == "secret-token"
    assert "secret-token" not in repr(profile) + repr(settings)


def test_insecure_and_ca_cert_precedence(tmp_path: Path) -> None:
    """--insecure beats a saved CA; MODELCATALOG_CA_CERT beats a saved insecure; bad bools fail."""
    path = tmp_path / "config.json"
    saved_tls = Profile(ca_cert="/saved.pem")
    saved_plain = Profile(insecure=True)
    flagged = resolve(Overrides(insecure=True), saved_tls, path, environ={})
    from_env = resolve(Overrides(), saved_plain, path, environ={"MODELCATALOG_CA_CERT": "/e.pem"})
    env_plain = resolve(Overrides(), saved_tls, path, environ={"MODELCATALOG_INSECURE": "1"})
    assert (flagged.insecure, flagged.ca_cert) == (True, None)
    assert (from_env.insecure, from_env.ca_cert) == (False, "/e.pem")
    assert (env_plain.insecure, env_plain.ca_cert) == (True, None)
    with pytest.raises(ConfigError, match="MODELCATALOG_INSECURE"):
        resolve(Overrides(), saved_tls, path, environ={"MODELCATALOG_INSECURE": "maybe"})


def test_logout_removes_the_token_but_keeps_the_server(new_harness: CliHarness) -> None:
    """logout drops token and username from the file; a second logout says so and succeeds."""
    new_harness.login()
    result = new_harness.run("logout")
    again = new_harness.run("logout")
    saved = json.loads(new_harness.config_file.read_text())
    assert result.exit_code == again.exit_code == 0
    assert "Logged out" in result.stdout
    assert "Not logged in" in again.stdout
    assert saved["token"] is None
    assert saved["username"] is None
    assert saved["server"] == DEFAULT_SERVER
    assert stat.S_IMODE(new_harness.config_file.stat().st_mode) == 0o600


def test_logout_revokes_the_saved_token_on_the_saved_server(
    new_harness: CliHarness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """logout calls SignOut with the saved token, even when MODELCATALOG_TOKEN names another."""
    new_harness.login()
    monkeypatch.setenv("MODELCATALOG_TOKEN", "tok-from-env")
    result = new_harness.run("logout")
    assert result.exit_code == 0
    assert new_harness.backend.signed_out == ["Bearer tok-alice"]
    assert "the server revoked the token" in result.stdout


@pytest.mark.parametrize(
    ("status", "reason", "said"),
    [
        (Status.UNAVAILABLE, None, "could not revoke the token"),
        (Status.UNAUTHENTICATED, "TOKEN_REVOKED", ""),
    ],
)
def test_logout_forgets_the_token_when_the_server_cannot_revoke_it(
    new_harness: CliHarness, status: Status, reason: str | None, said: str
) -> None:
    """An unreachable server, or one that no longer accepts the token, still ends logged out;
    only the first warns that the token stays valid."""
    new_harness.login()
    new_harness.backend.error = grpc_error(status, "no", reason)
    result = new_harness.run("logout")
    assert result.exit_code == 0
    assert json.loads(new_harness.config_file.read_text())["token"] is None
    assert "Logged out" in result.stdout
    if said:
        assert said in result.stderr
        assert "stays valid until it expires" in result.stderr
    else:
        assert result.stderr == ""
        assert "already expired or been revoked" in result.stdout


def test_broken_config_file_is_one_line_error(new_harness: CliHarness) -> None:
    """An unreadable config file gives exit 1 and one line naming the file, no traceback."""
    new_harness.config_file.parent.mkdir(parents=True)
    new_harness.config_file.write_text("[]")
    result = new_harness.run("whoami")
    assert result.exit_code == 1
    assert result.stderr.count("\n") == 1
    assert str(new_harness.config_file) in result.stderr
    assert "Traceback" not in result.output
