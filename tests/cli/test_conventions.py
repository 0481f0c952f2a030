"""Command-line conventions: --version, global options after the subcommand, config files
(jsonargparse) for every subcommand, quoted globs, '-' for standard input, and every
command line the README shows still accepted."""

from __future__ import annotations

import io
import json
import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

import noisead
from noisead.cli import build_parser, chosen_command, main
from noisead.cli_inputs import STDIN_DIR, analysis_inputs, expand_globs, keep_stdin

REPO = Path(__file__).resolve().parents[2]


def parse(argv: list[str]):
    parser = build_parser()
    return chosen_command(parser, parser.parse_args(argv))


def test_version(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    assert capsys.readouterr().out.strip() == f"noisead {noisead.__version__}"


def test_version_through_python_m_and_the_console_command():
    commands = [[sys.executable, "-m", "noisead.cli", "--version"],
                [sys.executable, "-c", "import sys; from noisead.extras import main; "
                                       "sys.exit(main(['--version']))"]]
    script = Path(sys.executable).with_name("noisead")
    if script.is_file():  # the installed console command itself
        commands.append([str(script), "--version"])
    for command in commands:
        done = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert done.stdout.strip() == f"noisead {noisead.__version__}"


@pytest.mark.parametrize("argv", [
    ["analyze", "x.png", "-o", "out"],
    ["data", "simulate-cameras", "scenes", "-o", "out"],
    ["fit-detector", "--extractor", "e.safetensors", "p/", "-o", "m.safetensors"],
    ["evaluate", "bench", "-o", "out"],
    ["train-extractor", "cams", "-o", "run"],
    ["export", "-o", "m.onnx"],
])
def test_global_options_before_or_after_the_subcommand(argv):
    assert parse(argv)[1].quiet is False
    assert parse(["--quiet", *argv])[1].quiet is True
    assert parse([*argv, "--quiet"])[1].quiet is True


def _readme_command_lines() -> list[list[str]]:
    """Every ``noisead ...`` command of the README's shell blocks, as arguments."""
    readme = (REPO / "README.md").read_text()
    blocks = re.findall(r"```sh\n(.*?)```", readme, re.DOTALL)
    text = "\n".join(blocks).replace("\\\n", " ")
    commands = []
    for line in text.splitlines():
        words = shlex.split(line, comments=True)
        for i, word in enumerate(words):
            if word in ("|", ">", "<", ">>", "&&"):
                words = words[:i] if "noisead" in words[:i] else words[i + 1:]
                break
        if words[:1] == ["noisead"]:
            commands.append(words[1:])
        elif words[:2] == ["docker", "run"] and "noisead" in words:
            commands.append(words[words.index("noisead") + 1:])
    return commands


def test_every_command_line_of_the_readme_is_accepted(tmp_path, monkeypatch, capsys):
    commands = _readme_command_lines()
    seen = {c[0] for c in commands if not c[0].startswith("-")}
    assert {"analyze", "serve", "models", "evaluate", "export", "data", "train-extractor",
            "fit-detector", "schema"} <= seen
    assert any(c[:2] == ["analyze", "-"] for c in commands)  # the stdin line
    monkeypatch.chdir(tmp_path)
    for argv in commands:
        if argv[0] == "analyze" and "--config" in argv:  # the README's example file
            Path(argv[argv.index("--config") + 1]).write_text("output: results\n")
        if argv == ["--version"] or "--print_config" in argv:
            with pytest.raises(SystemExit) as stop:
                main(argv)
            assert stop.value.code == 0
            continue
        command, _ = parse(argv)  # exits (fails the test) if not accepted
        assert callable(command)


def test_a_config_file_gives_options_and_the_command_line_wins(tmp_path):
    config = tmp_path / "analyze.yaml"
    config.write_text("output: results\nmode: blind\nthreshold: 0.9\noutputs: npz\n"
                      "fail_on_detection: true\n")
    command, args = parse(["analyze", "a.png", "--config", str(config), "--threshold", "0.5"])
    assert command.__name__ == "cmd_analyze"
    assert (args.output, args.mode, args.threshold) == ("results", "blind", 0.5)
    assert args.outputs == "npz,json" and args.fail_on_detection is True
    as_json = tmp_path / "serve.json"
    as_json.write_text(json.dumps({"port": 9000, "max_pending": 2}))
    _, args = parse(["serve", "--config", str(as_json)])
    assert (args.port, args.max_pending, args.host) == (9000, 2, "127.0.0.1")


def test_print_config_writes_a_file_that_reads_back(tmp_path, capsys):
    argv = ["analyze", "a.png", "b/", "-o", "out", "--mode", "reference", "--outputs", "all",
            "--json"]
    with pytest.raises(SystemExit) as stop:
        main([*argv, "--print_config"])
    assert stop.value.code == 0
    saved = tmp_path / "saved.yaml"
    saved.write_text(capsys.readouterr().out)
    _, expected = parse(argv)
    _, again = parse(["analyze", "--config", str(saved)])
    for key in ("inputs", "output", "mode", "outputs", "json", "threshold", "max_pixels"):
        assert again[key] == expected[key], key


def test_whole_command_line_config_reaches_train_extractor(tmp_path):
    """train-extractor's own --config is its TrainConfig JSON; its command-line options come
    from the config file of the whole command line."""
    config = tmp_path / "noisead.yaml"
    config.write_text("train-extractor:\n  roots: [cams]\n  output: run\n  steps: 7\n")
    command, args = parse(["--config", str(config), "train-extractor",
                           "--config", "configs/train.json"])
    assert command.__name__ == "cmd_train"
    assert (args.roots, args.output, args.steps) == (["cams"], "run", 7)
    assert args.config == "configs/train.json"


def test_every_subcommand_with_options_reads_and_writes_a_config_file():
    """Each has --config, and --print_config can write its defaults (a default that YAML
    cannot represent, such as an Enum member, would fail here)."""
    parser = build_parser()

    def leaves(p, path=()):
        if p.subcommands is None:
            yield path, p
            return
        for name, child in p.subcommands.parsers.items():
            yield from leaves(child, (*path, name))

    for path, leaf in leaves(parser):
        options = {s for a in leaf._actions for s in a.option_strings}
        written = yaml.safe_load(leaf.dump(leaf.get_defaults(), skip_validation=True))
        assert isinstance(written, dict), path
        if path in (("models",), ("schema",)):
            continue  # nothing worth a file
        assert "--config" in options, path


def test_an_unknown_output_kind_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as stop:
        main(["analyze", "a.png", "-o", "out", "--outputs", "heatmap,bogus"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert "bogus" in err and "npz" in err


def test_quoted_globs_are_expanded(tmp_path):
    for name in ("b.png", "a.png", "c.txt", "sub/d.png", "odd[1].png"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    assert expand_globs([str(tmp_path / "*.png")]) == [
        str(tmp_path / n) for n in ("a.png", "b.png", "odd[1].png")]
    assert expand_globs([str(tmp_path / "**" / "d.png")]) == [str(tmp_path / "sub/d.png")]
    literal = str(tmp_path / "odd[1].png")  # an existing name with glob characters
    assert expand_globs([literal, "-"]) == [literal, "-"]
    missing = str(tmp_path / "*.jpg")  # matches nothing: reported by the run
    assert expand_globs([missing]) == [missing]


class _Stdin(io.BytesIO):
    def __init__(self, data: bytes = b"", tty: bool = False) -> None:
        super().__init__(data)
        self.tty = tty

    def isatty(self) -> bool:
        return self.tty


def test_stdin_is_kept_by_content_in_the_output_folder(tmp_path):
    first = keep_stdin(_Stdin(b"image bytes"), tmp_path)
    assert first.parent == tmp_path / STDIN_DIR and first.read_bytes() == b"image bytes"
    assert keep_stdin(_Stdin(b"image bytes"), tmp_path) == first
    assert keep_stdin(_Stdin(b"other bytes"), tmp_path) != first
    assert sorted(p.name for p in first.parent.iterdir()) == sorted(
        p.name for p in first.parent.glob("stdin-*"))  # no temporary left behind


def test_stdin_from_a_terminal_or_twice_is_refused(tmp_path):
    with pytest.raises(ValueError, match="terminal"):
        analysis_inputs(["-"], tmp_path, _Stdin(tty=True))
    with pytest.raises(ValueError, match="only once"):
        analysis_inputs(["-", "-"], tmp_path, _Stdin(b"x"))
    assert not (tmp_path / STDIN_DIR).exists()
