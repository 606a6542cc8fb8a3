"""Rendering tables and figures from a folder of records, and reading a killed probe."""

import json
import signal
import subprocess
import sys
from pathlib import Path

from test_tables import RECORDS

from llmdissect.report import registry
from llmdissect.training.probe import died

REPORT = Path(__file__).parent.parent / "workflow" / "report"


def test_render_cli_writes_every_table_and_figure_from_a_records_folder(tmp_path):
    folder = tmp_path / "records" / "pretrain"
    folder.mkdir(parents=True)
    for index, record in enumerate(RECORDS):
        (folder / f"r{index}.json").write_text(json.dumps(record))
    out = tmp_path / "out"
    subprocess.run(
        [sys.executable, "-m", "llmdissect.render", str(tmp_path / "records"), "--out", str(out)],
        check=True,
    )
    table = (out / "tables" / "table2_frameworks.md").read_text()
    assert "| cpu | tiny | torch | baseline | 1 | 1,234 |" in table
    for name in ["table1_hardware", "table3_methods_b1", "table4_methods_max", "fig4_scaling"]:
        assert {p.suffix for p in out.glob(f"tables/{name}.*")} == {".md", ".csv", ".tex"}
    assert (out / "figures" / "pretrain_throughput.png").stat().st_size > 0


def test_every_registered_table_and_figure_has_a_unique_name_a_caption_and_known_inputs():
    specs = [*registry.TABLES, *registry.FIGURES]
    assert len({spec.name for spec in specs}) == len(specs)
    assert all((REPORT / spec.caption).is_file() for spec in specs)
    assert all(set(spec.inputs) <= set(registry.TIDY_FRAMES) for spec in specs)
    stages = {"pretrain", "finetune", "serve", "profile", "ladder"}
    assert all(figure.stages and set(figure.stages) <= stages for figure in registry.FIGURES)


def test_figures_of_a_stage_the_config_does_not_run_are_not_planned():
    planned = [figure.name for figure in registry.planned_figures({"pretrain": {}, "serve": {}})]
    assert "pretrain_throughput" in planned and "fig6_serving_throughput" in planned
    assert "finetune_throughput" not in planned and "fig5_idle_share" not in planned


def test_render_cli_names_a_folder_without_records(tmp_path):
    result = subprocess.run(
        [sys.executable, "-m", "llmdissect.render", str(tmp_path), "--out", str(tmp_path / "o")],
        capture_output=True,
        text=True,
    )
    assert result.returncode != 0 and f"no result records under {tmp_path}" in result.stderr


def test_a_worker_killed_by_the_kernel_is_an_oom_under_torchrun_too(tmp_path):
    log = tmp_path / "probe.log"
    log.write_text("exitcode : -9 (pid: 1034)\ntraceback : Signal 9 (SIGKILL) received by PID 1034")
    assert died(1, log)[0] == "oom"
    log.write_text("")
    assert died(-signal.SIGKILL, log)[0] == "oom"
    log.write_text("Segmentation fault")
    status, reason = died(-signal.SIGSEGV, log)
    assert status == "error" and "Segmentation fault" in reason
