"""The README documents every setting and every command (a test fails when one is added silently)."""

from __future__ import annotations

from dataclasses import fields

from click.testing import CliRunner
from conftest import ROOT

from notegraph.cli import main
from notegraph.config import Settings

README = (ROOT / "README.md").read_text(encoding="utf-8")


def test_every_setting_is_documented():
    internal = {"notes_dir", "strict", "quiet"}
    for field in fields(Settings):
        if field.name not in internal:
            assert f"| `{field.name}` |" in README, f"setting {field.name} is not in the README's configuration table"


def test_every_command_is_documented_and_has_help():
    runner = CliRunner()
    for name in main.commands:
        assert f"notegraph {name}" in README, f"command {name} is not in the README"
        result = runner.invoke(main, [name, "--help"])
        assert result.exit_code == 0 and "Usage:" in result.output
