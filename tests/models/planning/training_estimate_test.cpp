// Closed-form checks of the lowering and the estimator: pipeline bubble, FLOPs per token,
// collective bytes of a small plan.
#include <gtest/gtest.h>

#include <cmath>
#include <tuple>

#include "models/cost/cost_model.hpp"
#include "models/cost/profile_json.hpp"
#include "models/inputs/cluster_spec.hpp"
#include "models/inputs/preset_path.hpp"
#include "models/lowering/gradient_buckets.hpp"
#include "models/accounting/model_shapes.hpp"
#include "models/inputs/parallel_layout.hpp"
#include "models/planning/training_estimate.hpp"
#include "models/accounting/training_flops.hpp"
#include "models/lowering/workload.hpp"

namespace clustersim {
namespace {

ClusterSpec test_cluster() {
  ClusterSpec c;
  c.name = "test";
  c.gpu.sm_count = 100;
  c.gpu.hbm_bytes = std::int64_t{80} << 30;
  c.gpu.hbm_bandwidth_bytes_per_s = 2e12;
  c.gpu.peak_dense_flops_per_s[Dtype::kBf16] = 1e15;
  c.node.gpus_per_node = 8;
  c.node.nvlink_bandwidth_bytes_per_s = 400e9;
  c.node.nvlink_latency_s = 1e-6;
  c.node.nics_per_node = 8;
  c.node.nic_bandwidth_bytes_per_s = 50e9;
  c.node.nic_latency_s = 2e-6;
  c.fabric.nodes_per_leaf = 32;
  return c;
}

// A profile whose only non-zero cost is memory traffic at 1 byte/ns, so stage times are exact.
Profile memory_only_profile() {
  Profile p;
  p.name = "memory-only";
  auto fit = [](std::string id, FitModel m) {
    Fit f;
    f.id = std::move(id);
    f.model = std::move(m);
    return f;
  };
  p.fits.push_back(fit("memory", MemoryFit{{{0.0, 0.0, 1e-9}}}));
  p.fits.push_back(fit("all_reduce", CollectiveFit{CollectiveKind::kAllReduce, "any", 8, 1, {{1, 0.0, 0.0}}}));
  p.fits.push_back(fit("all_reduce_net", CollectiveFit{CollectiveKind::kAllReduce, "any", 2, 2, {{1, 0.0, 0.0}}}));
  return p;
}

// A hand-built workload: p identical stages, each micro-batch costs `forward_bytes` and twice
// that backward (memory-bound ops only).
Workload uniform_pipeline(std::int64_t p, std::int64_t m, std::int64_t v, double forward_bytes) {
  Workload w;
  w.layout.pp = p;
  w.layout.num_microbatches = m;
  w.layout.virtual_stages = v;
  w.layout.world = p;
  w.layout.tp = w.layout.cp = w.layout.dp = 1;
  w.tokens_per_step = 1000;
  for (std::int64_t r = 0; r < p; ++r) {
    StageProgram s;
    s.pp_rank = r;
    WorkOp f;
    f.kind = OpKind::kMemoryBound;
    f.bytes = forward_bytes;
    s.forward.push_back(f);
    WorkOp b = f;
    b.phase = Phase::kBackward;
    b.bytes = 2 * forward_bytes;
    s.backward.push_back(b);
    w.stages.push_back(s);
  }
  return w;
}

MemoryEstimate no_memory(std::int64_t p) {
  MemoryEstimate m;
  m.stages.resize(static_cast<std::size_t>(p));
  return m;
}

TEST(PipelineBubble, OneFOneBIsPMinusOneOverMPlusPMinusOne) {
  const ClusterSpec cluster = test_cluster();
  CostModel costs(memory_only_profile(), "test", cluster);
  for (auto [p, m] : {std::pair<std::int64_t, std::int64_t>{4, 8}, {8, 32}, {16, 16}}) {
    Workload w = uniform_pipeline(p, m, 1, 1e6);  // 1 ms forward, 2 ms backward
    TrainingEstimate e = estimate_training(w, costs, cluster, no_memory(p));
    const double t = 3e-3;
    EXPECT_NEAR(e.step_time_s, (m + p - 1) * t, 1e-12) << p << " stages, " << m << " micro-batches";
    EXPECT_NEAR(e.breakdown.bubble_s / e.step_time_s, pipeline_bubble_fraction(p, m, 1), 1e-12);
    EXPECT_NEAR(pipeline_bubble_fraction(p, m, 1), double(p - 1) / double(m + p - 1), 1e-15);
  }
}

TEST(PipelineBubble, InterleavingDividesTheBubbleByTheVirtualStages) {
  const ClusterSpec cluster = test_cluster();
  CostModel costs(memory_only_profile(), "test", cluster);
  const std::int64_t p = 8, m = 16, v = 4;
  Workload w = uniform_pipeline(p, m, v, 1e6);
  TrainingEstimate e = estimate_training(w, costs, cluster, no_memory(p));
  EXPECT_NEAR(e.breakdown.bubble_s / e.step_time_s, double(p - 1) / double(v * m + p - 1), 1e-12);
  EXPECT_NEAR(pipeline_bubble_fraction(p, m, v), double(p - 1) / double(v * m + p - 1), 1e-15);
}

// The search's bound: no schedule of the stage prices beats it, 1F1B or interleaved, blocking
// or overlapped transfers, and it is exact for a single stage.
TEST(PipelineBubble, TheLowerBoundNeverExceedsTheScheduledStep) {
  ClusterSpec cluster = test_cluster();
  CostModel costs(memory_only_profile(), "test", cluster);
  for (bool with_fleet : {false, true}) {
  if (with_fleet) {  // slow hosts, spread, jitter, data imbalance and a batch load
    cluster.fleet.name = "test";
    cluster.fleet.slow_host_fraction = 0.05;
    cluster.fleet.slow_host_slowdown = 1.2;
    cluster.fleet.host_speed_cv = 0.01;
    cluster.fleet.op_jitter_cv = 0.01;
    cluster.fleet.data_imbalance_cv = 0.02;
    cluster.fleet.data_loading_s = 1e-3;
  }
  for (auto [p, m, v] : {std::tuple<std::int64_t, std::int64_t, std::int64_t>{1, 8, 1}, {4, 8, 1}, {4, 8, 2}, {8, 32, 4}, {16, 16, 1}}) {
    for (bool overlap : {true, false}) {
      Workload w = uniform_pipeline(p, m, v, 1e6);
      w.overlap_p2p_comm = overlap;
      w.p2p_bytes = 1e7;
      const TrainingEstimate e = estimate_training(w, costs, cluster, no_memory(p));
      const double bound = step_time_lower_bound(e, w, costs, cluster);
      EXPECT_LE(bound, e.step_time_s * (1 + 1e-12)) << p << " " << m << " " << v;
      EXPECT_GT(bound, 0.5 * e.step_time_s) << p << " " << m << " " << v;
      if (p == 1) {
        EXPECT_NEAR(bound, e.step_time_s, 1e-12);
      }
    }
  }
  }
}

ModelSpec small_gpt() {
  ModelSpec m;
  m.name = "small";
  m.model_type = "gpt2";
  m.hidden_size = 1024;
  m.num_layers = 8;
  m.vocab_size = 32000;
  m.num_attention_heads = 16;
  m.num_key_value_heads = 16;
  m.head_dim = 64;
  m.v_head_dim = 64;
  m.gated_mlp = false;
  m.intermediate_size = 4096;
  m.norm = NormKind::kLayerNorm;
  m.moe_layers.assign(8, false);
  return m;
}

TEST(TrainingFlops, ModelFlopsAreSixNPlusCausalAttention) {
  ModelSpec m = small_gpt();
  const std::int64_t s = 2048;
  // Non-embedding matmul parameters (LM head included, embedding lookup not).
  ModelShapes shapes = model_shapes(m);
  double matmul = 0;
  for (const auto& layer : shapes.layers) {
    for (const auto& l : layer.linears) matmul += static_cast<double>(l.weights());
  }
  matmul += static_cast<double>(m.hidden_size * m.vocab_size);
  // Attention core per layer and token: QK^T and AV over (s + 1) / 2 keys on average, forward;
  // backward twice that.
  double attention = 3 * 2.0 * m.num_attention_heads * (m.head_dim + m.v_head_dim) * (s + 1) / 2.0 * m.num_layers;
  TrainingFlops f = training_flops_per_token(m, s, Recompute::kNone, 0);
  EXPECT_NEAR(f.model(), 6 * matmul + attention, 1e-6 * f.model());
}

TEST(Lowering, CollectiveBytesMatchHandCounts) {
  ModelSpec m = small_gpt();
  ClusterSpec cluster = test_cluster();
  TrainPlan plan;
  plan.tensor_model_parallel_size = 2;
  plan.pipeline_model_parallel_size = 2;
  plan.micro_batch_size = 2;
  plan.global_batch_size = 16;
  plan.seq_length = 1024;
  plan.sequence_parallel = true;
  plan.use_distributed_optimizer = true;
  plan.data_parallel_sharding_strategy = DpSharding::kOptim;
  plan.precision = Precision::kBf16;
  Diagnostics diag;
  ParallelLayout layout = derive_layout(m, plan, &cluster, 16, diag);  // DP 4
  Workload w = lower_training(m, plan, layout, cluster);
  ASSERT_EQ(w.stages.size(), 2u);
  const double tokens = 2 * 1024, h = 1024;
  // Tensor parallel with sequence parallelism: every all-gather / reduce-scatter moves the
  // full (gathered) activation of the micro-batch, b * s * h * 2 bytes.
  int tp_ops = 0;
  for (const auto& op : w.stages[0].forward) {
    if (op.kind != OpKind::kCollective || op.cost != Cost::kTpComm) continue;
    EXPECT_DOUBLE_EQ(op.bytes, tokens * h * 2) << op.name;
    EXPECT_EQ(op.group_ranks, 2);
    ++tp_ops;
  }
  // 4 layers lowered once (count 4): AG + RS around attention and around the MLP.
  EXPECT_EQ(tp_ops, 4);
  // Pipeline: the sequence-parallel shard of the activation, b * s * h * 2 / TP.
  EXPECT_DOUBLE_EQ(w.p2p_bytes, tokens * h * 2 / 2);
  // Data parallel with the distributed optimizer: FP32 gradients reduce-scattered and BF16
  // parameters all-gathered over DP = 4, for the parameters this rank holds.
  ModelShapes shapes = model_shapes(m);
  double per_layer = 0, norms = 0;
  for (const auto& l : shapes.layers[0].linears) per_layer += static_cast<double>(l.parameters());
  for (const auto& v : shapes.layers[0].vectors) norms += static_cast<double>(v.size);
  EXPECT_DOUBLE_EQ(norms, 4 * h);  // two LayerNorms, weight and bias, replicated over TP
  // Linears split over TP = 2; the norms are replicated; the embedding is vocabulary-parallel.
  double stage0 = 4 * (per_layer / 2 + norms) + static_cast<double>(m.vocab_size * m.hidden_size) / 2;
  const auto& step = w.stages[0].step;
  ASSERT_GE(step.size(), 3u);
  EXPECT_EQ(step[0].collective, CollectiveKind::kReduceScatter);
  EXPECT_DOUBLE_EQ(step[0].bytes, stage0 * 4);
  EXPECT_EQ(step[0].group_ranks, 4);
  EXPECT_EQ(step[1].collective, CollectiveKind::kAllGather);
  EXPECT_DOUBLE_EQ(step[1].bytes, stage0 * 2);
  // grad_reduce_in_bf16 halves the gradient bytes on the wire; fp16 gradients are 16-bit too.
  plan.grad_reduce_in_bf16 = true;
  EXPECT_DOUBLE_EQ(lower_training(m, plan, layout, cluster).stages[0].step[0].bytes, stage0 * 2);
  plan.grad_reduce_in_bf16 = false;
  plan.precision = Precision::kFp16;
  EXPECT_DOUBLE_EQ(lower_training(m, plan, layout, cluster).stages[0].step[0].bytes, stage0 * 2);
  // FP8: once per step, Transformer Engine casts the stage's layer weights (not the embedding)
  // to FP8 and their transpose: 4 bytes per parameter, after the optimizer.
  plan.precision = Precision::kBf16;
  plan.fp8_format = Fp8Format::kHybrid;
  const auto fp8_step = lower_training(m, plan, layout, cluster).stages[0].step;
  ASSERT_EQ(fp8_step.back().name, "fp8_weight_cast_transpose");
  EXPECT_EQ(fp8_step.back().cost, Cost::kOptimizer);
  EXPECT_DOUBLE_EQ(fp8_step.back().bytes, 4 * (4 * per_layer / 2));
}

}  // namespace
}  // namespace clustersim

namespace clustersim {
namespace {

// small_gpt on DP 8 with the distributed optimizer sharding as `sharding` does; `per_layer`:
// the parameters of one layer.
Workload lower_sharded_dp8(DpSharding sharding, double& per_layer) {
  ModelSpec m = small_gpt();
  ClusterSpec cluster = test_cluster();
  TrainPlan plan;
  plan.micro_batch_size = 1;
  plan.global_batch_size = 8;
  plan.seq_length = 1024;
  plan.use_distributed_optimizer = true;
  plan.data_parallel_sharding_strategy = sharding;
  plan.precision = Precision::kBf16;
  Diagnostics diag;
  ParallelLayout layout = derive_layout(m, plan, &cluster, 8, diag);
  per_layer = 0;
  const ModelShapes shapes = model_shapes(m);
  for (const auto& l : shapes.layers[0].linears) per_layer += static_cast<double>(l.parameters());
  for (const auto& v : shapes.layers[0].vectors) per_layer += static_cast<double>(v.size);
  return lower_training(m, plan, layout, cluster);
}

// The last stage's loss: Megatron-LM's unfused vocab-parallel cross-entropy, or its fused kernels
// with cross_entropy_loss_fusion, each priced by the fit of its own name when the profile has
// one (the shipped H100 profile measured all four) and by the generic memory fit otherwise.
TEST(Lowering, CrossEntropyKernelsArePricedByTheirOwnFitsWhereMeasured) {
  ModelSpec m = small_gpt();
  ClusterSpec cluster = test_cluster();
  TrainPlan plan;
  plan.tensor_model_parallel_size = 2;
  plan.pipeline_model_parallel_size = 2;
  plan.global_batch_size = 8;
  plan.seq_length = 1024;
  plan.precision = Precision::kBf16;
  Diagnostics diag;
  const ParallelLayout layout = derive_layout(m, plan, &cluster, 4, diag);
  auto loss_ops = [&](const TrainPlan& p) {
    const Workload w = lower_training(m, p, layout, cluster);
    std::vector<WorkOp> ops;
    for (const auto* list : {&w.stages.back().forward, &w.stages.back().backward}) {
      for (const auto& op : *list) {
        if (op.name.find("cross_entropy") != std::string::npos) ops.push_back(op);
      }
    }
    return ops;
  };
  const double bytes = 2.0 * 1024 * static_cast<double>(m.vocab_size) / 2 * 4;
  const auto unfused = loss_ops(plan);
  ASSERT_EQ(unfused.size(), 2u);
  EXPECT_EQ(unfused[0].name, "cross_entropy");
  EXPECT_EQ(unfused[1].name, "cross_entropy_grad");
  plan.cross_entropy_loss_fusion = true;
  const auto fused = loss_ops(plan);
  ASSERT_EQ(fused.size(), 2u);
  EXPECT_EQ(fused[0].name, "fused_cross_entropy");
  EXPECT_EQ(fused[1].name, "fused_cross_entropy_grad");
  for (const auto& op : fused) EXPECT_DOUBLE_EQ(op.bytes, bytes);

  const Profile shipped = load_profile(config_dir() + "/profiles/h100.json");
  const CostModel h100(shipped, "h100", cluster);
  const CostModel generic(memory_only_profile(), "memory-only", cluster);
  for (const auto& op : {unfused[0], unfused[1], fused[0], fused[1]}) {
    EXPECT_EQ(price_op(op, h100).basis, "memory/" + std::string(op.name));
    EXPECT_EQ(price_op(op, generic).basis, "memory");
    EXPECT_DOUBLE_EQ(price_op(op, generic).seconds, bytes * 1e-9);
  }
  // Measured (Liger-Kernel's benchmark of Megatron's losses on an H100): every kernel takes
  // longer than these bytes at the generic fit's STREAM rate, the fused forward about 4x at the
  // largest vocabulary it measured.
  WorkOp big = fused[0];
  big.bytes = 2.0 * 8192 * 131072 * 4;
  const double measured = price_op(big, h100).seconds;
  EXPECT_NEAR(measured, 11.804e-3, 0.10 * 11.804e-3);
  big.name = "elementwise";
  EXPECT_LT(price_op(big, h100).seconds * 3, measured);
}

TEST(Lowering, Zero3GathersEachLayerAndReducesItsGradientsEveryMicroBatch) {
  const ModelSpec m = small_gpt();
  double per_layer = 0;
  const Workload w = lower_sharded_dp8(DpSharding::kOptimGradsParams, per_layer);
  int gathers = 0, reductions = 0;
  for (const auto* list : {&w.stages[0].forward, &w.stages[0].backward}) {
    for (const auto& op : *list) {
      if (op.name == "fsdp_param_all_gather") {
        EXPECT_DOUBLE_EQ(op.bytes, per_layer * 2);
        EXPECT_EQ(op.count, 8);  // all 8 layers, lowered once
        ++gathers;
      }
      if (op.name == "fsdp_grad_reduce_scatter") {
        EXPECT_DOUBLE_EQ(op.bytes, per_layer * 4);
        ++reductions;
      }
    }
  }
  EXPECT_EQ(gathers, 2);     // before forward and before backward
  EXPECT_EQ(reductions, 1);  // after backward
  // The layers' gradients are not reduced again at the end of the step: only the input
  // embedding's, the (untied) output layer's and the final norm's.
  double embedding = static_cast<double>(m.vocab_size * m.hidden_size);
  const double final_norm = static_cast<double>(model_shapes(m).final_norm);
  EXPECT_DOUBLE_EQ(w.stages[0].step[0].bytes, (2 * embedding + final_norm) * 4);
}

TEST(Lowering, Zero2ReducesEachLayersGradientsEveryMicroBatchAndGathersParametersOncePerStep) {
  const ModelSpec m = small_gpt();
  double per_layer = 0;
  const Workload w = lower_sharded_dp8(DpSharding::kOptimGrads, per_layer);
  int gathers = 0, reductions = 0;
  for (const auto* list : {&w.stages[0].forward, &w.stages[0].backward}) {
    for (const auto& op : *list) {
      gathers += op.name == "fsdp_param_all_gather" ? 1 : 0;
      if (op.name == "fsdp_grad_reduce_scatter") {
        EXPECT_DOUBLE_EQ(op.bytes, per_layer * 4);
        EXPECT_EQ(op.count, 8);
        ++reductions;
      }
    }
  }
  EXPECT_EQ(gathers, 0);  // ZeRO-2 keeps whole parameters
  EXPECT_EQ(reductions, 1);
  // The step reduces only the embeddings' and the final norm's gradients but gathers every
  // updated parameter.
  double embedding = static_cast<double>(m.vocab_size * m.hidden_size);
  const double final_norm = static_cast<double>(model_shapes(m).final_norm);
  ASSERT_EQ(w.stages[0].step.size(), 4u);  // reduce-scatter, all-gather, gradient norm, optimizer
  EXPECT_EQ(w.stages[0].step[2].name, "grad_norm");
  EXPECT_EQ(w.stages[0].step[0].collective, CollectiveKind::kReduceScatter);
  EXPECT_DOUBLE_EQ(w.stages[0].step[0].parameters, 2 * embedding + final_norm);
  EXPECT_EQ(w.stages[0].step[1].collective, CollectiveKind::kAllGather);
  EXPECT_DOUBLE_EQ(w.stages[0].step[1].parameters, 2 * embedding + final_norm + 8 * per_layer);
}

// Context parallelism: Transformer Engine's ring over load-balanced causal chunks runs a causal
// block over the local s/cp tokens and cp - 1 unmasked s/cp x s/2cp blocks; together they are
// 1/cp of the whole causal attention, and K/V travel cp - 1 hops.
TEST(Lowering, ContextParallelAttentionIsOneCausalAndCpMinusOneUnmaskedBlocks) {
  ModelSpec m = small_gpt();
  ClusterSpec cluster = test_cluster();
  TrainPlan plan;
  plan.micro_batch_size = 1;
  plan.seq_length = 4096;
  plan.context_parallel_size = 4;
  plan.precision = Precision::kBf16;
  Diagnostics diag;
  ParallelLayout layout = derive_layout(m, plan, &cluster, 4, diag);
  ASSERT_FALSE(diag.has_errors());
  Workload w = lower_training(m, plan, layout, cluster);
  double flops = 0;
  std::int64_t hops = 0;
  for (const auto& op : w.stages[0].forward) {
    if (op.kind == OpKind::kAttention) {
      flops += op.flops * static_cast<double>(op.count);
      EXPECT_EQ(op.attention.seq_q, 1024);
      EXPECT_EQ(op.attention.seq_kv, op.attention.causal ? 1024 : 512);
      EXPECT_EQ(op.count, op.attention.causal ? m.num_layers : 3 * m.num_layers);
    }
    if (op.name == "cp_ring_kv") {
      hops = op.count / m.num_layers;
      EXPECT_DOUBLE_EQ(op.bytes, 2.0 * 1024 * m.num_key_value_heads * m.head_dim * 2);
    }
  }
  EXPECT_EQ(hops, 3);
  const double whole = attention_forward_flops(1, m.num_attention_heads, 4096, 4096, m.head_dim, true);
  EXPECT_DOUBLE_EQ(flops, whole / 4 * static_cast<double>(m.num_layers));
}

TEST(GradientBuckets, MegatronDefaultBucketAndSplit) {
  EXPECT_DOUBLE_EQ(default_bucket_parameters(8), 4e7);
  EXPECT_DOUBLE_EQ(default_bucket_parameters(128), 1.28e8);
  auto price = [](double bytes) { return bytes * 1e-9; };
  std::vector<Bucket> b = split_into_buckets(BucketUse::kReduction, 1e8, 4e8, 4e7, price);
  ASSERT_EQ(b.size(), 3u);  // 40M, 40M, 20M
  EXPECT_DOUBLE_EQ(b[0].seconds, 0.16);
  EXPECT_DOUBLE_EQ(b[2].seconds, 0.08);
  EXPECT_DOUBLE_EQ(b[0].at, 0.4);
  EXPECT_DOUBLE_EQ(b[2].at, 1.0);
  std::vector<Bucket> g = split_into_buckets(BucketUse::kGather, 1e8, 2e8, 4e7, price);
  EXPECT_DOUBLE_EQ(g[0].at, 0.0);
  EXPECT_DOUBLE_EQ(g[2].at, 0.8);
  EXPECT_EQ(split_into_buckets(BucketUse::kReduction, 1e8, 4e8, 0, price).size(), 1u);
}

TEST(GradientBuckets, ReductionLeavesTheLastBucketExposedOrTheBacklog) {
  // n equal buckets of d seconds ready at W/n, 2W/n, ..., W.
  std::vector<Bucket> four = {{0.1, 0.25}, {0.1, 0.5}, {0.1, 0.75}, {0.1, 1.0}};
  EXPECT_NEAR(reduction_overrun_s(four, 1.0), 0.1, 1e-12);  // communication keeps up: the last bucket
  std::vector<Bucket> slow = {{0.5, 0.25}, {0.5, 0.5}, {0.5, 0.75}, {0.5, 1.0}};
  EXPECT_NEAR(reduction_overrun_s(slow, 1.0), 0.25 + 4 * 0.5 - 1.0, 1e-12);  // backlog from the first
  // The parameter gather always exposes the first bucket, and a backlog beyond the forward.
  std::vector<Bucket> g = {{0.1, 0.0}, {0.1, 0.25}, {0.1, 0.5}, {0.1, 0.75}};
  EXPECT_NEAR(gather_delay_s(g, 1.0), 0.1, 1e-12);
  std::vector<Bucket> gs = {{0.5, 0.0}, {0.5, 0.25}, {0.5, 0.5}, {0.5, 0.75}};
  EXPECT_NEAR(gather_delay_s(gs, 1.0), 2.0 - 0.75, 1e-12);
}

}  // namespace
}  // namespace clustersim

#include "models/inputs/preset_path.hpp"

namespace clustersim {
namespace {

TEST(Lowering, MoeDispatchAndExpertTensorParallelBytesMatchHandCounts) {
  Diagnostics diag;
  ModelSpec m = load_model_spec(resolve_input("mixtral-8x7b", "models", "--model"), "mixtral-8x7b", diag);
  ClusterSpec cluster = test_cluster();
  TrainPlan plan;
  plan.tensor_model_parallel_size = 4;
  plan.expert_model_parallel_size = 2;
  plan.expert_tensor_parallel_size = 2;
  plan.micro_batch_size = 1;
  plan.global_batch_size = 8;
  plan.seq_length = 4096;
  plan.sequence_parallel = true;
  plan.precision = Precision::kBf16;
  ParallelLayout layout = derive_layout(m, plan, &cluster, 8, diag);
  Workload w = lower_training(m, plan, layout, cluster);
  // Tokens per rank after sequence parallelism: 4096 / TP 4 = 1024, each sent to top-2 experts.
  const double dispatch = 1024.0 * 2 * m.hidden_size * 2;
  int dispatches = 0, gathers = 0;
  for (const auto& op : w.stages[0].forward) {
    if (op.name == "moe_dispatch") {
      EXPECT_DOUBLE_EQ(op.bytes, dispatch);
      EXPECT_EQ(op.group_ranks, 2);
      EXPECT_EQ(op.count, m.num_layers);
      ++dispatches;
    }
    if (op.name == "etp_all_gather") {
      EXPECT_DOUBLE_EQ(op.bytes, dispatch * 2);  // gathered over ETP 2
      EXPECT_EQ(op.group_ranks, 2);
      ++gathers;
    }
  }
  EXPECT_EQ(dispatches, 1);
  EXPECT_EQ(gathers, 1);
}

// One sequence of 4,096 tokens per micro-batch, BF16, EP over all 8 GPUs of one stage.
TrainPlan expert_parallel_plan(std::int64_t ep) {
  TrainPlan plan;
  plan.expert_model_parallel_size = ep;
  plan.micro_batch_size = 1;
  plan.global_batch_size = 8;
  plan.seq_length = 4096;
  plan.precision = Precision::kBf16;
  return plan;
}

// Megatron-LM's allgather dispatcher gathers every rank's (sequence-parallel) tokens over the
// EP group and reduce-scatters the experts' outputs; its bytes do not depend on top-k.
TEST(Lowering, AllGatherDispatcherGathersEveryTokenOverTheExpertParallelGroup) {
  Diagnostics diag;
  ModelSpec m = load_model_spec(resolve_input("mixtral-8x7b", "models", "--model"), "mixtral-8x7b", diag);
  ClusterSpec cluster = test_cluster();
  TrainPlan plan = expert_parallel_plan(8);
  plan.moe_token_dispatcher_type = "allgather";
  ParallelLayout layout = derive_layout(m, plan, &cluster, 8, diag);
  Workload w = lower_training(m, plan, layout, cluster);
  const double gathered = 4096.0 * m.hidden_size * 2 * 8;
  int seen = 0;
  for (const auto& op : w.stages[0].forward) {
    if (op.name != "moe_dispatch" && op.name != "moe_combine") continue;
    EXPECT_EQ(op.kind, OpKind::kCollective);
    EXPECT_EQ(op.collective, op.name == "moe_dispatch" ? CollectiveKind::kAllGather : CollectiveKind::kReduceScatter);
    EXPECT_DOUBLE_EQ(op.bytes, gathered);
    EXPECT_EQ(op.group_ranks, 8);
    EXPECT_EQ(op.cost, Cost::kEpComm);
    ++seen;
  }
  EXPECT_EQ(seen, 2);
}

// A capacity factor caps the busiest rank's expert rows: with skewed routing the expert GEMMs
// shrink at CF 1 against dropless, and padding fills every expert to its capacity.
TEST(Lowering, CapacityFactorCapsTheBusiestRanksExpertRows) {
  Diagnostics diag;
  ModelSpec m = load_model_spec(resolve_input("qwen3-30b-a3b", "models", "--model"), "qwen3-30b-a3b", diag);
  ClusterSpec cluster = test_cluster();
  TrainPlan plan = expert_parallel_plan(8);
  auto rows = [&](const TrainPlan& p) {
    ParallelLayout layout = derive_layout(m, p, &cluster, 8, diag);
    const Workload w = lower_training(m, p, layout, cluster);  // a range-for over a temporary's member would dangle
    for (const auto& op : w.stages[0].forward) {
      if (op.name == "expert_fc1") return op.gemm.m;
    }
    return std::int64_t{0};
  };
  const std::int64_t balanced = rows(plan);
  EXPECT_EQ(balanced, 4096 * 8 / 16);  // 4096 tokens x top-8 over 16 local experts
  plan.moe_routing = parse_routing("zipf1.2");
  const std::int64_t dropless = rows(plan);
  EXPECT_GT(dropless, balanced * 3 / 2);
  plan.moe_expert_capacity_factor = 1.0;
  const std::int64_t dropped = rows(plan);
  EXPECT_LT(dropped, dropless);
  EXPECT_LE(dropped, 8 * 256);  // 8 source ranks x capacity ceil(4096 x 8 / 128) per expert
  plan.moe_pad_expert_input_to_capacity = true;
  EXPECT_EQ(rows(plan), 8 * 256);
}

}  // namespace
}  // namespace clustersim

namespace clustersim {
namespace {

// The bound with the data-parallel step: every lowered plan of small_gpt on h100-ndr over
// pipeline depths, interleaving, DP sizes within and across nodes, the distributed optimizer or
// not, overlapped gradient reduction and parameter gathers or not, with the cluster's fleet and
// without: no schedule beats it.
TEST(PipelineBubble, TheLowerBoundHoldsWithDataParallelGathersAndReductions) {
  const ModelSpec m = small_gpt();
  Diagnostics diag;
  const ClusterSpec with_fleet = load_cluster_spec(resolve_input("h100-ndr", "clusters", "--cluster"), "h100-ndr", diag);
  diag.throw_if_errors();
  ASSERT_TRUE(with_fleet.fleet.enabled());
  ClusterSpec without_fleet = with_fleet;
  without_fleet.fleet = FleetSpec{};
  int checked = 0;
  for (const ClusterSpec* cluster : {&with_fleet, static_cast<const ClusterSpec*>(&without_fleet)}) {
    const CostModel costs(load_profile(config_dir() + "/profiles/h100.json"), "h100", *cluster);
    for (auto [pp, vpp] : {std::pair<std::int64_t, std::int64_t>{1, 1}, {2, 1}, {2, 2}, {4, 1}, {4, 2}}) {
      for (std::int64_t dp : {1, 4, 32}) {
        for (bool distributed : {true, false}) {
          for (bool overlap_grad : {true, false}) {
            for (bool overlap_gather : {true, false}) {
              if (overlap_gather && !distributed) continue;  // Megatron gathers only with the distributed optimizer
              TrainPlan plan;
              plan.pipeline_model_parallel_size = pp;
              if (vpp > 1) plan.num_virtual_stages_per_pipeline_rank = vpp;
              plan.micro_batch_size = 1;
              plan.global_batch_size = dp * 8;
              plan.seq_length = 1024;
              plan.precision = Precision::kBf16;
              plan.use_distributed_optimizer = distributed;
              plan.data_parallel_sharding_strategy = distributed ? DpSharding::kOptim : DpSharding::kNoShard;
              plan.overlap_grad_reduce = overlap_grad;
              plan.overlap_param_gather = overlap_gather;
              const ParallelLayout layout = derive_layout(m, plan, cluster, pp * dp, diag);
              diag.throw_if_errors();
              const Workload w = lower_training(m, plan, layout, *cluster);
              const TrainingEstimate e = estimate_training(w, costs, *cluster, no_memory(pp));
              const double bound = step_time_lower_bound(e, w, costs, *cluster);
              EXPECT_LE(bound, e.step_time_s * (1 + 1e-12))
                  << "pp " << pp << " vpp " << vpp << " dp " << dp << " distributed " << distributed << " overlap "
                  << overlap_grad << overlap_gather << " fleet " << cluster->fleet.name;
              EXPECT_GT(bound, 0.5 * e.step_time_s);
              ++checked;
            }
          }
        }
      }
    }
  }
  EXPECT_EQ(checked, 2 * 5 * 3 * 3 * 2);
}

}  // namespace
}  // namespace clustersim
