"""Module attribution, operator categories and communication overlap: on hand-made traces
where the answer is known, and on real profiler traces of CPU steps."""

import pytest

from llmdissect.models import shape_from_config
from llmdissect.profiling.module_marks import module_ranges, module_role
from llmdissect.profiling.modules import module_times
from llmdissect.profiling.operators import operator_category, operator_times
from llmdissect.training.frameworks import get_framework
from llmdissect.training.spec import TrainSpec


def event(cat, name, ts, dur, tid=1, **args):
    return {"ph": "X", "cat": cat, "name": name, "ts": ts, "dur": dur, "tid": tid, "args": args}


def test_gpu_kernels_follow_their_launch_and_backward_functions_their_forward_operator():
    # forward 0-100: a matmul in module.linear (inside module.attention) launches kernel 1,
    # and a launch outside any module launches kernel 3; backward 100-200 on another thread:
    # MmBackward0 (sequence number 7, the forward matmul's) launches kernel 2
    events = [
        event("user_annotation", "ProfilerStep#1", 0, 300),
        event("gpu_user_annotation", "ProfilerStep#1", 20, 170, tid=7),  # the same step
        event("user_annotation", "phase.forward", 0, 100),
        event("user_annotation", "module.attention", 5, 60),
        event("user_annotation", "module.linear", 10, 40),
        event("cpu_op", "aten::mm", 12, 20, **{"Sequence number": 7}),
        event("cuda_runtime", "cudaLaunchKernel", 14, 5, correlation=1),
        event("cuda_runtime", "cudaLaunchKernel", 80, 5, correlation=3),
        event("user_annotation", "phase.backward", 100, 100),
        event("cpu_op", "autograd::engine::evaluate_function: MmBackward0", 110, 50, tid=2,
              **{"Sequence number": 7}),
        event("cuda_runtime", "cudaLaunchKernel", 115, 5, tid=2, correlation=2),
        event("kernel", "nvjet_tst_128x256_64x4", 20, 30, tid=7, correlation=1),
        event("kernel", "nvjet_tst_128x256_64x4", 130, 60, tid=7, correlation=2),
        event("kernel", "vectorized_elementwise_kernel", 90, 10, tid=7, correlation=3),
    ]  # fmt: skip
    times = module_times(events)
    assert times["module_linear_forward_ms"] == pytest.approx(0.030)
    assert times["module_attention_forward_ms"] == pytest.approx(0.030)
    assert times["module_linear_backward_ms"] == pytest.approx(0.060)
    assert times["module_attention_backward_ms"] == pytest.approx(0.060)
    assert times["module_other_share"] == pytest.approx(10 / 100)


@pytest.mark.parametrize(
    ("name", "category"),
    [
        ("aten::mm", "gemm"),
        # kernel names from this pipeline's H100 traces (torch 2.11, CUDA 13, bitsandbytes 0.50)
        ("nvjet_sm90_tst_192x160_64x4_1x2_h_bz_coopB_NNT", "gemm"),
        ("void cutlass::Kernel2<cutlass_80_tensorop_bf16_s16816gemm_bf16_128x128_32x4_tn_align2>"
         "(cutlass_80_tensorop_bf16_s16816gemm_bf16_128x128_32x4_tn_align2::Params)", "gemm"),
        ("void pytorch_flash::flash_fwd_splitkv_kernel<Flash_fwd_kernel_traits<128, 64, 128, 4, "
         "false, false, cutlass::bfloat16_t>>", "attention"),
        ("void pytorch_flash::flash_bwd_dq_dk_dv_loop_seqk_parallel_kernel<Flash_bwd_kernel_traits"
         "<128, 64, 128, 8, 2, 4, 2, false, false, cutlass::bfloat16_t>>", "attention"),
        ("void (anonymous namespace)::softmax_warp_forward<float, float, float, 9, false, false>"
         "(float*, float const*, int, int, int, bool const*, int, bool)", "attention"),
        ("void multi_tensor_apply_kernel<TensorListMetadata<4>, AdamFunctor<float, int>, float, "
         "float, float, float, float, float, adamMode_t, float>", "elementwise"),
        ("void kDequantizeBlockwise<__nv_bfloat16, 512, 64, 8, 2>(float*, unsigned char*, float*, "
         "__nv_bfloat16*, int, int)", "elementwise"),
        ("void at::native::reduce_kernel<512, 1, at::native::ReduceOp<float, at::native::MeanOps<"
         "float, float, float, float>, unsigned int, float, 4, 4> >", "reduction"),
        ("void at::native::(anonymous namespace)::CatArrayBatchedCopy<at::native::(anonymous "
         "namespace)::OpaqueType<2u>, unsigned int, 1, 128, 1>", "memory"),
        ("void at::native::vectorized_elementwise_kernel<8, at::native::bfloat16_copy_kernel_cuda("
         "at::TensorIteratorBase&)::{lambda()#2}::operator()() const>", "memory"),
        ("void at::native::(anonymous namespace)::embedding_backward_feature_kernel<c10::BFloat16, "
         "float, long>", "memory"),
        ("Memcpy DtoD (Device -> Device)", "memory"),
        ("aten::addmm", "gemm"),
        ("nvjet_tst_128x256_64x4_2x1_v_bz_coopA_NTN", "gemm"),
        ("sm90_xmma_gemm_bf16bf16_bf16f32_f32_tn_n_tilesize128x128x64", "gemm"),
        ("void cutlass::Kernel2<cutlass_80_wmma_tensorop_bf16_s161616gemm>", "gemm"),
        ("void flash::flash_fwd_kernel<Flash_fwd_kernel_traits<128, 128>>", "attention"),
        ("aten::_scaled_dot_product_flash_attention_for_cpu", "attention"),
        ("void at::native::(anonymous namespace)::cunn_SoftMaxForward<8>", "attention"),
        ("void at::native::vectorized_elementwise_kernel<4, silu_kernel>", "elementwise"),
        ("aten::silu", "elementwise"),
        ("void at::native::reduce_kernel<512, 1, ReduceOp<float, MeanOps>>", "reduction"),
        ("aten::nll_loss_forward", "reduction"),
        ("aten::rsqrt", "normalization"),
        ("Memcpy DtoD (Device -> Device)", "memory"),
        ("aten::copy_", "memory"),
        ("ncclDevKernel_AllReduce_Sum_bf16_RING_LL(ncclDevKernelArgsStorage)", "communication"),
        ("ncclDevKernel_ReduceScatter_Sum_bf16_RING_LL", "communication"),
        ("c10d::_allgather_base_", "communication"),
        ("gloo:all_reduce", "communication"),
        ("torch::autograd::AccumulateGrad", "other"),
        ("MmBackward0", "other"),
        ("aten::view", "other"),
    ],
)  # fmt: skip
def test_operator_categories(name, category):
    assert operator_category(name) == category


def test_communication_overlap_counts_computation_on_other_streams_only():
    events = [
        event("user_annotation", "ProfilerStep#1", 0, 100),
        event("kernel", "ncclDevKernel_AllReduce_Sum_bf16_RING_LL", 0, 40, tid=20),
        event("kernel", "nvjet_tst_gemm", 10, 20, tid=7),  # overlaps 20 of the 40
        event("kernel", "nvjet_tst_gemm", 50, 30, tid=20),  # same stream: cannot overlap
    ]
    times = operator_times(events)
    assert times["comm_ms"] == pytest.approx(0.040)
    assert times["comm_overlap_share"] == pytest.approx(0.5)
    assert times["op_gemm_ms"] == pytest.approx(0.050)
    assert [t["category"] for t in times["top_operators"]] == ["gemm", "communication"]


def test_roles_of_the_transformers_llama_modules():
    from llmdissect.models import build_hf_model

    model = build_hf_model(shape_from_config("micro"))
    roles = {path: module_role(path.rsplit(".", 1)[-1], m) for path, m in model.named_modules()}
    assert roles["model"] == "decoder_stack"  # its own work: masks, positions
    assert roles[""] is None  # the causal-LM wrapper holds the LM head and the loss
    assert roles["model.embed_tokens"] == "embedding"
    assert roles["model.layers.0"] == "decoder_layer"
    assert roles["model.layers.0.self_attn"] == "attention"
    assert roles["model.layers.0.self_attn.q_proj"] == "linear"
    assert roles["model.layers.0.mlp"] == "mlp"
    assert roles["model.layers.0.mlp.act_fn"] == "silu"
    assert roles["model.layers.0.input_layernorm"] == "rmsnorm"
    assert roles["lm_head"] == "lm_head"


@pytest.mark.parametrize("method", ["baseline", "recompute"])
def test_every_module_of_a_real_cpu_step_gets_time(tmp_path, method):
    import torch
    from torch.profiler import ProfilerActivity, profile

    from llmdissect.profiling.phases import load_trace

    spec = TrainSpec(shape_from_config("micro"), "torch", method, 2, samples_path="")
    trainer = get_framework("torch").build(spec, "cpu")
    ids = torch.randint(0, 1000, (2, 48))
    model = trainer.root_module()
    hooks = [(len(m._forward_hooks), len(m._forward_pre_hooks)) for m in model.modules()]
    trainer.step(ids, torch.ones_like(ids), ids)  # warm-up: first-call costs are not the model's
    with module_ranges(model), profile(activities=[ProfilerActivity.CPU]) as profiler:
        with torch.profiler.record_function("ProfilerStep#1"):
            trainer.step(ids, torch.ones_like(ids), ids)
    profiler.export_chrome_trace(str(tmp_path / "trace.json"))
    times = module_times(load_trace(tmp_path / "trace.json"))
    for role in ("embedding", "decoder_layer", "attention", "mlp", "rmsnorm", "linear", "silu",
                 "lm_head", "loss"):  # fmt: skip
        assert times[f"module_{role}_forward_ms"] > 0, role
    for role in ("decoder_layer", "attention", "mlp", "linear", "lm_head", "loss"):
        assert times[f"module_{role}_backward_ms"] > 0, role
    recomputed = "module_decoder_layer_recompute_ms" in times
    assert recomputed == (method == "recompute")
    assert times["module_other_share"] < 0.1
    # the marks are gone afterwards: no hooks left, the loss callable is the model's own again
    assert hooks == [(len(m._forward_hooks), len(m._forward_pre_hooks)) for m in model.modules()]
    assert "_loss_function" not in vars(model)


class FailingTrainer:
    """Fault injection: a trainer whose second step fails (as an OOM in a profiled step would)."""

    def __init__(self):
        import torch

        self.model, self.calls = torch.nn.Linear(4, 4), 0

    def root_module(self):
        return self.model

    def step(self, ids, mask, labels):
        self.calls += 1
        if self.calls == 2:
            raise RuntimeError("injected failure")
        return self.model(ids.float()).sum().item()


def test_a_failed_profiled_step_leaves_nothing_beside_the_records(tmp_path):
    import itertools

    import torch

    from llmdissect.profiling.runner import profile_steps

    batch = (torch.ones(2, 4), torch.ones(2, 4), torch.ones(2, 4), 8)
    with pytest.raises(RuntimeError, match="injected"):
        profile_steps(
            FailingTrainer(), itertools.repeat(batch), "cpu", 2, tmp_path / "b1.trace.json.gz"
        )
    assert list(tmp_path.iterdir()) == []


def test_gradient_work_outside_autograd_in_the_backward_phase_is_parameter_gradients():
    # DeepSpeed's bf16 optimizer flattens the gradients into its fp32 buffers after autograd
    # is done, on the main thread inside the backward phase: kernel 2. Kernel 1 is a backward
    # function's on autograd's thread, of a forward operator outside any module: "other".
    events = [
        event("user_annotation", "ProfilerStep#1", 0, 300),
        event("user_annotation", "phase.forward", 0, 100),
        event("cpu_op", "aten::mm", 10, 20, **{"Sequence number": 3}),
        event("user_annotation", "phase.backward", 100, 100),
        event("cpu_op", "autograd::engine::evaluate_function: MmBackward0", 110, 30, tid=2,
              **{"Sequence number": 3}),
        event("cuda_runtime", "cudaLaunchKernel", 115, 5, tid=2, correlation=1),
        event("cpu_op", "aten::flatten_dense_tensors", 150, 20),
        event("cuda_runtime", "cudaLaunchKernel", 155, 5, correlation=2),
        event("kernel", "nvjet_tst_128x256_64x4", 120, 10, tid=7, correlation=1),
        event("kernel", "CatArrayBatchedCopy", 160, 30, tid=7, correlation=2),
    ]  # fmt: skip
    times = module_times(events)
    assert times["module_parameter_gradients_backward_ms"] == pytest.approx(0.030)
    assert times["module_other_share"] == pytest.approx(10 / 40)
