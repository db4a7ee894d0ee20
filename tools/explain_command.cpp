#include "tools/explain_command.hpp"

#include <fmt/format.h>

#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "tools/cli_common.hpp"
#include "models/accounting/explain.hpp"
#include "tools/units_format.hpp"

namespace clustersim::cli {

namespace {

struct ExplainOptions {
  std::string model;
  std::string cluster;
  std::string plan;
  std::string megatron_args;
  std::int64_t gpus = 0;
  std::int64_t seq_length = 4096;
  bool seq_length_given = false;
  Format format = Format::kTable;
};

std::string precision_name(const TrainPlan& p) {
  std::string s = p.precision == Precision::kBf16   ? "bf16"
                  : p.precision == Precision::kFp16 ? "fp16"
                                                    : "fp32";
  if (p.fp8_format == Fp8Format::kE4m3) s += " + fp8 e4m3";
  if (p.fp8_format == Fp8Format::kHybrid) s += " + fp8 hybrid";
  return s;
}

std::string recompute_name(const TrainPlan& p) {
  switch (p.recompute_granularity) {
    case Recompute::kNone: return "none";
    case Recompute::kSelective: return "selective";
    case Recompute::kFull:
      return fmt::format("full ({}, {} layers)",
                         p.recompute_method == RecomputeMethod::kBlock ? "block" : "uniform",
                         p.recompute_num_layers.value_or(1));
  }
  return "?";
}

std::string sharding_name(DpSharding z) {
  switch (z) {
    case DpSharding::kNoShard: return "no_shard";
    case DpSharding::kOptim: return "optim";
    case DpSharding::kOptimGrads: return "optim_grads";
    case DpSharding::kOptimGradsParams: return "optim_grads_params";
  }
  return "?";
}

nlohmann::ordered_json memory_json(const MemoryBreakdown& m) {
  return {{"weights", round_bytes(m.weights)},
          {"grads", round_bytes(m.grads)},
          {"optimizer", round_bytes(m.optimizer)},
          {"activations", round_bytes(m.activations)},
          {"total", round_bytes(m.total())}};
}

nlohmann::ordered_json to_json(const Explanation& e) {
  const ModelSpec& m = e.model;
  nlohmann::ordered_json j;
  j["model"] = {{"name", m.name},
                {"source", m.source},
                {"model_type", m.model_type},
                {"hidden_size", m.hidden_size},
                {"num_layers", m.num_layers},
                {"num_attention_heads", m.num_attention_heads},
                {"num_key_value_heads", m.num_key_value_heads},
                {"head_dim", m.head_dim},
                {"vocab_size", m.vocab_size},
                {"num_experts", m.num_experts},
                {"num_experts_per_tok", m.num_experts_per_tok},
                {"num_moe_layers", m.num_moe_layers()},
                {"attention", m.attention == AttentionKind::kMultiLatent ? "mla" : "mha"}};
  const ParameterCount& p = e.parameters;
  j["params_total"] = p.total;
  j["params_active"] = p.active;
  j["params_breakdown"] = {{"embedding", p.embedding},   {"lm_head", p.lm_head},
                           {"attention", p.attention},   {"dense_mlp", p.dense_mlp},
                           {"routed_experts", p.routed_experts},
                           {"shared_experts", p.shared_experts},
                           {"router", p.router},         {"norms", p.norms}};
  j["seq_length"] = e.seq_length;
  const TrainingFlops& f = e.flops_per_token;
  j["flops_per_token"] = f.model();
  j["flops_per_token_breakdown"] = {{"forward", f.forward},
                                    {"backward", f.backward},
                                    {"attention_core_forward", f.attention_core_forward},
                                    {"recompute", f.recompute},
                                    {"with_recompute", f.hardware()}};
  if (!e.plan) return j;
  const PlanExplanation& pe = *e.plan;
  const ParallelLayout& L = pe.layout;
  j["plan"] = {{"source", pe.plan.source},
               {"world_size", L.world},
               {"tensor_model_parallel_size", L.tp},
               {"pipeline_model_parallel_size", L.pp},
               {"context_parallel_size", L.cp},
               {"data_parallel_size", L.dp},
               {"expert_model_parallel_size", L.ep},
               {"expert_tensor_parallel_size", L.etp},
               {"expert_data_parallel_size", L.expert_dp},
               {"virtual_stages_per_pipeline_rank", L.virtual_stages},
               {"micro_batch_size", L.micro_batch_size},
               {"global_batch_size", L.global_batch_size},
               {"num_microbatches", L.num_microbatches},
               {"seq_length", L.seq_length},
               {"sequence_parallel", pe.plan.sequence_parallel},
               {"recompute", recompute_name(pe.plan)},
               {"data_parallel_sharding_strategy", sharding_name(pe.plan.data_parallel_sharding_strategy)},
               {"precision", precision_name(pe.plan)},
               {"rank_order", rank_order_string(pe.plan.rank_order)}};
  const BytesPerParameter per = bytes_per_parameter(pe.plan);
  j["plan"]["bytes_per_parameter"] = {{"weights", per.weights}, {"grads", per.grads}, {"optimizer", per.optimizer}};
  if (pe.cluster) {
    j["cluster"] = {{"name", pe.cluster->name},
                    {"gpu", pe.cluster->gpu.name},
                    {"hbm_bytes", pe.cluster->gpu.hbm_bytes}};
  }
  j["memory_per_gpu_bytes"] = memory_json(pe.memory.peak().bytes);
  j["memory_peak_pipeline_stage"] = pe.memory.peak().pp_rank;
  auto stages = nlohmann::ordered_json::array();
  for (const auto& s : pe.memory.stages) {
    stages.push_back({{"pipeline_stage", s.pp_rank},
                      {"layers", s.layers},
                      {"inflight_microbatches", s.inflight_microbatches},
                      {"parameters_per_gpu", s.dense_parameters + s.expert_parameters},
                      {"bytes", memory_json(s.bytes)}});
  }
  j["memory_by_pipeline_stage"] = stages;
  if (pe.cluster) j["fits_in_memory"] = pe.fits_in_memory();
  return j;
}

void print_table(const Explanation& e, std::ostream& out) {
  const ModelSpec& m = e.model;
  std::string attention =
      m.attention == AttentionKind::kMultiLatent
          ? fmt::format("MLA (q_lora {}, kv_lora {}, rope {})", m.q_lora_rank, m.kv_lora_rank,
                        m.qk_rope_head_dim)
          : fmt::format("kv heads {}, head_dim {}", m.num_key_value_heads, m.head_dim);
  out << fmt::format("model        {} ({}, {})\n", m.name, m.model_type, m.source);
  out << fmt::format("             hidden {}, layers {}, heads {} ({}), vocab {}\n", m.hidden_size,
                     m.num_layers, m.num_attention_heads, attention, m.vocab_size);
  if (m.is_moe()) {
    out << fmt::format("             {} MoE layers: {} experts, top-{}, expert MLP {}, shared {}\n",
                       m.num_moe_layers(), m.num_experts, m.num_experts_per_tok,
                       m.moe_intermediate_size, m.shared_expert_intermediate_size);
  }
  if (m.num_moe_layers() < m.num_layers) {
    out << fmt::format("             dense MLP {} ({})\n", m.intermediate_size,
                       m.gated_mlp ? "gated" : "plain");
  }
  const ParameterCount& p = e.parameters;
  out << fmt::format("parameters   total {}, active {}{}\n", human_count(p.total),
                     human_count(p.active),
                     m.num_mtp_layers ? fmt::format(" ({} MTP layer(s) excluded)", m.num_mtp_layers)
                                      : "");
  out << fmt::format("             attention {}, dense MLP {}, embedding {}, lm_head {}{}\n",
                     human_count(p.attention), human_count(p.dense_mlp), human_count(p.embedding),
                     p.lm_head ? human_count(p.lm_head) : "tied",
                     m.is_moe() ? fmt::format(", experts {} routed + {} shared, router {}",
                                              human_count(p.routed_experts),
                                              human_count(p.shared_experts), human_count(p.router))
                                : "");
  const TrainingFlops& f = e.flops_per_token;
  out << fmt::format("FLOPs/token  {} (forward {} + backward {}), {} with recomputation; seq {} "
                     "causal, attention core {} of forward\n",
                     human_flops(f.model()), human_flops(f.forward), human_flops(f.backward),
                     human_flops(f.hardware()), e.seq_length,
                     fmt::format("{:.1f}%", 100.0 * f.attention_core_forward / f.forward));
  if (!e.plan) return;
  const PlanExplanation& pe = *e.plan;
  const ParallelLayout& L = pe.layout;
  out << fmt::format("plan         TP {} x PP {} x CP {} x DP {} = {} GPUs; EP {}, ETP {}; "
                     "virtual stages {}; order {}\n",
                     L.tp, L.pp, L.cp, L.dp, L.world, L.ep, L.etp, L.virtual_stages,
                     rank_order_string(pe.plan.rank_order));
  out << fmt::format("             micro batch {}, global batch {} ({} micro-batches per pipeline), "
                     "seq {}, {}, SP {}, recompute {}, DP sharding {}\n",
                     L.micro_batch_size, L.global_batch_size, L.num_microbatches, L.seq_length,
                     precision_name(pe.plan), pe.plan.sequence_parallel ? "on" : "off",
                     recompute_name(pe.plan), sharding_name(pe.plan.data_parallel_sharding_strategy));
  const BytesPerParameter per = bytes_per_parameter(pe.plan);
  out << fmt::format("             bytes per parameter before sharding: weights {:g}, grads {:g}, optimizer {:g}\n",
                     per.weights, per.grads, per.optimizer);
  out << "memory/GPU   stage  layers  in-flight    weights      grads  optimizer  activations"
         "      total\n";
  for (const auto& s : pe.memory.stages) {
    out << fmt::format("             {:>5}  {:>6}  {:>9.2f}  {:>9}  {:>9}  {:>9}  {:>11}  {:>9}\n",
                       s.pp_rank, s.layers, s.inflight_microbatches, human_bytes(s.bytes.weights),
                       human_bytes(s.bytes.grads), human_bytes(s.bytes.optimizer),
                       human_bytes(s.bytes.activations), human_bytes(s.bytes.total()));
  }
  const StageMemory& peak = pe.memory.peak();
  if (pe.cluster) {
    out << fmt::format("peak         stage {}: {} of {} HBM ({}) -> {}\n", peak.pp_rank,
                       human_bytes(peak.bytes.total()),
                       human_bytes(static_cast<double>(pe.cluster->gpu.hbm_bytes)),
                       pe.cluster->gpu.name, pe.fits_in_memory() ? "fits" : "DOES NOT FIT");
  }
}

void run(const ExplainOptions& o) {
  Diagnostics diag;
  ModelSpec model = load_model(o.model, diag);
  const bool has_plan = !o.plan.empty() || !o.megatron_args.empty();
  if (has_plan && (o.cluster.empty() || o.gpus == 0)) {
    throw UsageError("a plan needs --cluster and --gpus");
  }
  if (!has_plan && o.gpus != 0) throw UsageError("--gpus needs a plan (--plan or --from-megatron-args)");
  if (has_plan && o.seq_length_given) {
    throw UsageError("--seq-length conflicts with the plan's seq_length; set it in the plan");
  }
  Explanation e;
  if (has_plan) {
    std::optional<ClusterSpec> cluster = load_cluster(o.cluster, diag);
    TrainPlan plan = load_plan(o.plan, o.megatron_args, diag);
    ParallelLayout layout = derive_layout(model, plan, &*cluster, o.gpus, diag);
    e = explain(model, plan, layout, std::move(cluster));
    warn_if_not_fitting(diag, plan.source, e.plan->memory, *e.plan->cluster);
  } else {
    if (!o.cluster.empty()) load_cluster(o.cluster, diag);  // validated even if unused
    e = explain(model, o.seq_length);
  }
  print_warnings(diag);
  if (o.format == Format::kJson) {
    std::cout << to_json(e).dump(2) << '\n';
  } else {
    print_table(e, std::cout);
  }
}

}  // namespace

void register_explain_command(CLI::App& app) {
  auto options = std::make_shared<ExplainOptions>();
  CLI::App* cmd = app.add_subcommand(
      "explain", "Parameters, FLOPs per token and per-GPU memory of a model under a plan");
  cmd->footer(
      "Examples:\n"
      "  clustersim explain --model deepseek-v3\n"
      "  clustersim explain --model llama-3.1-405b --cluster h100-ndr --gpus 16384 \\\n"
      "      --plan llama-3.1-405b-16k --format json\n"
      "  clustersim explain --model configs/models/llama-3-70b.json --cluster h100-ndr --gpus 64 \\\n"
      "      --from-megatron-args \"--tensor-model-parallel-size 8 --micro-batch-size 1 "
      "--seq-length 4096 --bf16\"");
  cmd->add_option("--model", options->model,
                  "Hugging Face config.json path, inline JSON, or preset name")
      ->required();
  cmd->add_option("--cluster", options->cluster, "Cluster preset name or JSON file");
  cmd->add_option("--gpus", options->gpus, "World size (number of GPUs)")
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{1} << 24));
  cmd->add_option("--plan", options->plan, "Plan JSON (Megatron-LM argument names) or preset");
  cmd->add_option("--from-megatron-args", options->megatron_args,
                  "A pasted Megatron-LM command line, instead of --plan");
  cmd->add_option("--seq-length", options->seq_length,
                  "Sequence length for FLOPs when no plan is given")
      ->check(CLI::Range(std::int64_t{1}, std::int64_t{1} << 30))
      ->default_str("4096");
  add_format_option(*cmd, options->format);
  cmd->callback([options, cmd] {
    options->seq_length_given = cmd->get_option("--seq-length")->count() > 0;
    run(*options);
  });
}

}  // namespace clustersim::cli
