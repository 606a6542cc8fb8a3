"""Table cells and table files: a value or why there is none, as Markdown, CSV and LaTeX."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

STATUS_LABELS = {"oom": "OOM", "infeasible": "n/a", "error": "error"}


def shown(row: pd.Series | None, value, percent: bool = False, significant: int = 0) -> str:
    """A table cell: the value, or why there is none (OOM, n/a, error), never a blank.
    `significant` digits for small quantities (joules per token)."""
    if row is None:
        return "not run"
    if row["status"] != "ok":
        return STATUS_LABELS[row["status"]]
    if value is None or pd.isna(value):
        return "-"
    if percent:
        return f"{100 * value:.1f}%"
    if significant:
        return f"{value:.{significant}g}"
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.2f}"


def shown_spread(row: pd.Series | None, metric: str, percent: bool = False) -> str:
    """The value with its 95% interval over repeats where the record has one:
    "1,234 (1,100-1,350)"; the plain value otherwise."""
    text = shown(row, None if row is None else row.get(metric), percent)
    if row is None or row["status"] != "ok":
        return text
    low, high = row.get(f"{metric}_ci_low"), row.get(f"{metric}_ci_high")
    if low is None or high is None or pd.isna(low) or pd.isna(high):
        return text
    return f"{text} ({shown(row, low, percent)}-{shown(row, high, percent)})"


def shown_batch(row: pd.Series) -> str:
    size = row.get("batch_size")
    if row["batch"] == "max":
        return f"max ({size:.0f})" if size is not None and pd.notna(size) else "max"
    return str(row["batch"])


def to_markdown(frame: pd.DataFrame) -> str:
    headers = [str(c) for c in frame.columns]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" for _ in headers) + "|"]
    for values in frame.itertuples(index=False):
        lines.append("| " + " | ".join(_text(v) for v in values) + " |")
    return "\n".join(lines) + "\n"


def to_latex(frame: pd.DataFrame, caption: str) -> str:
    columns = "l" * len(frame.columns)
    lines = [
        "\\begin{table}[t]",
        "\\centering",
        f"\\caption{{{_latex_escape(caption)}}}",
        f"\\begin{{tabular}}{{{columns}}}",
        "\\hline",
        " & ".join(_latex_escape(str(c)) for c in frame.columns) + " \\\\",
        "\\hline",
    ]
    for values in frame.itertuples(index=False):
        lines.append(" & ".join(_latex_escape(_text(v)) for v in values) + " \\\\")
    lines += ["\\hline", "\\end{tabular}", "\\end{table}"]
    return "\n".join(lines) + "\n"


def write_table(
    frame: pd.DataFrame, stem: Path, title: str, note: str = "", empty: str = "no cells measured"
) -> None:
    """stem.md, stem.csv and stem.tex; an empty table still says why it is empty."""
    stem = Path(stem)
    stem.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(stem.with_suffix(".csv"), index=False)
    body = to_markdown(frame) if len(frame) else f"_{empty}_\n"
    stem.with_suffix(".md").write_text(f"### {title}\n\n{body}" + (f"\n{note}\n" if note else ""))
    stem.with_suffix(".tex").write_text(to_latex(frame, f"{title}. {note}".strip(". ")))


def _text(value) -> str:
    if value is None or (isinstance(value, float) and pd.isna(value)):
        return "-"
    return str(value)


LATEX_SPECIALS = {
    "\\": "\\textbackslash{}",
    "&": "\\&",
    "%": "\\%",
    "_": "\\_",
    "#": "\\#",
    "$": "\\$",
    "{": "\\{",
    "}": "\\}",
    "~": "\\textasciitilde{}",
}


def _latex_escape(text: str) -> str:
    return "".join(LATEX_SPECIALS.get(char, char) for char in text)
