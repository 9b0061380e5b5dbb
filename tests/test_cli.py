"""The command line: every command teaches itself, is documented, and drives the library."""

from __future__ import annotations

import json
import re
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from narratives.cli import cli

from conftest import STORY

ROOT = Path(__file__).resolve().parents[1]


def _commands(group: click.Group, prefix: str = "") -> list[str]:
    names = []
    for name, command in sorted(group.commands.items()):
        full = f"{prefix}{name}"
        names.append(full)
        if isinstance(command, click.Group):
            names += _commands(command, full + " ")
    return names


COMMANDS = _commands(cli)


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_has_help_with_an_example(command):
    result = CliRunner().invoke(cli, [*command.split(), "--help"])
    assert result.exit_code == 0, result.output
    assert "Example" in result.output


@pytest.mark.parametrize("command", COMMANDS)
def test_every_command_is_documented_in_the_readme(command):
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    assert re.search(rf"narratives {re.escape(command)}\b", readme), f"README lacks {command}"


def test_ingest_then_status(tmp_path):
    path = tmp_path / "n.jsonl"
    record = {
        "id": "x:1",
        "source": "ledgerline.example",
        "publisher": "The Ledger Line",
        "published": "2024-07-15T12:00:00Z",
        "title": "Small caps rally",
        "text": "\n\n".join(STORY),
        "url": "https://ledgerline.example/1",
    }
    path.write_text(json.dumps(record) + "\n{broken\n", encoding="utf-8")
    db = tmp_path / "c.db"
    runner = CliRunner()
    result = runner.invoke(cli, ["ingest", str(path), "--db", str(db), "--no-progress"])
    assert result.exit_code == 0, result.output
    assert re.search(r"new\s+1\b", result.output)
    assert "bad_record 1" in result.output
    result = runner.invoke(cli, ["ingest", str(path), "--db", str(db), "--json"])
    assert json.loads(result.output)["unchanged"] == 1
    result = runner.invoke(cli, ["status", "--db", str(db)])
    assert result.exit_code == 0
    assert "The Ledger Line" in result.output and "2024-07" in result.output
    assert "bad_record" in result.output


def test_status_without_corpus_says_how_to_make_one(tmp_path):
    result = CliRunner().invoke(cli, ["status", "--db", str(tmp_path / "none.db")])
    assert result.exit_code != 0
    assert "narratives ingest" in str(result.exception)


def test_ingest_with_nothing_to_do_explains(tmp_path):
    result = CliRunner().invoke(cli, ["ingest", "--db", str(tmp_path / "c.db")])
    assert result.exit_code != 0
    assert "nothing to ingest" in str(result.exception)


def test_bad_since_date_is_a_usage_error(tmp_path):
    result = CliRunner().invoke(cli, ["ingest", "x.jsonl", "--since", "someday"])
    assert result.exit_code == 2 and "not a usable date" in result.output


def test_feeds_lists_the_shipped_feeds():
    result = CliRunner().invoke(cli, ["feeds"])
    assert result.exit_code == 0
    assert "feeds in" in result.output and "https://" in result.output
