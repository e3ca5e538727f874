"""``modelcatalog completion SHELL``: the script that gives bash, zsh or fish Tab completion.

The scripts are Click's: each Tab runs ``modelcatalog`` with ``_MODELCATALOG_COMPLETE`` set,
and Click answers with the commands, options and choices that fit, so they never go stale.
The shell's own Tab completion (``_shell.completions``) asks Click the same way.
"""

import click

PROG_NAME = "modelcatalog"
COMPLETE_VAR = "_MODELCATALOG_COMPLETE"
"""The variable Click's completion scripts set when they ask the program for completions."""

SHELLS = ("bash", "zsh", "fish")


@click.command(
    epilog="\b\nExamples:\n"
    '  eval "$(modelcatalog completion bash)"          # in ~/.bashrc\n'
    '  eval "$(modelcatalog completion zsh)"           # in ~/.zshrc\n'
    "  modelcatalog completion fish > ~/.config/fish/completions/modelcatalog.fish"
)
@click.argument("shell_name", metavar="SHELL", type=click.Choice(SHELLS))
@click.pass_context
def completion(ctx: click.Context, shell_name: str) -> None:
    """Print the Tab completion script for bash, zsh or fish.

    With it, SHELL completes modelcatalog's commands, options and choices on Tab. Load it
    from your shell's startup file as in the examples. It is the script Click prints
    for _MODELCATALOG_COMPLETE=bash_source (zsh_source, fish_source) modelcatalog. Bash
    needs version 4.4 or later.
    """
    from click.shell_completion import get_completion_class

    complete_class = get_completion_class(shell_name)
    if complete_class is None:  # pragma: no cover - Click ships all three
        raise click.UsageError(f"Click has no completion for {shell_name}")
    root = ctx.find_root().command
    click.echo(complete_class(root, {}, PROG_NAME, COMPLETE_VAR).source(), nl=False)
