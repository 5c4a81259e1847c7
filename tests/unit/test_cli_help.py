"""Every command's --help shows its bracketed text as written: typer renders help as rich markup,
where "[tool.mpack]" or "[default: ...]" would be read as a style and vanish."""

from __future__ import annotations

import inspect
import re

import pytest
from mpack.packager.cli.app import COMMANDS, app
from typer.models import ParameterInfo
from typer.testing import CliRunner

BRACKETED = re.compile(r"\[[^\[\]]*\]")  # innermost [ ... ]


def _help_strings(function) -> list[str]:
    """The help text as written in the source: the docstring and every option's and argument's help."""
    texts = [inspect.getdoc(function) or ""]
    texts += [parameter.default.help for parameter in inspect.signature(function).parameters.values() if isinstance(parameter.default, ParameterInfo) and parameter.default.help]
    return texts


def _flat(text: str) -> str:
    """Rendered help without its panel borders and line wrapping."""
    return " ".join(re.sub(r"[│╭╮╰╯─]", " ", text).split())


def _rendered_help(*command: str) -> str:
    result = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "1000", "TERMINAL_WIDTH": "1000"})
    assert result.exit_code == 0, result.output
    return _flat(result.output)


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_bracketed_help_text_shows_literally(name):
    rendered = _rendered_help(name)
    fragments = [fragment for text in _help_strings(COMMANDS[name]) for fragment in BRACKETED.findall(_flat(text))]
    missing = [fragment for fragment in fragments if fragment not in rendered]
    assert not missing, f"mpack {name} --help lost {missing}"
    assert "\\[" not in rendered  # escaped, not shown with its escape


def test_the_strings_users_reported_show_whole():
    assert "[also: allow_pickle = true under [tool.mpack]]" in _rendered_help("build")
    assert "Settings may also come from mpack.toml ([deploy]) or pyproject.toml ([tool.mpack.deploy]); flags win." in _rendered_help("deploy")
    assert "[default: dist/<model>-<version>-<target>.zip]" in _rendered_help("build")
    assert "<direct|asgi>" in _rendered_help("build")


def test_every_command_has_bracketed_text_to_check():
    """Guards the test above against finding nothing to compare (a renamed typer class, say)."""
    assert sum(len(BRACKETED.findall(text)) for function in COMMANDS.values() for text in _help_strings(function)) > 30


def test_every_build_flag_reaches_the_build_options():
    """`mpack build` hands its parameters to BuildOptions by name: a flag whose name matches no field
    would be dropped without a word."""
    import inspect
    from dataclasses import fields

    from mpack.packager.cli.build_commands import RENAMED, build
    from mpack.packager.pipeline import BuildOptions

    flags = {RENAMED.get(name, name) for name in inspect.signature(build).parameters} - {"ctx", "platform", "as_json", "debug"}
    assert flags == {f.name for f in fields(BuildOptions)}
