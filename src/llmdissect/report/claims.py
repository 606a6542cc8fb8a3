"""The study's claims (claims.yaml) judged against our records: for each claim and each
platform x model that measured what it needs, the paper's figure, ours and a verdict; where
nothing measured it, why not. No number here is typed in: every "ours" comes from the cells."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, fields
from pathlib import Path

import pandas as pd
import yaml

from .format import STATUS_LABELS
from .profiling import flash_twins, speedup_interval
from .training import memory_metric

CLAIMS_FILE = Path(__file__).with_name("claims.yaml")
COLUMNS = ["claim", "item", "statement", "paper", "platform", "model", "ours", "verdict", "why"]
HOLDS, NOISE, CONTRADICTS = "holds", "within noise", "contradicts"
NOT_MEASURED, NOT_COMPARABLE = "not measurable here", "not comparable"
DATACENTER_GPUS = ("H200", "H100", "A100", "A800", "B200")
CONSUMER_GPUS = ("RTX",)


@dataclass(frozen=True)
class Thresholds:
    """The config's `claims` section: how far apart two numbers must be to differ."""

    tie: float = 0.05  # two throughputs or memories within 5% of each other are a tie
    agree_points: float = 10.0  # a percentage of the study's is matched within this many points
    large_cost: float = 0.5  # a "large cost": below this share of the throughput compared with
    lead: float = 0.15  # an engine "leads clearly" when this much ahead of the next one
    near_linear: float = 0.95  # "near-linear" scaling efficiency

    @classmethod
    def from_config(cls, section: dict | None) -> Thresholds:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in (section or {}).items() if k in names})


@dataclass
class Finding:
    platform: str
    model: str
    ours: str
    verdict: str
    why: str = ""


def load_claims(path: Path = CLAIMS_FILE) -> list[dict]:
    return yaml.safe_load(path.read_text())


def judge_claims(cells: pd.DataFrame, thresholds: Thresholds | None = None) -> pd.DataFrame:
    """One row per claim and platform x model measured (or one saying why none was)."""
    thresholds = thresholds or Thresholds()
    ok = cells[cells["status"] == "ok"] if len(cells) else cells
    rows = []
    for claim in load_claims():
        check = CHECKS[claim["check"]]
        findings = list(check(ok, thresholds, claim.get("values") or {})) if len(ok) else []
        if not findings:
            findings = list(
                failed_comparisons(cells, claim.get("cells") or [], claim.get("fits_where_oom"))
            )
        if not findings:
            findings = [Finding("-", "-", "-", NOT_MEASURED, claim["needs"])]
        for found in findings:
            found.why = stand_in_note(found, claim.get("model"))
            if claim.get("inferred"):
                found.why = joined(found.why, INFERRED)
            rows.append(
                {
                    "claim": claim["id"],
                    "item": claim["item"],
                    "statement": claim["claim"],
                    "paper": claim["paper"],
                    **found.__dict__,
                }
            )
    return pd.DataFrame(rows, columns=COLUMNS)


INFERRED = "inferred: the write-up gives this table as an image, with no sentence of the claim"


def joined(*notes: str) -> str:
    return "; ".join(note for note in notes if note)


def stand_in_note(found: Finding, study_model: str | None) -> str:
    """The finding's reason, saying so when its model is not the one the study measured."""
    if not study_model or found.model in ("-", study_model):
        return found.why
    return joined(found.why, f"{found.model} stands in for the study's {study_model}")


def failed_comparisons(
    cells: pd.DataFrame, needed: list[str], fits_spec: str | None = None
) -> Iterator[Finding]:
    """Per platform x model where every cell a claim compares was measured and one of them
    failed (an OOM, say): a finding that names it, since the comparison cannot be made there."""
    if not len(cells) or not needed:
        return
    specs = [tuple(spec.split()) for spec in needed]  # (stage, framework, method, batch)
    fits = tuple(fits_spec.split()) if fits_spec else None
    found = {}
    for spec in specs:
        stage, framework, method, batch = spec
        rows = cells[
            (cells["stage"] == stage)
            & (cells["framework"] == framework)
            & (cells["method"] == method)
            & (cells["batch"].astype(str) == batch)
            & (cells["world_size"].astype(int) == 1)
        ]
        for _, row in rows.iterrows():
            found.setdefault((row["platform"], row["model"]), {})[spec] = row
    for (platform, model), rows in sorted(found.items()):
        failed = [spec for spec in specs if spec in rows and rows[spec]["status"] != "ok"]
        if len(rows) < len(specs) or not failed:
            continue
        ours = "; ".join(
            f"{spec[1]} {spec[2]} b={spec[3]}: {shown_status(rows[spec])}" for spec in specs
        )
        first = rows[failed[0]]
        happened = "ran out of memory" if first["status"] == "oom" else "did not run"
        what = " ".join(failed[0][1:3])
        lean = rows.get(fits) if fits else None
        if (
            lean is not None
            and lean["status"] == "ok"
            and all(rows[spec]["status"] == "oom" for spec in failed)
        ):
            # a memory claim: the cell that should need less fitted where the other did not
            memory = value(lean, "memory")
            ours += f" (it used {number(memory)} GB)" if memory is not None else ""
            yield Finding(platform, model, ours, HOLDS, f"{what} ran out of memory here")
            continue
        yield Finding(
            platform, model, ours, NOT_COMPARABLE, f"{what} {happened} here: {short(first)}"
        )


def shown_status(row: pd.Series) -> str:
    return "ran" if row["status"] == "ok" else STATUS_LABELS[row["status"]]


def short(row: pd.Series) -> str:
    """A failure's reason up to its second sentence (CUDA's OOM message runs on for lines)."""
    sentences = str(row.get("reason") or "").split(". ")
    return ". ".join(sentences[:2])[:160]


# ---- reading the cells ---------------------------------------------------------------------


def cells_of(ok: pd.DataFrame, stage: str, framework: str | None, method: str, batch: str):
    """The one-process cells of a stage x framework x method x batch, by (platform, model)."""
    chosen = ok[(ok["stage"] == stage) & (ok["method"] == method) & (ok["batch"] == batch)]
    if framework:
        chosen = chosen[chosen["framework"] == framework]
    chosen = chosen[chosen["world_size"] == 1]
    return {(row["platform"], row["model"]): row for _, row in chosen.iterrows()}


def pairs(ok, stage, first: tuple, second: tuple) -> Iterator[tuple[tuple, pd.Series, pd.Series]]:
    """(platform, model), row, row for every platform x model with both (framework, method,
    batch) cells measured."""
    left, right = cells_of(ok, stage, *first), cells_of(ok, stage, *second)
    for key in sorted(left.keys() & right.keys()):  # a set: sorted, so pages do not reorder
        yield key, left[key], right[key]


def value(row: pd.Series, metric: str) -> float | None:
    if metric == "memory":
        return memory_metric(row)[0]
    found = row.get(metric)
    return float(found) if found is not None and pd.notna(found) else None


def interval(row: pd.Series, metric: str) -> tuple[float, float] | None:
    low, high = row.get(f"{metric}_ci_low"), row.get(f"{metric}_ci_high")
    if low is None or high is None or pd.isna(low) or pd.isna(high):
        return None
    return float(low), float(high)


def order(a: pd.Series, b: pd.Series, metric: str, t: Thresholds) -> int | None:
    """+1: a above b, -1: below, 0: a tie (intervals that overlap where repeats give them,
    else within the tie threshold); None: a value is missing."""
    x, y = value(a, metric), value(b, metric)
    if x is None or y is None or y == 0:
        return None
    spans = interval(a, metric), interval(b, metric)
    if all(spans):
        (a_low, a_high), (b_low, b_high) = spans
        if a_low <= b_high and b_low <= a_high:
            return 0
    elif abs(x / y - 1) <= t.tie:
        return 0
    return 1 if x > y else -1


def directional(sign: int | None, wanted: int) -> str:
    return {wanted: HOLDS, 0: NOISE, -wanted: CONTRADICTS}[sign]


def number(x: float) -> str:
    return f"{x:,.0f}" if abs(x) >= 100 else f"{x:.3g}"


def versus(a: pd.Series, b: pd.Series, metric: str, names: tuple[str, str], unit: str) -> str:
    x, y = value(a, metric), value(b, metric)
    return f"{names[0]} {number(x)} vs {names[1]} {number(y)} {unit} ({x / y - 1:+.0%})"


def gpu_kind(row: pd.Series) -> str:
    gpu = str(row.get("gpu") or "cpu")
    if gpu in ("cpu", "-"):
        return "cpu"
    if any(name in gpu for name in DATACENTER_GPUS):
        return "datacenter"
    return "consumer" if any(name in gpu for name in CONSUMER_GPUS) else "other"


def cpu_caveat(row: pd.Series) -> str:
    return "measured on CPU cores with a tiny model: the study's claim is about GPUs"


# ---- the checks ------------------------------------------------------------------------------


def framework_comparison(first, second, metric, wanted, names, unit):
    def check(ok: pd.DataFrame, t: Thresholds, values: dict):
        for (platform, model), a, b in pairs(ok, "pretrain", first, second):
            sign = order(a, b, metric, t)
            if sign is None:
                continue
            why = cpu_caveat(a) if gpu_kind(a) == "cpu" else ""
            yield Finding(
                platform, model, versus(a, b, metric, names, unit), directional(sign, wanted), why
            )

    return check


deepspeed_faster_at_max = framework_comparison(
    ("deepspeed", "baseline", "max"),
    ("megatron", "baseline", "max"),
    "tokens_per_s",
    1,
    ("DeepSpeed", "Megatron"),
    "tokens/s",
)
megatron_faster_at_b1 = framework_comparison(
    ("megatron", "baseline", "1"),
    ("deepspeed", "baseline", "1"),
    "tokens_per_s",
    1,
    ("Megatron", "DeepSpeed"),
    "tokens/s",
)
megatron_less_memory = framework_comparison(
    ("megatron", "baseline", "1"),
    ("deepspeed", "baseline", "1"),
    "memory",
    -1,
    ("Megatron", "DeepSpeed"),
    "GB",
)


def scaling_efficiency(ok: pd.DataFrame, t: Thresholds, values: dict):
    from .training import scaling_table

    table = scaling_table(ok, "pretrain")
    if table.empty:
        return
    widest = table.sort_values("GPUs").groupby(["platform", "model", "framework", "method"]).last()
    for (platform, model, framework, method), row in widest.iterrows():
        efficiency = row["scaling efficiency"]
        ours = f"{framework} {method}, 1 -> {row['GPUs']}: {efficiency:.1%}"
        cell = ok[(ok["platform"] == platform) & (ok["model"] == model)].iloc[0]
        kind = gpu_kind(cell)
        if kind == "cpu":
            yield Finding(
                platform, model, ours, NOT_COMPARABLE, "processes on CPU cores over gloo, not GPUs"
            )
            continue
        target = {"datacenter": t.near_linear, "consumer": None}.get(kind)
        gpus = "" if row["GPUs"] == 8 else f"; the study went to 8 GPUs, this to {row['GPUs']}"
        if target is None:
            yield Finding(
                platform,
                model,
                ours,
                NOT_COMPARABLE,
                f"the study gives 90.8% (RTX4090) and 85.9% (RTX3090){gpus}",
            )
            continue
        verdict = (
            HOLDS if efficiency >= target else f"differs by {100 * (efficiency - 1):+.1f} points"
        )
        yield Finding(platform, model, ours, verdict, f"near-linear: at least {target:.0%}{gpus}")


def nvlink_gain(ok: pd.DataFrame, t: Thresholds, values: dict):
    return iter(())  # needs one multi-GPU server measured with its NVLink on and off


def same_batch_memory(method: str, reference: str):
    def check(ok: pd.DataFrame, t: Thresholds, values: dict):
        for (platform, model), a, b in pairs(
            ok, "pretrain", ("deepspeed", method, "1"), ("deepspeed", reference, "1")
        ):
            sign = order(a, b, "memory", t)
            if sign is None:
                continue
            why = cpu_caveat(a) if gpu_kind(a) == "cpu" else ""
            verdict = directional(sign, -1)
            if method.startswith("zero") and int(a.get("world_size", 1)) == 1:
                # what ZeRO changes on one process (buffers, partitioning code paths) is not
                # the sharding the claim is about
                alone = "one process: ZeRO has no rank to shard over, so a change is not sharding"
                why = joined(alone, why)
                verdict = NOT_COMPARABLE
            yield Finding(
                platform, model, versus(a, b, "memory", (method, reference), "GB"), verdict, why
            )

    return check


def zero_cuts_memory(ok: pd.DataFrame, t: Thresholds, values: dict):
    for method in ("zero2", "zero3"):
        yield from same_batch_memory(method, "baseline")(ok, t, values)


quant_lowers_memory = same_batch_memory("quant4", "baseline")


def two_sided(ok, t, first, second, names, speed_test):
    """Memory lower, and throughput as `speed_test` wants it; holds when both do."""
    for (platform, model), a, b in pairs(ok, "pretrain", first, second):
        memory = order(a, b, "memory", t)
        x, y = value(a, "tokens_per_s"), value(b, "tokens_per_s")
        if memory is None or not x or not y:
            continue
        verdicts = [directional(memory, -1), speed_test(x / y, a, b)]
        verdict = (
            HOLDS if verdicts == [HOLDS, HOLDS] else "memory {}, throughput {}".format(*verdicts)
        )
        ours = f"memory {versus(a, b, 'memory', names, 'GB')}; throughput ratio {x / y:.2f}"
        yield Finding(platform, model, ours, verdict, cpu_caveat(a) if gpu_kind(a) == "cpu" else "")


def offload_tradeoff(ok: pd.DataFrame, t: Thresholds, values: dict):
    def large_cost(ratio, a, b):
        return HOLDS if ratio < t.large_cost else f"throughput cost only {1 - ratio:.0%}"

    names = ("zero2+offload", "zero2")
    first, second = ("deepspeed", "zero2+offload", "1"), ("deepspeed", "zero2", "1")
    yield from two_sided(ok, t, first, second, names, large_cost)


def recompute_tradeoff(ok: pd.DataFrame, t: Thresholds, values: dict):
    def slower(ratio, a, b):
        return directional(order(a, b, "tokens_per_s", t), -1)

    first, second = ("deepspeed", "recompute", "1"), ("deepspeed", "baseline", "1")
    found = list(two_sided(ok, t, first, second, ("recompute", "baseline"), slower))
    largest = dict(
        (
            (key, (a, b))
            for key, a, b in pairs(
                ok, "pretrain", ("deepspeed", "recompute", "max"), ("deepspeed", "baseline", "max")
            )
        )
    )
    for finding in found:
        key = (finding.platform, finding.model)
        if key in largest:
            a, b = largest[key]
            bigger, other = int(a["batch_size"]), int(b["batch_size"])
            finding.ours += f"; largest batch {bigger} vs {other}"
            if bigger <= other:
                finding.verdict = f"{finding.verdict} / largest batch not larger"
        yield finding


def larger_batch_faster(ok: pd.DataFrame, t: Thresholds, values: dict):
    stages = ok[ok["stage"].isin(["pretrain", "finetune"]) & (ok["world_size"] == 1)]
    keys = ["platform", "model"]
    for (platform, model), group in stages.groupby(keys):
        faster, total, slower_ones = 0, 0, []
        for (_, framework, method), same in group.groupby(["stage", "framework", "method"]):
            small, large = same[same["batch"] == "1"], same[same["batch"] == "max"]
            if small.empty or large.empty or int(large.iloc[0]["batch_size"]) <= 1:
                continue
            total += 1
            sign = order(large.iloc[0], small.iloc[0], "tokens_per_s", t)
            faster += sign == 1
            if sign != 1:
                slower_ones.append(f"{framework} {method}")
        if not total:
            continue
        verdict = HOLDS if faster == total else (CONTRADICTS if faster == 0 else "mostly")
        why = f"not faster: {', '.join(slower_ones)}" if slower_ones else ""
        row = group.iloc[0]
        if gpu_kind(row) == "cpu":
            why = "; ".join(part for part in (why, cpu_caveat(row)) if part)
        yield Finding(
            platform, model, f"{faster} of {total} configurations faster at max", verdict, why
        )


def flash_pairs(ok: pd.DataFrame):
    for plain, flash in flash_twins(ok[ok["stage"] == "profile"]):
        gains, spans = {}, {}
        for phase in ("forward", "backward"):
            metric = f"module_attention_{phase}_ms"
            before, after = value(plain, metric), value(flash, metric)
            gains[phase] = 1 - after / before if before and after is not None else None
            spans[phase] = speedup_interval(plain, flash, metric)
        if None not in gains.values():
            yield flash, gains, spans


def flash_speedups(ok: pd.DataFrame, t: Thresholds, values: dict):
    paper = {"forward": values["forward"], "backward": values["backward"]}

    def verdict_for(gains: dict) -> str:
        gaps = {phase: 100 * (gains[phase] - paper[phase]) for phase in paper}
        if all(abs(gap) <= t.agree_points for gap in gaps.values()):
            return HOLDS
        return "differs by " + ", ".join(f"{gap:+.1f} points ({p})" for p, gap in gaps.items())

    for flash, gains, _ in flash_pairs(ok):
        ours = (
            f"forward {gains['forward']:.1%}, backward {gains['backward']:.1%} faster "
            f"(b={flash['batch']})"
        )
        verdict = verdict_for(gains)
        # "faster by X%" is read as time saved; the study does not say, so the other reading
        # (a speed-up, plain / flash - 1) is printed beside it with its own verdict
        speedups = {phase: 1 / (1 - gain) - 1 for phase, gain in gains.items()}
        other = verdict_for(speedups)
        why = (
            "read as time saved (1 - flash/plain); as a speed-up (plain/flash - 1): "
            f"forward {speedups['forward']:.1%}, backward {speedups['backward']:.1%}, "
            + ("the same verdict" if other == verdict else f"verdict: {other}")
        )
        if gpu_kind(flash) == "cpu":
            why = joined(cpu_caveat(flash), why)
        yield Finding(flash["platform"], flash["model"], ours, verdict, why)


def flash_forward_gains_more(ok: pd.DataFrame, t: Thresholds, values: dict):
    for flash, gains, spans in flash_pairs(ok):
        difference = gains["forward"] - gains["backward"]
        verdict = HOLDS if difference > 0 else CONTRADICTS
        forward, backward = spans["forward"], spans["backward"]
        if forward and backward:  # repeats: the two gains' intervals decide
            overlap = forward[0] <= backward[1] and backward[0] <= forward[1]
        else:
            overlap = abs(difference) * 100 <= t.agree_points / 2
        if overlap:
            verdict = NOISE
        why = cpu_caveat(flash) if gpu_kind(flash) == "cpu" else ""
        ours = f"forward {gains['forward']:.1%} vs backward {gains['backward']:.1%}"
        yield Finding(flash["platform"], flash["model"], ours, verdict, why)


# Above this, a profiled step's idle share says as much about the profiler as about the step.
PROFILER_OVERHEAD_NOTED = 0.10


def idle_small_batch(ok: pd.DataFrame, t: Thresholds, values: dict):
    profiled = ok[(ok["stage"] == "profile") & ok.get("step_idle_share", pd.Series()).notna()]
    for _, row in profiled.iterrows():
        if row["batch"] == "max" or int(row["batch"]) > 2 or row["method"] != "baseline":
            continue
        idle = float(row["step_idle_share"])
        ours = f"{row['framework']} {row['method']} b={row['batch']}: idle {idle:.1%}"
        if gpu_kind(row) == "cpu":
            yield Finding(
                row["platform"],
                row["model"],
                ours,
                NOT_COMPARABLE,
                "on a CPU, busy time is the profiler's CPU operators, not GPU kernels",
            )
            continue
        low, high = values["low"], values["high"]
        points = t.agree_points / 100
        inside = low - points <= idle <= high + points
        gap = 0 if low <= idle <= high else 100 * (idle - (low if idle < low else high))
        verdict = HOLDS if inside else f"differs by {gap:+.1f} points"
        why = "the study: 5-10%"
        overhead = row.get("profiler_overhead")
        if overhead is not None and pd.notna(overhead) and overhead > PROFILER_OVERHEAD_NOTED:
            why += (
                f"; the profiler made this step {overhead:.0%} slower than unprofiled ones, "
                "so part of the idle share is its own"
            )
        yield Finding(row["platform"], row["model"], ours, verdict, why)


def idle_falls_with_batch(ok: pd.DataFrame, t: Thresholds, values: dict):
    profiled = ok[ok["stage"] == "profile"]
    if "step_idle_share" not in profiled:
        return
    profiled = profiled[profiled["step_idle_share"].notna()]
    for (platform, model, framework, method), group in profiled.groupby(
        ["platform", "model", "framework", "method"]
    ):
        if len(group) < 2:
            continue
        group = group.assign(size=group["batch_size"].astype(float)).sort_values("size")
        small, large = group.iloc[0], group.iloc[-1]
        before, after = float(small["step_idle_share"]), float(large["step_idle_share"])
        ours = (
            f"{framework} {method}: idle {before:.1%} at b={int(small['size'])}, "
            f"{after:.1%} at b={int(large['size'])}"
        )
        verdict = HOLDS if after < before else CONTRADICTS
        yield Finding(
            platform, model, ours, verdict, cpu_caveat(small) if gpu_kind(small) == "cpu" else ""
        )


def size_ratio(ok: pd.DataFrame, t: Thresholds, values: dict):
    from .training import size_ratio_table

    table = size_ratio_table(ok, "finetune")
    for _, row in table.iterrows():
        if row["GPUs"] != 1 or row["batch"] != "1":
            continue
        slower = 1 - row["llama2-13b / llama2-7b"]
        gap = 100 * (slower - values["slower"])
        verdict = HOLDS if abs(gap) <= t.agree_points else f"differs by {gap:+.1f} points"
        ours = f"{row['framework']} {row['method']}: 13B {slower:.0%} below 7B"
        yield Finding(row["platform"], "13B vs 7B", ours, verdict, "the study: about 30%")


def qlora_tradeoff(ok: pd.DataFrame, t: Thresholds, values: dict):
    for (platform, model), qlora, lora in pairs(
        ok, "finetune", ("torch", "qlora", "1"), ("torch", "lora", "1")
    ):
        memory, speed = order(qlora, lora, "memory", t), order(qlora, lora, "tokens_per_s", t)
        if memory is None or speed is None:
            continue
        verdicts = [directional(memory, -1), directional(speed, -1)]
        verdict = (
            HOLDS if verdicts == [HOLDS, HOLDS] else f"memory {verdicts[0]} / speed {verdicts[1]}"
        )
        ours = (
            f"memory {versus(qlora, lora, 'memory', ('QLoRA', 'LoRA'), 'GB')}; "
            f"throughput {versus(qlora, lora, 'tokens_per_s', ('QLoRA', 'LoRA'), 'tokens/s')}"
        )
        why = cpu_caveat(qlora) if gpu_kind(qlora) == "cpu" else ""
        yield Finding(platform, model, ours, verdict, why)


def larger_model_follows(ok: pd.DataFrame, t: Thresholds, values: dict):
    """13B against 7B: QLoRA's memory and throughput relative to LoRA's go the same way."""
    found = {}
    for (platform, model), qlora, lora in pairs(
        ok, "finetune", ("torch", "qlora", "1"), ("torch", "lora", "1")
    ):
        memory, speed = order(qlora, lora, "memory", t), order(qlora, lora, "tokens_per_s", t)
        if memory is not None and speed is not None:
            found.setdefault(platform, {})[model] = (memory, speed, qlora, lora)
    for platform, by_model in sorted(found.items()):
        if not {"llama2-7b", "llama2-13b"} <= by_model.keys():
            continue
        small, large = by_model["llama2-7b"], by_model["llama2-13b"]
        verdict = HOLDS if small[:2] == large[:2] else CONTRADICTS

        def trend(side):
            _, _, qlora, lora = side
            memory = value(qlora, "memory") / value(lora, "memory") - 1
            speed = value(qlora, "tokens_per_s") / value(lora, "tokens_per_s") - 1
            return f"memory {memory:+.0%}, throughput {speed:+.0%}"

        ours = f"QLoRA against LoRA: 7B {trend(small)}; 13B {trend(large)}"
        why = cpu_caveat(small[2]) if gpu_kind(small[2]) == "cpu" else ""
        yield Finding(platform, "13B vs 7B", ours, verdict, why)


def served_workloads(ok: pd.DataFrame) -> pd.DataFrame:
    """Serving cells of whole workloads (a sweep's levels apart)."""
    served = ok[ok["stage"] == "serve"]
    return served[served["sweep_level"].isna()] if "sweep_level" in served else served


def serving_speeds_by_platform(ok: pd.DataFrame):
    """{(model, engine, workload): {platform: (output tokens/s, its row)}}."""
    served = served_workloads(ok)
    if "output_tokens_per_s" in served:
        served = served[served["output_tokens_per_s"].notna()]
    speeds = {}
    for _, row in served.iterrows():
        key = (row["model"], row["framework"], row["method"])
        speeds.setdefault(key, {})[row["platform"]] = (float(row["output_tokens_per_s"]), row)
    return speeds


def datacenter_serves_faster(ok: pd.DataFrame, t: Thresholds, values: dict):
    for (model, engine, workload), platforms in sorted(serving_speeds_by_platform(ok).items()):
        kinds = {p: gpu_kind(row) for p, (_, row) in platforms.items()}
        datacenter = [p for p, kind in kinds.items() if kind == "datacenter"]
        consumer = [p for p, kind in kinds.items() if kind == "consumer"]
        for top in datacenter:
            if not consumer:
                continue
            leads = [platforms[top][0] / platforms[c][0] - 1 for c in consumer]
            if all(lead > t.tie for lead in leads):
                verdict = HOLDS
            elif any(lead < -t.tie for lead in leads):
                verdict = CONTRADICTS
            else:
                verdict = NOISE
            ours = ", ".join(f"{p} {platforms[p][0]:,.0f}" for p in [top, *consumer])
            yield Finding(top, model, f"{engine} {workload} output tokens/s: {ours}", verdict, "")


def rtx3090_slightly_ahead(ok: pd.DataFrame, t: Thresholds, values: dict):
    for (model, engine, workload), platforms in sorted(serving_speeds_by_platform(ok).items()):
        named = {
            name: p for p, (_, row) in platforms.items()
            for name in ("3090", "4090") if name in str(row.get("gpu"))
        }  # fmt: skip
        if len(named) < 2:
            continue
        older, newer = platforms[named["3090"]][0], platforms[named["4090"]][0]
        lead = older / newer - 1
        if abs(lead) <= t.tie:
            verdict = NOISE
        elif lead < 0:
            verdict = CONTRADICTS
        else:
            verdict = HOLDS if lead < t.lead else "ahead, not slightly"
        ours = f"{engine} {workload}: RTX3090 {older:,.0f} vs RTX4090 {newer:,.0f} ({lead:+.0%})"
        yield Finding(f"{named['3090']} vs {named['4090']}", model, ours, verdict, "")


def finetune_70b(ok: pd.DataFrame, t: Thresholds, values: dict):
    cells = ok[(ok["stage"] == "finetune") & (ok["model"] == "llama2-70b")]
    for _, row in cells.iterrows():
        speed = value(row, "tokens_per_s")
        ours = (
            f"{row['framework']} {row['method']} x{int(row['world_size'])}: {speed:,.0f} tokens/s"
        )
        if gpu_kind(row) != "consumer":
            yield Finding(
                row["platform"],
                row["model"],
                ours,
                NOT_COMPARABLE,
                "the study's figure is for 8 consumer GPUs",
            )
            continue
        gap = speed / values["tokens_per_s"] - 1
        verdict = HOLDS if abs(gap) <= t.agree_points / 100 else f"differs by {gap:+.0%}"
        yield Finding(row["platform"], row["model"], ours, verdict, "the study: about 200 tokens/s")


def engine_spread(ok: pd.DataFrame):
    """(row of the fastest engine, best / second best, label, engines measured) per platform x
    model x workload with two or more engines."""
    for _, group in served_workloads(ok).groupby(["platform", "model", "method"]):
        speeds = group.set_index("framework")["output_tokens_per_s"].dropna().sort_values()
        if len(speeds) < 2:
            continue
        lead = speeds.iloc[-1] / speeds.iloc[-2] - 1
        ours = ", ".join(f"{engine} {speed:,.0f}" for engine, speed in speeds[::-1].items())
        label = f"output tokens/s: {ours} (lead {lead:.0%})"
        yield group.iloc[0], lead, label, set(speeds.index)


def engines_close_on_consumer_gpus(ok: pd.DataFrame, t: Thresholds, values: dict):
    for row, lead, ours, _ in engine_spread(ok):
        if gpu_kind(row) != "consumer":
            yield Finding(
                row["platform"],
                row["model"],
                ours,
                NOT_COMPARABLE,
                "the claim is about consumer GPUs (RTX4090, RTX3090)",
            )
            continue
        yield Finding(row["platform"], row["model"], ours, HOLDS if lead <= t.lead else CONTRADICTS)


def engine_leads_on_datacenter_gpu(ok: pd.DataFrame, t: Thresholds, values: dict):
    leader = values.get("leader")  # the engine whose lead the study saw
    for row, lead, ours, engines in engine_spread(ok):
        if gpu_kind(row) != "datacenter":
            yield Finding(
                row["platform"],
                row["model"],
                ours,
                NOT_COMPARABLE,
                "the claim is about a datacenter GPU (A800)",
            )
            continue
        if leader and leader not in engines:
            yield Finding(
                row["platform"],
                row["model"],
                ours,
                NOT_COMPARABLE,
                f"the study's lead was {leader}'s, not among the engines measured here",
            )
            continue
        verdict = HOLDS if lead > t.lead else CONTRADICTS
        yield Finding(
            row["platform"], row["model"], ours, verdict, f"clear lead: above {t.lead:.0%}"
        )


# the checks claims.yaml names
CHECKS = {
    "deepspeed_faster_at_max": deepspeed_faster_at_max,
    "megatron_faster_at_b1": megatron_faster_at_b1,
    "megatron_less_memory": megatron_less_memory,
    "scaling_efficiency": scaling_efficiency,
    "nvlink_gain": nvlink_gain,
    "zero_cuts_memory": zero_cuts_memory,
    "offload_tradeoff": offload_tradeoff,
    "recompute_tradeoff": recompute_tradeoff,
    "quant_lowers_memory": quant_lowers_memory,
    "larger_batch_faster": larger_batch_faster,
    "flash_speedups": flash_speedups,
    "flash_forward_gains_more": flash_forward_gains_more,
    "idle_small_batch": idle_small_batch,
    "idle_falls_with_batch": idle_falls_with_batch,
    "size_ratio": size_ratio,
    "qlora_tradeoff": qlora_tradeoff,
    "finetune_70b": finetune_70b,
    "larger_model_follows": larger_model_follows,
    "datacenter_serves_faster": datacenter_serves_faster,
    "rtx3090_slightly_ahead": rtx3090_slightly_ahead,
    "engines_close_on_consumer_gpus": engines_close_on_consumer_gpus,
    "engine_leads_on_datacenter_gpu": engine_leads_on_datacenter_gpu,
}
