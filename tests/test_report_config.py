"""The ``[report]`` section: declared contrasts load; bad ones are one-line errors naming file and field."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from harness.cli import main
from harness.config import ConfigError, load_experiment

BASE = """\
[study]
name = "tiny"

[model]
pair = "all-minilm-l6__all-mpnet-base"

[data]
mixture = "mini-medi"

[train]
max_steps = 4

[objective]
suite = "dev"

[ablation]
seeds = [0, 1]
baseline = "infonce"

[[ablation.arms]]
name = "infonce"
strategy = "none"

[[ablation.arms]]
name = "gist"
strategy = "gist"

[[ablation.arms]]
name = "random_at_gist_rate"
strategy = "random"

[[ablation.arms]]
name = "untrained"
untrained = true
"""


def write(tmp_path: Path, report: str) -> Path:
    path = tmp_path / "experiment.toml"
    path.write_text(BASE + "\n[report]\n" + textwrap.dedent(report), encoding="utf-8")
    return path


def errors_of(tmp_path: Path, report: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load_experiment(write(tmp_path, report))
    return info.value.errors


def test_declared_contrasts_load(tmp_path):
    experiment = load_experiment(write(tmp_path, """\
        contrasts = [["gist", "infonce"], ["gist", "random_at_gist_rate"]]
        primary = [["gist", "random_at_gist_rate"]]
        alpha = 0.01
        """))  # fmt: skip
    assert experiment.report is not None
    assert experiment.report.contrasts == [("gist", "infonce"), ("gist", "random_at_gist_rate")]
    assert experiment.report.primary == [("gist", "random_at_gist_rate")]
    assert experiment.report.alpha == 0.01


def test_an_untrained_reference_and_primary_aggregates_load(tmp_path):
    experiment = load_experiment(write(tmp_path, """\
        contrasts = [["gist", "infonce"], ["gist", "untrained"], ["infonce", "untrained"]]
        primary = [["gist", "infonce"]]
        primary_on = ["category", "sts", "out-of-domain"]
        """))  # fmt: skip
    assert experiment.report is not None
    assert experiment.report.contrasts[1] == ("gist", "untrained")
    assert experiment.report.primary_on == ["category", "sts", "out-of-domain"]


def test_without_report_section_the_field_is_none(tmp_path):
    path = tmp_path / "e.toml"
    path.write_text(BASE, encoding="utf-8")
    assert load_experiment(path).report is None


@pytest.mark.parametrize(
    ("report", "expected"),
    [
        ('contrasts = [["gsit", "infonce"]]',
         "report.contrasts.0: unknown arm 'gsit'; trained arms: infonce, gist, random_at_gist_rate"),
        ('contrasts = [["gist", "gist"]]',
         "report.contrasts.0: contrast of arm 'gist' with itself; pick two different trained arms: "
         "infonce, gist, random_at_gist_rate"),
        ("contrasts = []", "report.contrasts: empty list: give pairs [ARM, REFERENCE] of trained arms: "),
        ("primary = []", "report.primary: empty list"),
        ("alpha = 1.5", "report.alpha: alpha must lie strictly between 0 and 1, e.g. 0.05 (got 1.5)"),
        ("alpha = 0", "report.alpha: alpha must lie strictly between 0 and 1"),
        ('contrasts = [["untrained", "gist"]]',
         "report.contrasts.0: 'untrained' is untrained: scored once, without seeds, it can only be a pair's "
         "reference (right-hand side), e.g. ['infonce', 'untrained']"),
        ('interactions = [["gist", "untrained", "random_at_gist_rate", "infonce"]]',
         "report.interactions.0: 'untrained' is untrained"),
        ('interactions = [["gist", "infonce", "random_at_gist_rate"]]',
         "report.interactions.0: ['gist', 'infonce', 'random_at_gist_rate'] names 3 arms; an entry of "
         "interactions names 4 or 8"),
        ('interactions = [["gist", "infonce", "random_at_gist_rate", "infonce", '
         '"gist", "infonce", "random_at_gist_rate", "infonce"]]',
         "report.interactions.0: three-way interaction names 'gist' more than once; name each of its 8 arms "
         "once: [a, b, c, d, e, f, g, h] = ((a − b) − (c − d)) − ((e − f) − (g − h))"),
        ('primary = [["gist", "infonce", "random_at_gist_rate"]]',
         "report.primary.0: ['gist', 'infonce', 'random_at_gist_rate'] names 3 arms; an entry of primary "
         "names 2, 4 or 8"),
        ('primary_on = ["category", "sts", "sts"]', "report.primary_on: name each aggregate once (repeated: sts)"),
        ("primary_on = []", "report.primary_on: name each aggregate once (empty list)"),
        ('primary_on = ["zero-shot"]', "report.primary_on.0"),
        ('contrasts = [["gist", "infonce"]]\nprimary = [["random_at_gist_rate", "infonce"]]',
         "report.primary.0: ['random_at_gist_rate', 'infonce'] is not among report.contrasts: "
         "['gist', 'infonce']"),
        ('primary = [["gist", "random_at_gist_rate"]]',
         "report.primary.0: ['gist', 'random_at_gist_rate'] is not among the default contrasts"),
    ],
)  # fmt: skip
def test_bad_report_section(tmp_path, report, expected):
    errors = errors_of(tmp_path, report)
    assert any(expected in e for e in errors), errors
    assert all("\n" not in e for e in errors)


def test_validate_command_prints_one_line_per_error_with_file_and_line(tmp_path, capsys):
    path = write(tmp_path, 'contrasts = [["gist", "gist"]]\nalpha = 2\n')
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr()
    text = err.out + err.err
    assert "Traceback" not in text
    lines = [line for line in text.splitlines() if "report." in line]
    assert len(lines) == 2, text
    assert all(str(path) in line or "line " in line for line in lines), text
    assert any("report.alpha" in line and "(got 2)" in line for line in lines)
