"""The library's dataclass defaults are the config schema's: one set of defaults."""

from pathlib import Path

from llmdissect.config import load_schema
from llmdissect.training.cell import SearchSettings
from llmdissect.training.spec import TrainSpec

SCHEMA = load_schema(Path(__file__).parent.parent / "workflow/schemas/config.schema.yaml")


def test_training_defaults_are_the_schemas():
    stage = SCHEMA["$defs"]["training_stage"]["properties"]
    spec = TrainSpec.__dataclass_fields__
    for key in ("warmup_steps", "measured_steps", "learning_rate"):
        assert spec[key].default == stage[key]["default"], key
    search = stage["max_batch_search"]["properties"]
    for key in ("start", "limit", "fit_check_steps"):
        assert getattr(SearchSettings(), key) == search[key]["default"], key
