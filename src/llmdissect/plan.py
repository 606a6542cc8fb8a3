"""What a config will measure and how long it should take, before any device time is spent.

    python -m llmdissect.plan [--configfile FILE ...] [--records DIR ...]

Reads the config as the Snakefile does (config/config.yaml, then each --configfile over it),
lists its cells as reused (an import folder holds them, aggregate.reuse_imported), done (a
record under results/records; Snakemake still re-measures it if its settings changed since) or
to measure, and predicts each cell's time from records already
measured on its platform:
- the same cell measured before (an error record re-runs, say): its duration;
- records of the same stage, model, framework and batch (1 or largest) that ran (status ok):
  their median;
- records of the same stage and batch on another model: scaled by the training (or decode)
  FLOPs per token of the two models;
- none: no prediction, and the total says how many cells it leaves out.
GPU time is a cell's time multiplied by the GPUs it holds.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from dataclasses import dataclass, replace
from pathlib import Path

import yaml

from .cells import config_cells
from .config import ConfigError, check_config, drop_disabled_stages, load_schema, run_platforms
from .models import param_count, shape_from_config, training_flops_per_token
from .placement import cell_gpus
from .report.tidy import find_records
from .resume import reusable_records

ROOT = Path(__file__).resolve().parents[2]  # the project: config/, workflow/


@dataclass
class Planned:
    key: str
    stage: str
    status: str  # reused | done | measure
    gpus: int
    seconds: float | None = None
    basis: str = ""


def merged(base: dict, over: dict) -> dict:
    """Snakemake's merge of config files: mappings merge key by key, anything else replaces."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, dict) and isinstance(out.get(key), dict):
            out[key] = merged(out[key], value)
        else:
            out[key] = value
    return out


def load_config(files: list[Path]) -> tuple[dict, list[str]]:
    """The checked config and what the config check refuses here (an engine's venv that only
    the GPU machine has, say): a plan is still worth printing, the problems beside it."""
    config = yaml.safe_load((ROOT / "config/config.yaml").read_text())
    for path in files:
        config = merged(config, yaml.safe_load(Path(path).read_text()) or {})
    drop_disabled_stages(config)
    try:
        check_config(config, load_schema(ROOT / "workflow/schemas/config.schema.yaml"))
    except ConfigError as error:
        return config, str(error).splitlines()[1:]
    return config, []


def model_flops(config: dict, model: str, stage: str) -> float:
    """FLOPs per token of the cell's kind of work on this model: a training step's, or a decode
    step's (2 per parameter) for serving."""
    shape = shape_from_config(model, config.get("model_shapes"))
    if stage == "serve":
        return 2.0 * param_count(shape)
    return training_flops_per_token(shape, config["data"]["seq_len"])


def batch_kind(cell: dict) -> str:
    return "max" if str(cell.get("batch")) == "max" else "fixed"


def history(folders: list[str]) -> list[dict]:
    """Every record in the folders (the last folder's wins for a key)."""
    records = {}
    for path in find_records([Path(f) for f in folders if Path(f).is_dir()]):
        try:
            record = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if isinstance(record, dict) and record.get("duration_s") is not None:
            records[record.get("key")] = record
    return list(records.values())


TRAINING_KINDS = ("pretrain", "finetune", "profile", "ladder")


def stage_family(stage: str) -> str:
    return "train" if stage in TRAINING_KINDS else stage


def predict(cell, config: dict, past: list[dict]) -> tuple[float | None, str]:
    """Seconds the cell should take, and what that rests on (module docstring)."""
    info = cell.as_dict()
    mine = [r for r in past if r["cell"].get("platform") == info["platform"]]
    for record in mine:
        if record["key"] == cell.key:
            return record["duration_s"], "this cell's earlier record"
    if batch_kind(info) == "max":
        twin = replace(cell, batch="1").key
        if any(r["key"] == twin and r.get("status") == "oom" for r in mine):
            return 0.0, "batch 1 ran out of memory: recorded without a probe"

    def same(record, *fields) -> bool:
        other = record["cell"]
        return all(other.get(f) == info[f] for f in fields)

    def alike(record) -> bool:  # the same kind of work: training or serving, batch 1 or largest
        other = record["cell"]
        return stage_family(other.get("stage")) == stage_family(info["stage"]) and (
            batch_kind(other) == batch_kind(info)
        )

    tiers = [
        (("stage", "model", "framework", "method"), "same stage and method"),
        (("stage", "model", "framework"), "same stage and framework"),
        (("model", "framework", "method"), "same framework and method, another stage"),
        (("stage", "model"), "same stage and model"),
        (("model", "framework"), "same model and framework, another stage"),
    ]
    # only cells that ran their course: an out-of-memory record stops early, or takes no time at
    # all when its batch-1 twin settled it
    ran = [r for r in mine if r.get("status") == "ok"]
    for fields, label in tiers:
        close = [r["duration_s"] for r in ran if alike(r) and same(r, *fields)]
        if close:
            return statistics.median(close), f"median of {len(close)} records: {label}"
    others = [r for r in ran if alike(r) and same(r, "stage")] or [r for r in ran if alike(r)]
    if others:
        target = model_flops(config, info["model"], info["stage"])
        scaled = [
            r["duration_s"] * target / model_flops(config, r["cell"]["model"], info["stage"])
            for r in others
        ]
        return statistics.median(scaled), f"{len(others)} records of other models, FLOPs-scaled"
    return None, "no record on this platform to go by"


def plan(config: dict, extra_records: list[str]) -> list[Planned]:
    imports = config["aggregate"]["import_dirs"]
    cells = config_cells(config, run_platforms(config))
    reused = (
        reusable_records(imports, [c.key for c in cells])
        if config["aggregate"]["reuse_imported"]
        else {}
    )
    past = history([*imports, *extra_records, "results/records"])
    planned = []
    for cell in cells:
        info = cell.as_dict()
        gpus = cell_gpus(config["platforms"][info["platform"]], int(info["world_size"]))
        item = Planned(cell.key, info["stage"], "measure", gpus)
        if cell.key in reused:
            item.status, item.basis = "reused", reused[cell.key]
        elif Path(f"results/records/{cell.key}.json").is_file():
            item.status, item.basis = "done", "results/records"
        else:
            item.seconds, item.basis = predict(cell, config, past)
        planned.append(item)
    return planned


def duration(seconds: float) -> str:
    minutes = seconds / 60
    return f"{seconds:.0f} s" if minutes < 1 else f"{minutes:.1f} min"


def report(planned: list[Planned], problems: list[str]) -> str:
    gpu = any(p.gpus for p in planned)
    unit = "GPU time" if gpu else "time"
    lines = [
        f"{'stage':<10}{'cells':>7}{'reused':>8}{'done':>6}{'to measure':>12}  predicted {unit}"
    ]
    stages = list(dict.fromkeys(p.stage for p in planned))
    for stage in stages:
        rows = [p for p in planned if p.stage == stage]
        lines.append(stage_line(stage, rows))
    lines.append(stage_line("total", planned))
    lines.append("")
    width = max([len(p.key) for p in planned] + [20]) + 2
    lines.append(f"{'cell to measure':<{width}}{'predicted':>11}  basis")
    for p in planned:
        if p.status == "measure":
            when = "?" if p.seconds is None else duration(p.seconds * max(1, p.gpus))
            lines.append(f"{p.key:<{width}}{when:>11}  {p.basis}")
    if problems:
        lines += ["", "the config check refuses this config on this machine:", *problems]
    return "\n".join(lines)


def stage_line(name: str, rows: list[Planned]) -> str:
    measure = [p for p in rows if p.status == "measure"]
    known = [p.seconds * max(1, p.gpus) for p in measure if p.seconds is not None]
    unknown = len(measure) - len(known)
    predicted = duration(sum(known)) if known or not measure else "?"
    if unknown and known:
        predicted += f" + {unknown} cells with no basis"
    counts = [len(rows), *(sum(p.status == s for p in rows) for s in ("reused", "done"))]
    return f"{name:<10}{counts[0]:>7}{counts[1]:>8}{counts[2]:>6}{len(measure):>12}  {predicted}"


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m llmdissect.plan", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--configfile", type=Path, action="append", default=[])
    parser.add_argument(
        "--records", action="append", default=[], help="more folders of records to predict from"
    )
    args = parser.parse_args(argv)
    missing = [str(p) for p in [*args.configfile, *map(Path, args.records)] if not p.exists()]
    if missing:
        parser.error(f"not found: {', '.join(missing)}")
    config, problems = load_config(args.configfile)
    print(report(plan(config, args.records), problems))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
