"""Figure kit: matplotlib without a display, and figures saved as PNG (reading) and PDF (papers)."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def save(figure, png: Path, pdf: Path) -> None:
    Path(png).parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(png, dpi=150, bbox_inches="tight")
    # no creation date: the same records render to the same bytes
    figure.savefig(pdf, bbox_inches="tight", metadata={"CreationDate": None})
    plt.close(figure)


def empty_figure(message: str, png: Path, pdf: Path) -> None:
    figure, axis = plt.subplots(figsize=(6, 1.5))
    axis.axis("off")
    axis.text(0.5, 0.5, message, ha="center", va="center")
    save(figure, png, pdf)
