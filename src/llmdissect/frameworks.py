"""The training frameworks a cell may name: one entry each, read by the config check, the cell
grid and the probe runner. Free of torch (the config check imports it before any job runs).

Adding a framework: its Framework class under training/frameworks/ and one entry here.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class FrameworkEntry:
    name: str
    features: frozenset[str]  # method features it runs (methods.FEATURES)
    multi_process: bool  # launched by torchrun, a process per device; else one process
    runner: str  # "module:Class" of its Framework, imported only where a probe runs
    summary: str
    why_not: dict[str, str] = field(default_factory=dict)  # feature -> why it is not offered


FRAMEWORKS: dict[str, FrameworkEntry] = {
    entry.name: entry
    for entry in [
        FrameworkEntry(
            "torch",
            frozenset(
                {"recompute", "flash", "sdpa", "fused", "compile", "quant4", "lora", "qlora"}
            ),
            multi_process=False,
            runner="llmdissect.training.frameworks.torch_native:TorchNative",
            summary="the transformers LlamaForCausalLM and torch.optim.AdamW, one process",
        ),
        FrameworkEntry(
            "deepspeed",
            frozenset(
                {"zero2", "zero3", "offload", "recompute", "flash", "sdpa", "compile", "quant4"}
                | {"lora", "qlora"}
            ),
            multi_process=True,
            runner="llmdissect.training.frameworks.deepspeed_engine:DeepSpeed",
            summary="the same model in a DeepSpeed engine, a process per device",
            why_not={
                "fused": "DeepSpeed's own AdamW is already fused on the GPU (FusedAdam, "
                "multi-tensor apply); offloaded, it runs as DeepSpeedCPUAdam (vectorised C++)",
            },
        ),
        FrameworkEntry(
            "megatron",
            frozenset({"recompute", "fused"}),
            multi_process=True,
            runner="llmdissect.training.frameworks.megatron_gpt:Megatron",
            summary="Megatron-core GPTModel with the Llama-2 layout, tensor parallel",
            why_not={
                "flash": "its fused attention needs Transformer Engine, which is not installed",
                "sdpa": "its local layer spec has one attention, unfused",
                "compile": "torch.compile of its local layers is not wired here",
            },
        ),
    ]
}


def single_process(framework: str) -> bool:
    return not FRAMEWORKS[framework].multi_process
