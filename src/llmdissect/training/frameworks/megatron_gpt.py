"""Megatron-core: GPTModel with the Llama-2 layout (RMSNorm, SwiGLU, RoPE, no biases, untied
embeddings) from the local layer spec, tensor parallel across the launched processes."""

from __future__ import annotations

import torch

from ...methods import parse_method
from ...models import param_count, torch_dtype
from ..hf_llama import adamw
from ..spec import TrainSpec
from .base import Framework, Trainer, phase


class Megatron(Framework):
    name = "megatron"

    def infeasible_reason(self, spec: TrainSpec) -> str | None:
        tensor_parallel = spec.options.get("tensor_parallel", 1)
        pipeline_parallel = spec.options.get("pipeline_parallel", 1)
        if pipeline_parallel != 1:
            return "pipeline parallelism is not measured yet: set pipeline_parallel to 1"
        if spec.world_size % tensor_parallel:
            size = spec.world_size
            return f"world size {size} does not divide by tensor_parallel {tensor_parallel}"
        if spec.shape.num_heads % tensor_parallel or spec.shape.num_kv_heads % tensor_parallel:
            return f"{spec.shape.name}'s heads do not divide by tensor_parallel {tensor_parallel}"
        return super().infeasible_reason(spec)

    def build(self, spec: TrainSpec, device: str) -> Trainer:
        return MegatronTrainer(spec, device)


def transformer_config(spec: TrainSpec, on_cpu: bool, recompute: bool):
    import torch.nn.functional as F
    from megatron.core.transformer.transformer_config import TransformerConfig

    shape, dtype = spec.shape, torch_dtype(spec.dtype)
    extra = {}
    if recompute:
        extra = dict(
            recompute_granularity="full", recompute_method="uniform", recompute_num_layers=1
        )
    return TransformerConfig(
        num_layers=shape.num_layers,
        hidden_size=shape.hidden_size,
        num_attention_heads=shape.num_heads,
        num_query_groups=shape.num_kv_heads,
        ffn_hidden_size=shape.ffn_size,
        normalization="RMSNorm",
        layernorm_epsilon=1e-5,
        gated_linear_unit=True,
        activation_func=F.silu,
        add_bias_linear=False,
        hidden_dropout=0.0,
        attention_dropout=0.0,
        params_dtype=dtype,
        bf16=dtype == torch.bfloat16,
        fp16=dtype == torch.float16,
        tensor_model_parallel_size=spec.options.get("tensor_parallel", 1),
        use_cpu_initialization=on_cpu,
        **extra,
    )


class MegatronTrainer(Trainer):
    def __init__(self, spec: TrainSpec, device: str):
        from megatron.core import parallel_state

        on_cpu = not device.startswith("cuda")
        if on_cpu:
            from .megatron_cpu_shims import apply_cpu_shims

            apply_cpu_shims()
        from megatron.core.models.gpt import GPTModel
        from megatron.core.models.gpt.gpt_layer_specs import get_gpt_layer_local_spec
        from megatron.core.tensor_parallel import model_parallel_cuda_manual_seed

        tensor_parallel = spec.options.get("tensor_parallel", 1)
        parallel_state.initialize_model_parallel(tensor_model_parallel_size=tensor_parallel)
        torch.manual_seed(spec.seed)
        if not on_cpu:
            model_parallel_cuda_manual_seed(spec.seed)
        recompute = "recompute" in parse_method(spec.method)
        self.model = GPTModel(
            config=transformer_config(spec, on_cpu, recompute),
            transformer_layer_spec=get_gpt_layer_local_spec(normalization="RMSNorm"),
            vocab_size=spec.shape.vocab_size,
            max_sequence_length=spec.shape.max_seq_len,
            position_embedding_type="rope",
            share_embeddings_and_output_weights=False,
        ).to(device)
        # Megatron's mixed-precision optimizer needs CUDA: torch AdamW on every device.
        self.optimizer, optimizer = adamw(self.model.parameters(), spec, device)
        self.data_parallel_rank = parallel_state.get_data_parallel_rank()
        self.data_parallel_size = parallel_state.get_data_parallel_world_size()
        self.data_parallel_group = parallel_state.get_data_parallel_group()
        self.shape = spec.shape
        self.details = {
            "attention": "megatron local spec (unfused dot-product attention)",
            "recompute": recompute,
            "tensor_parallel": tensor_parallel,
            "pipeline_parallel": 1,
            "data_parallel": self.data_parallel_size,
            "optimizer": optimizer,
            "trained": "every parameter",
            "cpu_shims": on_cpu,
        }

    def step(self, input_ids, attention_mask, labels) -> float:
        batch, length = input_ids.shape
        positions = torch.arange(length, device=input_ids.device).expand(batch, length)
        causal = torch.triu(
            torch.ones(length, length, dtype=torch.bool, device=input_ids.device), 1
        )
        masked = causal[None, None] | (attention_mask == 0)[:, None, None, :]  # True: not attended
        targets = torch.roll(input_ids, -1, dims=1)
        loss_mask = torch.zeros_like(attention_mask, dtype=torch.float32)
        loss_mask[:, :-1] = attention_mask[:, 1:].float()
        with phase("forward"):
            token_losses = self.model(input_ids, positions, masked, labels=targets)
            loss = (token_losses.float() * loss_mask).sum() / loss_mask.sum()
        with phase("backward"):
            loss.backward()
        with phase("optimizer"):
            self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
        return loss.detach().item()

    def parameter_counts(self) -> dict:
        # Tensor-parallel ranks hold shards: report the whole model's count, from its shape.
        total = param_count(self.shape)
        return {"params_total": total, "params_trainable": total}
