"""Declarations and looks: a study declares before its first trial; each report rendered from its run
folder is a look that spends alpha; a resume is neither a declaration nor a look."""

from __future__ import annotations

import argparse
from pathlib import Path

import pytest
import tomllib
from test_study import ARMS, FakePipeline, experiment

from harness.cli.report_cmd import run as report_command
from harness.cli.run_cmd import write_report
from harness.report import build_report, load_study_dir
from harness.report.inputs import load_report_dir
from harness.report.looks import spent_alpha
from harness.results import Declaration, StudyManifest, read_record, write_new_record
from harness.study import run_study
from harness.study.restore import restore_study

REPORT = '[report]\ncontrasts = [["gist", "infonce"]]\n'
LATER = '[report]\ncontrasts = [["gist", "infonce"], ["gist_lr", "gist"]]\nprimary = [["gist", "infonce"]]\n'
ARMS_LR = [*ARMS, {"name": "gist_lr", "strategy": "gist", "lr": 3e-5}]


class NoisyPipeline(FakePipeline):
    """GIST's gain varies with the seed, so the paired t-test has a p value."""

    def fit(self, config, report):
        model, run = super().fit(config, report)
        return model + (0.004 * (config.seed % 3) if config.strategy == "gist" else 0.0), run


def study(seeds: list[int], toml: str = REPORT, arms: list | None = None):
    """The experiment and the manifest text ``run`` would store (only its [report] section matters)."""
    report = tomllib.loads(toml)["report"]
    exp = experiment(
        "looks", ablation={"seeds": seeds, "baseline": "infonce", "arms": arms or ARMS}, report=report
    )
    return exp, StudyManifest(study="looks", experiment_toml=toml)


def run(tmp_path: Path, seeds: list[int], pipeline=None, **kwargs) -> Path:
    exp, manifest = study(seeds, **kwargs)
    run_study(exp, pipeline or NoisyPipeline(), runs_dir=tmp_path, progress=False, manifest=manifest)
    return tmp_path / "looks"


def files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.glob("*.json"))


def test_the_declaration_is_written_before_the_first_fit(tmp_path: Path):
    seen = []

    class Checking(NoisyPipeline):
        def fit(self, config, report):
            path = tmp_path / "looks" / "declarations" / "0001.json"
            seen.append(path.exists())
            return super().fit(config, report)

    run(tmp_path, [0, 1], Checking())
    assert seen and all(seen)
    declaration = read_record(tmp_path / "looks" / "declarations" / "0001.json", Declaration)
    assert declaration.seeds == [0, 1] and declaration.contrasts == [["gist", "infonce"]]
    assert declaration.primary == [["gist", "infonce"]] and declaration.alpha_spending == "split"
    assert declaration.experiment_toml == REPORT and len(declaration.experiment_sha256) == 64
    assert declaration.changed == []


def test_without_a_report_section_every_trained_arm_is_declared_against_the_baseline(tmp_path: Path):
    exp = experiment("looks")
    run_study(exp, NoisyPipeline(), runs_dir=tmp_path, progress=False)
    declaration = read_record(tmp_path / "looks" / "declarations" / "0001.json", Declaration)
    assert declaration.contrasts == [["gist", "infonce"]]
    assert declaration.alpha == 0.05 and declaration.arms == ["infonce", "gist"]


def test_a_resume_after_a_kill_is_not_a_look_and_declares_nothing_new(tmp_path: Path):
    class Killed(NoisyPipeline):
        def fit(self, config, report):
            if len(self.fits) == 2:
                raise KeyboardInterrupt  # the process is stopped mid-study
            return super().fit(config, report)

    with pytest.raises(KeyboardInterrupt):
        run(tmp_path, [0, 1], Killed())
    folder = run(tmp_path, [0, 1])  # a plain rerun resumes
    assert files(folder / "declarations") == ["0001.json"]
    assert not (folder / "looks").exists()
    assert len([t for t in load_study_dir(folder).trials if t.trial.state == "COMPLETE"]) == 4

    run(tmp_path, [0, 1])  # a rerun with nothing left to do
    assert files(folder / "declarations") == ["0001.json"]


def test_rendering_the_same_data_twice_is_one_look(tmp_path: Path):
    folder = run(tmp_path, [0, 1, 2])
    write_report(folder, tmp_path / "report")
    write_report(folder, tmp_path / "report")
    assert files(folder / "looks") == ["0001.json"]
    assert files(tmp_path / "report" / "inputs" / "looks") == ["0001.json"]


def test_seeds_added_after_a_report_are_a_second_declaration_and_look_at_half_alpha(tmp_path: Path):
    old = run(tmp_path / "old", [0, 1, 2])
    write_report(old, tmp_path / "report")
    first = (old / "declarations" / "0001.json").read_bytes()
    # Optuna cannot add seeds to a study: it goes on from its report (run --from-report).
    restore_study(study([0, 1, 2, 3, 4])[0], tmp_path / "report", tmp_path / "looks", None)
    folder = run(tmp_path, [0, 1, 2, 3, 4])
    write_report(folder, tmp_path / "report")

    assert (folder / "declarations" / "0001.json").read_bytes() == first  # never overwritten
    second = read_record(folder / "declarations" / "0002.json", Declaration)
    assert second.changed == ["seeds: [0, 1, 2] -> [0, 1, 2, 3, 4]"]
    results = load_study_dir(folder)
    assert [look.seeds["gist"] for look in results.looks] == [3, 5]
    assert [look.declaration for look in results.looks] == [1, 2]
    assert results.looks[1].estimates[0].contrast == ["gist", "infonce"]
    assert results.looks[1].estimates[0].p is not None

    report = build_report(results)  # the report as it now stands: 2 looks, split alpha
    assert spent_alpha(0.05, "split", 2) == 0.025
    assert "Verdicts at alpha = 0.025" in report.contrasts[0].notes[0]
    readme = (tmp_path / "report" / "README.md").read_text(encoding="utf-8")
    assert "## Looks" in readme and "at 0.025 after Holm" in readme
    assert "Declaration 2" in readme and "seeds: [0, 1, 2] -> [0, 1, 2, 3, 4]" in readme


def test_a_contrast_added_after_trials_ran_is_marked_declared_after_data(tmp_path: Path):
    folder = run(tmp_path, [0, 1], arms=ARMS_LR)
    run(tmp_path, [0, 1], toml=LATER, arms=ARMS_LR)
    declarations = load_study_dir(folder).declarations
    assert [d.number for d in declarations] == [1, 2] and "contrasts" in declarations[1].changed[0]
    write_report(folder, tmp_path / "report")
    readme = (tmp_path / "report" / "README.md").read_text(encoding="utf-8")
    assert "gist_lr − gist (declared after data)" in readme
    assert "gist − infonce (primary) |" in readme  # declared before the first trial: not marked


def test_a_primary_aggregate_added_after_trials_ran_is_marked_and_looked_at(tmp_path: Path):
    """primary_on gains "sts" after the first trial: a new declaration; the STS row of the primary is
    marked, the category row (declared before) is not, and the look records both estimates."""
    folder = run(tmp_path, [0, 1, 2])
    run(tmp_path, [0, 1, 2], toml=REPORT + 'primary_on = ["category", "sts"]\n')
    second = load_study_dir(folder).declarations[1]
    assert second.changed == ["primary_on: ['category'] -> ['category', 'sts']"]
    write_report(folder, tmp_path / "report")
    readme = (tmp_path / "report" / "README.md").read_text(encoding="utf-8")
    assert "| gist − infonce (primary) (declared after data) | mean over the STS tasks |" in readme
    assert "| gist − infonce (primary) | mean over categories |" in readme
    assert "gist − infonce as a primary contrast on the mean over the STS tasks (declaration 2)" in readme
    look = load_study_dir(folder).looks[0]
    assert [e.aggregate for e in look.estimates] == ["category", "sts"]
    assert "primary_on" not in (folder / "declarations" / "0001.json").read_text(encoding="utf-8")
    assert '"aggregate": "sts"' in (folder / "looks" / "0001.json").read_text(encoding="utf-8")


def test_an_arm_against_the_untrained_student_is_declared_and_reported(tmp_path: Path):
    folder = run(
        tmp_path, [0, 1, 2], toml='[report]\ncontrasts = [["gist", "infonce"], ["gist", "untrained"]]\n'
    )
    declaration = load_study_dir(folder).declarations[0]
    assert declaration.contrasts == [["gist", "infonce"], ["gist", "untrained"]]
    write_report(folder, tmp_path / "report")
    readme = (tmp_path / "report" / "README.md").read_text(encoding="utf-8")
    # the fake untrained student scores 0.3 on STSBenchmark and 0.2 on SICK-R: mean 25.00
    assert "| gist − untrained (primary) | mean over categories | 3 |" in readme
    assert "| 25.00 |" in readme and "untrained: the untrained student, scored once (no seeds)" in readme


def test_a_three_way_interaction_is_declared_looked_at_and_rendered(tmp_path: Path):
    """A 2×2×2 factorial of fake arms (strategy × lr × temperature), rendered end to end."""
    cells = [
        {"name": f"{s}_{lr}_{t}", "strategy": "gist" if s == "g" else "none", "lr": float(lr), "temperature": t}
        for t in (0.01, 0.05) for lr in ("1e-5", "2e-5") for s in ("g", "i")
    ]  # fmt: skip
    names = [c["name"] for c in cells]
    toml = f"[report]\ninteractions = [{names!r}]\nprimary_on = ['category', 'sts']\n".replace("'", '"')
    exp = experiment(
        "looks",
        study={"name": "looks", "pruner": "none"},  # fake trials report low early values: never prune
        ablation={"seeds": [0, 1, 2], "baseline": names[1], "arms": [*cells, ARMS[-1]]},
        report=tomllib.loads(toml)["report"],
    )
    manifest = StudyManifest(study="looks", experiment_toml=toml)
    run_study(exp, NoisyPipeline(), runs_dir=tmp_path, progress=False, manifest=manifest)
    folder = tmp_path / "looks"
    assert load_study_dir(folder).declarations[0].contrasts == [names]
    write_report(folder, tmp_path / "report")
    readme = (tmp_path / "report" / "README.md").read_text(encoding="utf-8")
    label = "((g_1e-5_0.01 − i_1e-5_0.01) − (g_2e-5_0.01 − i_2e-5_0.01)) − ((g_1e-5_0.05 − i_1e-5_0.05) − "
    assert f"| {label}" in readme and "mean over the STS tasks" in readme
    assert [e.contrast for e in load_study_dir(folder).looks[0].estimates] == [names, names]
    assert list((tmp_path / "report" / "figures").glob("forest___g_1e-5_0.01*"))


def test_declarations_are_never_overwritten(tmp_path: Path):
    folder = run(tmp_path, [0])
    path = folder / "declarations" / "0001.json"
    before = path.read_bytes()
    with pytest.raises(FileExistsError):
        write_new_record(path, read_record(path, Declaration).model_copy(update={"seeds": [9]}))
    assert path.read_bytes() == before
    assert not [p for p in path.parent.iterdir() if p.name.startswith(".")]  # no temporary file left


def test_re_rendering_a_report_from_its_inputs_is_not_a_look(tmp_path: Path):
    folder = run(tmp_path, [0, 1, 2])
    report_dir = tmp_path / "reports" / "looks"
    write_report(folder, report_dir)
    readme = (report_dir / "README.md").read_bytes()
    report_command(argparse.Namespace(source=str(report_dir), study=None, out=str(tmp_path / "reports")))
    assert files(report_dir / "inputs" / "looks") == ["0001.json"]
    assert files(folder / "looks") == ["0001.json"]
    assert (report_dir / "README.md").read_bytes() == readme


def test_report_command_on_a_run_folder_takes_a_look(tmp_path: Path):
    folder = run(tmp_path, [0, 1])
    report_command(argparse.Namespace(source=str(folder), study=None, out=str(tmp_path / "reports")))
    assert files(folder / "looks") == ["0001.json"]
    assert files(tmp_path / "reports" / "looks" / "inputs" / "declarations") == ["0001.json"]


def test_from_report_restores_declarations_and_looks(tmp_path: Path):
    folder = run(tmp_path / "old", [0, 1, 2])
    report_dir = tmp_path / "reports" / "looks"
    write_report(folder, report_dir)
    inputs = load_report_dir(report_dir).results
    assert len(inputs.declarations) == 1 and len(inputs.looks) == 1

    exp, manifest = study([0, 1, 2, 3])
    restore_study(exp, report_dir, tmp_path / "new" / "looks", None)
    new = tmp_path / "new" / "looks"
    assert files(new / "declarations") == ["0001.json"] and files(new / "looks") == ["0001.json"]
    run_study(exp, NoisyPipeline(), runs_dir=tmp_path / "new", progress=False, manifest=manifest)
    write_report(new, tmp_path / "new-report")
    restored = load_study_dir(new)
    assert [d.number for d in restored.declarations] == [1, 2]
    assert [look.number for look in restored.looks] == [1, 2]


def test_a_study_without_records_shows_no_looks(tmp_path: Path):
    folder = run(tmp_path, [0, 1])
    for path in (folder / "declarations").iterdir():
        path.unlink()
    report = build_report(load_study_dir(folder))
    assert report.looks is None
    assert "Verdicts at alpha = 0.05." in report.contrasts[0].notes[0]


UNRECORDED = '[unrecorded_looks]\ncount = 2\nevidence = "a 3-seed report (commit abc1234) and this one"\n'


def test_looks_taken_before_records_spend_alpha_and_are_named(tmp_path: Path):
    folder = run(tmp_path, [0, 1, 2])
    for path in (folder / "declarations").iterdir():
        path.unlink()
    results = load_study_dir(folder)
    report = build_report(results, report_toml=UNRECORDED)
    assert "Verdicts at alpha = 0.025" in report.contrasts[0].notes[0]
    assert report.looks is not None and report.looks.rows == []
    assert any("2 looks taken before looks were recorded" in n and "abc1234" in n for n in report.looks.notes)
    # With records too, the unrecorded looks add to the recorded ones: one record + 2 = alpha / 3.
    recorded = run(tmp_path / "recorded", [0, 1, 2])
    write_report(recorded, tmp_path / "report")
    report = build_report(load_study_dir(recorded), report_toml=UNRECORDED)
    assert "Verdicts at alpha = 0.0167" in report.contrasts[0].notes[0]
    assert len(report.looks.rows) == 1


def test_a_rebuilt_report_keeps_its_unrecorded_looks(tmp_path: Path):
    folder = run(tmp_path, [0, 1, 2])
    for path in (folder / "declarations").iterdir():
        path.unlink()
    report_dir = tmp_path / "reports" / "looks"
    write_report(folder, report_dir)
    (report_dir / "inputs" / "report.toml").write_text(UNRECORDED, encoding="utf-8")
    report_command(argparse.Namespace(source=str(report_dir), study=None, out=str(tmp_path / "reports")))
    readme = (report_dir / "README.md").read_text(encoding="utf-8")
    assert "at 0.025 after Holm" in readme and "2 looks taken before looks were recorded" in readme
    assert (report_dir / "inputs" / "report.toml").read_text(encoding="utf-8") == UNRECORDED


@pytest.mark.parametrize(
    ("text", "field"),
    [
        ('[unrecorded_looks]\ncount = 0\nevidence = "x"\n', "count"),
        ("[unrecorded_looks]\ncount = 1\n", "evidence"),
        ('[unrecorded_looks]\ncount = 1\nevidence = "x"\nwhen = 1\n', "when"),
        ("unrecorded_looks = 2\n", "table"),
        ('[unrecorded_looks]\ncount = "2"\nevidence = "x"\n', "count"),
    ],
)
def test_bad_unrecorded_looks_are_a_one_line_error(text: str, field: str):
    from harness.errors import UserError
    from harness.report.settings import unrecorded_looks

    with pytest.raises(UserError, match=f"\\[unrecorded_looks\\] {field}") as e:
        unrecorded_looks(text)
    assert "\n" not in str(e.value)


def test_a_bad_report_toml_is_named_by_its_path(tmp_path: Path):
    from harness.errors import UserError

    folder = run(tmp_path, [0, 1])
    report_dir = tmp_path / "reports" / "looks"
    write_report(folder, report_dir)
    bad = report_dir / "inputs" / "report.toml"
    bad.write_text("[unrecorded_looks]\ncount = 0\n", encoding="utf-8")
    with pytest.raises(UserError, match=f"{bad}: \\[unrecorded_looks\\] count") as e:
        load_report_dir(report_dir)
    assert "\n" not in str(e.value)
    bad.write_text("[unrecorded_looks\n", encoding="utf-8")
    with pytest.raises(UserError, match=f"{bad}: not valid TOML"):
        load_report_dir(report_dir)


def test_a_study_continued_from_its_report_keeps_the_unrecorded_looks(tmp_path: Path):
    """run --from-report ... --publish writes the report where its report.toml is; a run folder restored
    from the report keeps report.toml, so a report rendered elsewhere spends the same alpha."""
    folder = run(tmp_path / "old", [0, 1, 2])
    for path in (folder / "declarations").iterdir():
        path.unlink()
    report_dir = tmp_path / "reports" / "looks"
    write_report(folder, report_dir)
    (report_dir / "inputs" / "report.toml").write_text(UNRECORDED, encoding="utf-8")

    exp, manifest = study([0, 1, 2, 3])
    restore_study(exp, report_dir, tmp_path / "new" / "looks", None)
    new = tmp_path / "new" / "looks"
    assert (new / "report.toml").read_text(encoding="utf-8") == UNRECORDED
    run_study(exp, NoisyPipeline(), runs_dir=tmp_path / "new", progress=False, manifest=manifest)
    write_report(new, report_dir)  # as run --publish does: 2 unrecorded looks + 1 recorded
    readme = (report_dir / "README.md").read_text(encoding="utf-8")
    assert "Verdicts at alpha = 0.0167" in readme and "2 looks taken before looks were recorded" in readme
    report_command(argparse.Namespace(source=str(new), study=None, out=str(tmp_path / "elsewhere")))
    elsewhere = tmp_path / "elsewhere" / "looks"
    assert "Verdicts at alpha = 0.0167" in (elsewhere / "README.md").read_text(encoding="utf-8")  # same look
    assert (elsewhere / "inputs" / "report.toml").read_text(encoding="utf-8") == UNRECORDED


def test_an_unknown_alpha_spending_rule_is_a_one_line_error(tmp_path: Path):
    from test_report_config import errors_of

    errors = errors_of(tmp_path, 'alpha_spending = "pocock"')
    assert any("report.alpha_spending" in e and "split" in e for e in errors), errors
    assert all("\n" not in e for e in errors)
    with pytest.raises(ValueError, match="choose one of split"):
        spent_alpha(0.05, "pocock", 2)


def test_a_declaration_names_its_final_suite_and_an_older_one_without_it_is_no_change():
    from harness.study.artifacts import declaration_of

    exp, manifest = study([0])
    now = declaration_of(exp, manifest.experiment_toml, None)
    assert now.final_suite == "offline-sts" and "final_suite" in now.model_dump_json()
    older = now.model_copy(update={"final_suite": ""})  # written before the field existed
    assert declaration_of(exp, manifest.experiment_toml, older).changed == []
    other = now.model_copy(update={"final_suite": "offline-all@256"})
    assert declaration_of(exp, manifest.experiment_toml, other).changed == [
        "final_suite: offline-all@256 -> offline-sts"
    ]
    assert "final_suite" not in older.model_dump_json()  # an older record reads and writes as before


def test_rerun_changed_without_from_report_is_a_one_line_error(tmp_path: Path, capsys):
    from harness.cli import main

    assert main(["run", str(tmp_path / "exp.toml"), "--rerun-changed"]) == 2
    assert capsys.readouterr().err == (
        "error: --rerun-changed: only with --from-report REPORT_DIR (it says which kept trials run again)\n"
    )
