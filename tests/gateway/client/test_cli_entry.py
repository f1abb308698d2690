"""The ``carebridge`` entry point: lazy verbs, grouped help, global options, completion.

Import checks run in a fresh interpreter (a subprocess), since this test
process has long imported everything.
"""

from __future__ import annotations

import json
import os
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from carebridge.gateway import cli

CAREBRIDGE = Path(sys.executable).with_name("carebridge")
HEAVY = ("pypdf", "boto3", "botocore", "sqlalchemy", "jose", "aiohttp", "tqdm", "shtab")
HELP_RUNS = 7  # odd, for a plain median
HELP_BUDGET = 0.15  # seconds of CPU (user + system) for `carebridge --help`, median
# The client verbs whose every argument must carry a help text (this slice's modules).
CLIENT_VERBS = ("keys", "send", "link", "inbox", "outbox", "fetch", "revoke", "amend", "completion")


def modules_after(code: str) -> set[str]:
    """The modules a fresh interpreter holds after running *code* (which may exit)."""
    probe = ("import atexit, json, sys\n"
             "atexit.register(lambda: print('\\nMODULES ' + json.dumps(sorted(sys.modules))))\n" + code)
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=120,
                          env=_clean_env())
    line = done.stdout.rpartition("MODULES ")[2]
    assert line, f"no module list: exit {done.returncode}, stderr {done.stderr}"
    return set(json.loads(line))


def _clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("CAREBRIDGE_")}


def test_help_loads_no_verb_module_and_no_heavy_stack() -> None:
    loaded = modules_after("from carebridge.gateway.cli import main\nmain(['--help'])")
    assert not {m for m in loaded if m.split(".")[0] in HEAVY}, sorted(loaded)
    assert not {m for m in loaded if m.startswith(("carebridge.gateway.client", "carebridge.gateway.server"))}


def test_inbox_loads_no_pdf_s3_database_or_jwt_stack() -> None:
    loaded = modules_after("from carebridge.gateway.cli import parse\nparse(['inbox'])")
    assert "carebridge.gateway.client.cli" in loaded  # the probe did load the verb
    assert not {m for m in loaded if m.split(".")[0] in ("pypdf", "boto3", "sqlalchemy", "jose", "tqdm")}
    assert not {m for m in loaded if m.startswith(("carebridge.gateway.client.redaction",
                                                   "carebridge.gateway.server"))}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_serve_imports_no_client_module(tmp_path: Path) -> None:
    """A real `serve`, stopped with SIGINT once it answers: no carebridge.gateway.client module."""
    port = _free_port()
    probe = ("import atexit, json, sys\n"
             "atexit.register(lambda: print('\\nMODULES ' + json.dumps(sorted(sys.modules)), flush=True))\n"
             "from carebridge.gateway.cli import main\n"
             f"main(['serve', '--data', {str(tmp_path / 'var')!r}, '--port', '{port}'])\n")
    proc = subprocess.Popen([sys.executable, "-c", probe], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, env=_clean_env(), cwd=tmp_path)
    try:
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None and time.monotonic() < deadline, "serve did not start"
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/health", timeout=2):
                    break
            except OSError:
                time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    loaded = set(json.loads(out.rpartition("MODULES ")[2]))
    assert "carebridge.gateway.server.app" in loaded and "aiohttp" in loaded  # it did serve
    assert not {m for m in loaded if m.startswith("carebridge.gateway.client")}


def test_help_cpu_time_is_within_budget() -> None:
    walls, cpus = [], []
    for _ in range(HELP_RUNS):
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        subprocess.run([str(CAREBRIDGE), "--help"], capture_output=True, check=True, timeout=30)
        walls.append(time.perf_counter() - started)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    print(f"carebridge --help: median wall {statistics.median(walls):.3f} s, "
          f"median CPU {statistics.median(cpus):.3f} s over {HELP_RUNS} runs")
    # CPU, not wall time: on a shared machine the wall clock measures the neighbours.
    assert statistics.median(cpus) <= HELP_BUDGET


def test_help_lists_every_verb_in_groups_with_environment() -> None:
    done = subprocess.run([str(CAREBRIDGE), "--help"], capture_output=True, text=True, check=True)
    grouped = [verb for _, verbs in cli.GROUPS for verb, _, _ in verbs]
    registered = set(cli.build_parser()._subparsers._group_actions[0].choices)
    assert sorted(grouped) == sorted(set(grouped)) == sorted(registered) == sorted(cli.OWNERS)
    for title, verbs in cli.GROUPS:
        assert f"\n{title}:\n" in done.stdout
        for _, usage, _ in verbs:
            assert f"\n  {usage} " in done.stdout
    for variable in ("CAREBRIDGE_URL", "CAREBRIDGE_TOKEN", "CAREBRIDGE_IDENTITY", "CAREBRIDGE_PASSPHRASE"):
        assert variable in done.stdout
    assert "examples:" in done.stdout


def test_version() -> None:
    done = subprocess.run([str(CAREBRIDGE), "--version"], capture_output=True, text=True, check=True)
    from importlib.metadata import version

    assert done.stdout == f"carebridge {version('carebridge')}\n"


def _actions(parser, path=()):
    for action in parser._actions:
        if action.choices and isinstance(action.choices, dict):
            for name, child in action.choices.items():
                yield from _actions(child, (*path, name))
        else:
            yield path, action


def test_every_argument_of_the_client_verbs_has_help() -> None:
    missing = [f"{' '.join(path)} {action.dest}" for path, action in _actions(cli.build_parser())
               if path and path[0] in CLIENT_VERBS and not action.help]
    assert not missing


@pytest.mark.parametrize("argv", [
    ["--profile", "{p}", "--json", "inbox"],
    ["inbox", "--profile", "{p}", "--json"],
    ["--json", "inbox", "--profile", "{p}"],
])
def test_global_options_before_or_after_the_verb(tmp_path: Path, argv: list[str]) -> None:
    profile = tmp_path / "spa.toml"
    argv = [a.format(p=profile) for a in argv]
    args, half = cli.parse(argv)
    assert args.verb == "inbox" and args.json is True and args.profile == profile and half is cli.CLIENT


def test_nested_verb_takes_global_options_too(tmp_path: Path) -> None:
    args, _ = cli.parse(["--json", "link", "revoke", "lnk_x"])
    assert args.json is True and args.link == "lnk_x"


@pytest.mark.parametrize(("argv", "message"), [
    ([], "give a VERB (`carebridge --help` lists them)"),
    (["nope"], "unknown verb 'nope' (`carebridge --help` lists them)"),
    (["inbx"], "unknown verb 'inbx' (did you mean 'inbox'? `carebridge --help` lists them)"),
    (["--profile", "p.toml", "keygen", "-o", "k"], "keygen does not take --profile"),
])
def test_usage_errors_are_one_line_and_exit_2(argv: list[str], message: str) -> None:
    done = subprocess.run([str(CAREBRIDGE), *argv], capture_output=True, text=True, env=_clean_env())
    assert done.returncode == 2 and done.stdout == ""
    assert done.stderr.splitlines()[-1] == f"carebridge: error: {message}"


def test_bash_completion_completes_verbs_and_flags() -> None:
    script = subprocess.run([str(CAREBRIDGE), "completion", "bash"], capture_output=True, text=True,
                            check=True).stdout

    def complete(*words: str) -> set[str]:
        line = " ".join(("carebridge", *words))
        driver = (f"{script}\nCOMP_WORDS=(carebridge {' '.join(words)}); COMP_CWORD={len(words)};"
                  f" COMP_LINE='{line}'; COMP_POINT=${{#COMP_LINE}};"
                  " _shtab_carebridge carebridge; printf '%s\\n' \"${COMPREPLY[@]}\"")
        done = subprocess.run(["bash", "-c", driver], capture_output=True, text=True, check=True)
        return set(done.stdout.split())

    assert {"send", "inbox", "fetch", "serve", "audit", "completion"} <= complete("")
    assert {"issue", "revoke"} == complete("link", "")
    assert {"--expires", "--max-downloads"} <= complete("send", "--")


def _zsh_script() -> str:
    return subprocess.run([str(CAREBRIDGE), "completion", "zsh"], capture_output=True, text=True,
                          check=True).stdout


def test_zsh_completion_names_every_verb() -> None:
    script = _zsh_script()
    assert script.startswith("#compdef carebridge")
    for verb in cli.OWNERS:
        assert f"\n    {verb}:'" in script, verb


def test_zsh_parses_the_script_and_compinit_binds_it(require, tmp_path: Path) -> None:
    require(shutil.which("zsh") is not None, "zsh (apt zsh), for the zsh completion script")
    (tmp_path / "_carebridge").write_text(_zsh_script())
    subprocess.run(["zsh", "-n", str(tmp_path / "_carebridge")], check=True)  # syntax
    # Installed as the README says (a file on $fpath), compinit binds it to the command.
    driver = (f"fpath=({tmp_path} $fpath); autoload -Uz compinit; compinit -u -d {tmp_path}/zcompdump;"
              " print -r -- ${_comps[carebridge]}")
    done = subprocess.run(["zsh", "-f", "-c", driver], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "_carebridge", done.stdout + done.stderr
