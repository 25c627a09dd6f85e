"""Sub-commands come from the crystallize.commands entry-point group and activate no plugin."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest
from fakedist import make_distribution

from crystallize.plugin import COMMANDS_GROUP, Command

HELLO = """
from crystallize.plugin import Command

def configure(parser):
    parser.add_argument("who")
    parser.add_argument("--status", type=int, default=0)

def run(args):
    print(f"hello {args.who}")
    return args.status

hello = Command(name="hello", help="say hello", configure=configure, run=run)
not_a_command = object()
clash = Command(name="plugins", help="takes the built-in's name", configure=configure, run=run)
"""


def _crystallize(site, *args, **env):
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CRYSTALLIZE_")}
    clean.update(PYTHONPATH=str(site), **env)
    return subprocess.run([sys.executable, "-m", "crystallize", *args], env=clean, capture_output=True, text=True)


@pytest.fixture
def site(tmp_path):
    return make_distribution(
        tmp_path / "site",
        "crystallize-hello",
        "2.0",
        {"hello": "hello_command:hello"},
        {"hello_command": HELLO},
        group=COMMANDS_GROUP,
    )


def test_an_installed_command_is_listed_and_runs_with_its_arguments(site):
    usage = _crystallize(site, "--help")
    assert "hello" in usage.stdout and "say hello" in usage.stdout
    done = _crystallize(site, "hello", "world", "--status", "3")
    assert (done.returncode, done.stdout.strip(), done.stderr) == (3, "hello world", "")


def test_installing_a_command_activates_no_plugin(site):
    rows = json.loads(_crystallize(site, "plugins", "--json").stdout)
    assert not [row for row in rows if row["distribution"] == "crystallize-hello"]


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        ("hello_command:not_a_command", "is <object object at"),
        ("hello_command:clash", "is named 'plugins' like the command from crystallize-core"),
        ("missing_module:hello", "failed to load: ModuleNotFoundError"),
    ],
)
def test_a_broken_command_is_reported_and_the_others_still_work(tmp_path, target, expected):
    site = make_distribution(
        tmp_path / "site",
        "crystallize-broken",
        "1.0",
        {"broken": target, "hello": "hello_command:hello"},
        {"hello_command": HELLO},
        group=COMMANDS_GROUP,
    )
    done = _crystallize(site, "hello", "you")
    assert done.returncode == 0 and done.stdout.strip() == "hello you"
    assert "command 'broken'" in done.stderr and "crystallize-broken 1.0" in done.stderr and expected in done.stderr
    strict = _crystallize(site, "hello", "you", CRYSTALLIZE_STRICT_PLUGINS="1")
    assert strict.returncode != 0 and expected in strict.stderr


def test_command_names_are_checked():
    with pytest.raises(ValueError, match="Command name 'Two Words' must be lower-case"):
        Command(name="Two Words", help="", configure=lambda parser: None, run=lambda args: 0)
