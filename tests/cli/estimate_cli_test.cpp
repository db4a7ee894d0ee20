// estimate, search and validate end to end.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <map>
#include <set>

#include "tests/cli/run_command.hpp"

namespace clustersim::test {
namespace {

const std::string kSource = CLUSTERSIM_SOURCE_DIR;

TEST(EstimateCli, JsonHasTheDocumentedKeysAndIsDeterministic) {
  std::vector<std::string> args = {"estimate", "--model", "llama-3.1-405b", "--cluster", "h100-ndr",
                                   "--gpus", "16384", "--plan", "llama-3.1-405b-16k", "--format", "json"};
  CommandResult a = run_clustersim(args), b = run_clustersim(args);
  ASSERT_EQ(a.exit_code, 0) << a.err;
  EXPECT_EQ(a.out, b.out);
  nlohmann::json j = nlohmann::json::parse(a.out);
  for (const char* key : {"step_time_s", "tokens_per_s", "tokens_per_s_per_gpu", "tflops_per_gpu", "mfu", "hfu",
                          "memory_per_gpu_bytes", "fits_in_memory", "breakdown"}) {
    EXPECT_TRUE(j.contains(key)) << key;
  }
  for (const char* key : {"compute_s", "bubble_s", "optimizer_s", "tp_comm_s", "cp_comm_s", "ep_comm_s", "dp_comm_s",
                          "pp_comm_s"}) {
    EXPECT_TRUE(j["breakdown"].contains(key)) << key;
  }
  double mfu = j["mfu"];
  EXPECT_GT(mfu, 0.0);
  EXPECT_LT(mfu, 1.0);
  // Tokens per second is the global batch over the step time.
  EXPECT_NEAR(j["tokens_per_s"].get<double>(), 2048.0 * 8192 / j["step_time_s"].get<double>(), 1e-6 * j["tokens_per_s"].get<double>());
}

// --by-mechanism: from the all-off estimate (what --ablate all gives), the mechanisms left on are
// turned on one at a time and their increments add up to the step; an ablated one is not listed.
TEST(EstimateCli, ByMechanismIncrementsAddUpFromAllOff) {
  const std::vector<std::string> base = {"estimate", "--model", "llama-3.1-405b", "--cluster", "h100-ndr", "--gpus",
                                         "16384", "--plan", "llama-3.1-405b-16k", "--format", "json"};
  auto run = [&](std::vector<std::string> extra) {
    std::vector<std::string> args = base;
    args.insert(args.end(), extra.begin(), extra.end());
    const CommandResult r = run_clustersim(args);
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return r.exit_code == 0 ? nlohmann::json::parse(r.out) : nlohmann::json::object();
  };
  const nlohmann::json on = run({"--by-mechanism", "--ablate", "ecmp"});
  const nlohmann::json off = run({"--ablate", "all"});
  const nlohmann::json plain = run({"--ablate", "ecmp"});
  const nlohmann::json& ledger = on["by_mechanism"];
  EXPECT_EQ(on["step_time_s"], plain["step_time_s"]);
  EXPECT_EQ(ledger["all_off_step_time_s"], off["step_time_s"]);
  double added = 0;
  std::set<std::string> names;
  for (const auto& i : ledger["added_in_order"]) {
    added += i["added_s"].get<double>();
    names.insert(i["mechanism"].get<std::string>());
  }
  EXPECT_EQ(names.count("ecmp"), 0u);
  EXPECT_EQ(names.size(), 7u);
  EXPECT_NEAR(added, on["step_time_s"].get<double>() - off["step_time_s"].get<double>(), 1e-12);
  EXPECT_GT(on["step_time_s"].get<double>(), off["step_time_s"].get<double>());
}

// --ops lists the bottleneck stage's operations; their per-micro-batch compute adds up to the
// breakdown's compute over the micro-batches, and every price names the fit behind it.
TEST(EstimateCli, OperationsListAddsUpToTheComputeAndNamesItsFits) {
  CommandResult r = run_clustersim({"estimate", "--model", "llama-3-8b", "--cluster", "h100-ndr", "--gpus", "8", "--ops",
                                    "--format", "json", "--from-megatron-args",
                                    "--micro-batch-size 1 --global-batch-size 64 --seq-length 4096 --bf16"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json j = nlohmann::json::parse(r.out);
  const nlohmann::json& ops = j.at("operations").at("operations");
  ASSERT_FALSE(ops.empty());
  double compute_s = 0;
  std::set<std::string> lists;
  for (const auto& o : ops) {
    EXPECT_FALSE(o.at("basis").get<std::string>().empty()) << o.dump();
    EXPECT_NEAR(o.at("seconds").get<double>(), o.at("seconds_per_call").get<double>() * o.at("count").get<double>(),
                1e-12);
    lists.insert(o.at("list").get<std::string>());
    if (o.at("attributed_to") == "compute" && o.at("list") != "step") compute_s += o.at("seconds").get<double>();
  }
  EXPECT_EQ(lists, (std::set<std::string>{"forward", "backward", "step"}));
  // The coverage summary splits the GEMM and attention calls by how they were priced.
  for (const char* kind : {"gemm", "attention"}) {
    const nlohmann::json& c = j.at("operations").at("coverage").at(kind);
    double calls = 0;
    for (const auto& o : ops) {
      if (o.at("basis").get<std::string>().rfind(std::string(kind) + "/", 0) == 0) calls += o.at("count").get<double>();
    }
    EXPECT_EQ(c.at("calls").get<double>(), calls) << kind;
    EXPECT_EQ(c.at("inside").get<double>() + c.at("outside_range").get<double>() + c.at("derived").get<double>(), calls)
        << kind;
  }
  const double microbatches = j.at("plan").at("num_microbatches").get<double>();
  EXPECT_NEAR(compute_s * microbatches, j.at("breakdown").at("compute_s").get<double>(), 1e-9);
  CommandResult table = run_clustersim({"estimate", "--model", "llama-3-8b", "--cluster", "h100-ndr", "--gpus", "8",
                                        "--ops", "--from-megatron-args",
                                        "--micro-batch-size 1 --global-batch-size 64 --seq-length 4096 --bf16"});
  ASSERT_EQ(table.exit_code, 0) << table.err;
  // H100 prices BF16 GEMMs with its 96-point FP16 fit (Vidur), not the one-point BF16 maximum.
  EXPECT_NE(table.out.find("gemm/fp16 (used for bf16)"), std::string::npos) << table.out;
  EXPECT_NE(table.out.find("GEMM calls: "), std::string::npos) << table.out;
}

// MoE all-to-all overlap as Megatron-LM names it: behind the shared experts' GEMMs of the same
// layer, and behind the other pass's compute in the combined 1F1B schedule.
TEST(EstimateCli, MoeAllToAllOverlapHidesExpertParallelCommunication) {
  auto ep_comm_s = [](const std::string& extra) {
    CommandResult r = run_clustersim(
        {"estimate", "--model", "deepseek-v3", "--cluster", "h800-roce", "--gpus", "2048", "--format", "json", "--plan",
         R"({"pipeline_model_parallel_size":16,"decoder_first_pipeline_num_layers":1,)"
         R"("expert_model_parallel_size":64,"micro_batch_size":1,"global_batch_size":15360,"seq_length":4096,)"
         R"("bf16":true,"use_distributed_optimizer":true)" +
             extra + "}"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    nlohmann::json j = nlohmann::json::parse(r.out);
    return std::pair{j["breakdown"]["ep_comm_s"].get<double>(), j["breakdown"]["compute_s"].get<double>()};
  };
  auto [plain, compute] = ep_comm_s("");
  auto [shared, shared_compute] = ep_comm_s(R"(,"moe_shared_expert_overlap":true)");
  auto [combined, combined_compute] =
      ep_comm_s(R"(,"moe_shared_expert_overlap":true,"overlap_moe_expert_parallel_comm":true)");
  EXPECT_GT(plain, 0.0);
  EXPECT_LT(shared, plain);
  EXPECT_LT(combined, shared);
  EXPECT_GE(combined, 0.0);
  EXPECT_NEAR(shared_compute, compute, 1e-9 * compute);  // overlap hides communication, it adds no compute
  EXPECT_NEAR(combined_compute, compute, 1e-9 * compute);
}

// Interleaved pipelines: without overlap_p2p_comm every chunk's transfers block the compute
// stream; with it (Megatron-LM's default) a rank waits only for the transfers its next chunk
// needs, so fewer are exposed, and the step shrinks by what is no longer exposed.
TEST(EstimateCli, InterleavedPipelineTransfersAreExposedOnlyWithoutP2pOverlap) {
  auto run = [](const std::string& extra) {
    CommandResult r = run_clustersim(
        {"estimate", "--model", "llama-3-8b", "--cluster", "h100-ndr", "--gpus", "16", "--format", "json", "--plan",
         R"({"pipeline_model_parallel_size":4,"num_virtual_stages_per_pipeline_rank":4,"micro_batch_size":1,)"
         R"("global_batch_size":32,"seq_length":4096,"bf16":true)" +
             extra + "}"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    const nlohmann::json j = nlohmann::json::parse(r.out);
    return std::pair{j["breakdown"]["pp_comm_s"].get<double>(), j["step_time_s"].get<double>()};
  };
  const auto [overlapped, overlapped_step] = run("");
  const auto [blocking, blocking_step] = run(R"(,"overlap_p2p_comm":false)");
  ASSERT_GT(overlapped, 0.0);
  EXPECT_GT(blocking, 1.5 * overlapped);
  EXPECT_NEAR(blocking_step - overlapped_step, blocking - overlapped, 0.1 * (blocking - overlapped));
}

// Routing imbalance: the busiest expert-parallel rank's expert GEMMs and all-to-all set the pace.
TEST(EstimateCli, MoeRoutingImbalanceSlowsExpertsAndIsChecked) {
  auto run = [](const std::string& imbalance) {
    return run_clustersim({"estimate", "--model", "mixtral-8x7b", "--cluster", "h100-ndr", "--gpus", "8", "--format",
                           "json", "--plan",
                           R"({"expert_model_parallel_size":8,"micro_batch_size":1,"global_batch_size":8,)"
                           R"("seq_length":4096,"bf16":true,"moe_routing_imbalance":)" +
                               imbalance + "}"});
  };
  CommandResult balanced = run("1"), skewed = run("1.5"), impossible = run("9");
  ASSERT_EQ(balanced.exit_code, 0) << balanced.err;
  ASSERT_EQ(skewed.exit_code, 0) << skewed.err;
  nlohmann::json b = nlohmann::json::parse(balanced.out), s = nlohmann::json::parse(skewed.out);
  EXPECT_GT(s["breakdown"]["compute_s"].get<double>(), b["breakdown"]["compute_s"].get<double>());
  EXPECT_GT(s["breakdown"]["ep_comm_s"].get<double>(), b["breakdown"]["ep_comm_s"].get<double>());
  EXPECT_EQ(impossible.exit_code, 2);
  EXPECT_NE(impossible.err.find("/moe_routing_imbalance: 9 exceeds expert_model_parallel_size=8"), std::string::npos)
      << impossible.err;
}

TEST(EstimateCli, MissingPlanIsAUsageError) {
  CommandResult r = run_clustersim({"estimate", "--model", "llama-3-8b", "--cluster", "h100-ndr", "--gpus", "8"});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_NE(r.err.find("give --plan or --from-megatron-args"), std::string::npos) << r.err;
}

// estimate --help's third example: 8B with no parallelism, sequence 8192, on 80 GB GPUs does not
// fit. The figures are still printed (a result with a reason), but never silently.
const std::vector<std::string> kDoesNotFit = {
    "--model", "llama-3-8b", "--cluster", "h100-ndr", "--gpus", "8", "--from-megatron-args",
    "--micro-batch-size 1 --global-batch-size 128 --seq-length 8192 --bf16"};

std::vector<std::string> command(const std::string& sub, std::vector<std::string> args,
                                 const std::vector<std::string>& more = {}) {
  args.insert(args.begin(), sub);
  args.insert(args.end(), more.begin(), more.end());
  return args;
}

TEST(EstimateCli, PlanThatDoesNotFitWarnsOnStderrAndSaysSoInJson) {
  for (const std::string sub : {"estimate", "explain"}) {
    const CommandResult r = run_clustersim(command(sub, kDoesNotFit, {"--format", "json"}));
    ASSERT_EQ(r.exit_code, 0) << sub << r.err;
    EXPECT_FALSE(nlohmann::json::parse(r.out).at("fits_in_memory").get<bool>()) << sub;
    EXPECT_NE(r.err.find("warning: --from-megatron-args: the plan does not fit in GPU memory"), std::string::npos)
        << sub << r.err;
  }
  const CommandResult fits = run_clustersim(
      {"estimate", "--model", "llama-3-8b", "--cluster", "h100-ndr", "--gpus", "8", "--from-megatron-args",
       "--tensor-model-parallel-size 8 --micro-batch-size 1 --global-batch-size 8 --seq-length 4096 --bf16"});
  ASSERT_EQ(fits.exit_code, 0) << fits.err;
  EXPECT_EQ(fits.err.find("does not fit"), std::string::npos) << fits.err;
}

TEST(EstimateCli, RequireFitExitsThreeWithoutAResult) {
  for (const std::string sub : {"estimate", "simulate"}) {
    const CommandResult r = run_clustersim(command(sub, kDoesNotFit, {"--require-fit"}));
    EXPECT_EQ(r.exit_code, 3) << sub << r.err;
    EXPECT_TRUE(r.out.empty()) << sub << r.out;
    EXPECT_NE(r.err.find("error: --require-fit: the plan does not fit in GPU memory"), std::string::npos) << r.err;
    EXPECT_EQ(r.err.find("simulate: symmetric iteration"), std::string::npos) << "simulated first: " << r.err;
  }
  const CommandResult fits = run_clustersim(
      {"estimate", "--model", "llama-3.1-405b", "--cluster", "h100-ndr", "--gpus", "16384", "--plan",
       "llama-3.1-405b-16k", "--require-fit"});
  EXPECT_EQ(fits.exit_code, 0) << fits.err;
}

// Megatron-LM flags that do not change performance stay warnings, listed once, even those that
// are one edit from each other (--adam-beta1, --adam-beta2) or share words with a known flag
// (--min-lr, --lr-decay-style); only near-misspellings of a known flag are errors.
TEST(EstimateCli, RealMegatronFlagsAreListedOnceAndTyposAreErrors) {
  const std::string ignored =
      "--num-layers 32 --hidden-size 4096 --num-attention-heads 32 --ffn-hidden-size 14336 "
      "--max-position-embeddings 8192 --lr 3e-4 --min-lr 3e-5 --lr-decay-style cosine --weight-decay 0.1 "
      "--adam-beta1 0.9 --adam-beta2 0.95 --clip-grad 1.0 --train-iters 1000 --save /ckpt --load /ckpt "
      "--eval-iters 10 --eval-interval 100 --init-method-std 0.02 --attention-dropout 0.0 --hidden-dropout 0.0 "
      "--use-flash-attn --use-mcore-models --swiglu --normalization RMSNorm --disable-bias-linear "
      "--group-query-attention --num-query-groups 8 --untie-embeddings-and-output-weights "
      "--position-embedding-type rope --tokenizer-type HuggingFaceTokenizer --log-interval 1";
  const CommandResult r = run_clustersim(
      {"estimate", "--model", "llama-3-8b", "--cluster", "h100-ndr", "--gpus", "8", "--from-megatron-args",
       "--tensor-model-parallel-size 8 --micro-batch-size 1 --global-batch-size 8 --seq-length 4096 --bf16 " +
           ignored});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  const std::string listed = "do not affect performance modelling and were ignored";
  const auto first = r.err.find(listed);
  ASSERT_NE(first, std::string::npos) << r.err;
  EXPECT_EQ(r.err.find(listed, first + 1), std::string::npos) << "listed twice:\n" << r.err;
  EXPECT_NE(r.err.find("--lr"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--adam-beta1"), std::string::npos) << r.err;
  EXPECT_NE(r.err.find("--adam-beta2"), std::string::npos) << r.err;

  for (const std::string typo : {"--tensor-model-paralel-size 8", "--pipline-model-parallel-size 1",
                                 "--micro-bach-size 1"}) {
    const CommandResult t = run_clustersim(
        {"estimate", "--model", "llama-3-8b", "--cluster", "h100-ndr", "--gpus", "8", "--from-megatron-args",
         "--micro-batch-size 1 --global-batch-size 8 --seq-length 4096 --bf16 " + typo});
    EXPECT_EQ(t.exit_code, 2) << typo << "\n" << t.err;
    EXPECT_NE(t.err.find("did you mean --"), std::string::npos) << typo << "\n" << t.err;
    EXPECT_TRUE(t.out.empty()) << typo;
  }
}

// Found by scripts/fuzz.sh (tests/data/fuzz/megatron_args): a pasted value that is not UTF-8
// made the error message fail ("internal error: invalid UTF-8 byte") instead of naming the flag.
TEST(EstimateCli, MegatronValueThatIsNotUtf8IsAnInputError) {
  const CommandResult r = run_clustersim({"estimate", "--model", "llama-3-8b", "--cluster", "h100-ndr", "--gpus", "8",
                                          "--from-megatron-args",
                                          "--micro-batch-size 1 --global-batch-size 8 --seq-length 4096 --bf16 "
                                          "--hidden-dropout \x90x"});
  EXPECT_EQ(r.exit_code, 2) << r.err;
  EXPECT_NE(r.err.find("error: --from-megatron-args:/hidden_dropout: expected a number, got string"),
            std::string::npos)
      << r.err;
  EXPECT_EQ(r.err.find("internal error"), std::string::npos) << r.err;
}

// search groups invalid candidates by rule, and prints each rule with a real instance's numbers.
TEST(SearchCli, InvalidReasonsCarryNumbersNotPlaceholders) {
  const CommandResult r = run_clustersim({"search", "--model", "llama-3-8b", "--cluster", "h100-ndr", "--gpus", "64",
                                          "--global-batch-size", "96", "--seq-length", "4096", "--top", "1"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  EXPECT_NE(r.out.find("  invalid: "), std::string::npos) << r.out;
  for (std::size_t at = r.out.find("  invalid: "); at != std::string::npos; at = r.out.find("  invalid: ", at + 1)) {
    const std::string line = r.out.substr(at, r.out.find('\n', at) - at);
    EXPECT_EQ(line.find('#'), std::string::npos) << line;
  }
}

TEST(SearchCli, FindsPlansForLlama405BOn16kGpusAndSaysWhatItDropped) {
  CommandResult r = run_clustersim({"search", "--model", "llama-3.1-405b", "--cluster", "h100-ndr", "--gpus", "16384",
                                    "--global-batch-size", "2048", "--seq-length", "8192", "--top", "3", "--format", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_GT(j["enumerated"].get<int>(), 1000);
  EXPECT_EQ(j["enumerated"].get<int>(), j["invalid"].get<int>() + j["too_big_for_memory"].get<int>() + j["evaluated"].get<int>());
  ASSERT_EQ(j["best"].size(), 3u);
  EXPECT_LE(j["best"][0]["step_time_s"].get<double>(), j["best"][1]["step_time_s"].get<double>());
  EXPECT_LE(j["best"][0]["memory_per_gpu_bytes"].get<double>(), 80.0 * (1 << 30));
  EXPECT_NE(r.err.find("candidate plans in"), std::string::npos);
}

// The search schedules plans in the order of a lower bound on their step time and stops when no
// remaining bound can enter the top: its top 3 must equal the top 3 of scheduling every plan
// (--top 1000 keeps them all), and no plan may beat its own bound.
TEST(SearchCli, BoundedSchedulingRanksLikeSchedulingEveryPlan) {
  auto search = [](const char* top) {
    CommandResult r = run_clustersim({"search", "--model", "llama-3-70b", "--cluster", "h100-ndr", "--gpus", "512",
                                      "--global-batch-size", "512", "--seq-length", "8192", "--top", top, "--format", "json"});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return nlohmann::json::parse(r.out);
  };
  const nlohmann::json few = search("3"), all = search("1000");
  ASSERT_EQ(few["best"].size(), 3u);
  EXPECT_LT(few["scheduled"].get<int>(), all["scheduled"].get<int>());
  EXPECT_GE(all["scheduled"].get<int>(), std::min(1000, all["evaluated"].get<int>()));
  for (std::size_t i = 0; i < 3; ++i) {
    EXPECT_EQ(few["best"][i].dump(), all["best"][i].dump()) << i;
  }
}

// The dev validation set (configs/validation/dev-set.json): the training-estimate issue's targets
// are MAPE <= 8 % and no case worse than 15 %. NeMo FP8 cases on H100 are over-predicted by up to
// 17 % (docs/validation.md; three outside 15 %); the overall MAPE is 6.6 % with the fleet, fixed
// costs, FP8 cast-transposes at Transformer Engine's measured rate and TP overlap on H100 priced by
// FLUX's H800 fit (which took GPT3-175B on 128 GPUs from +8.6 % to +17.1 %). The second target is
// not met and the test does not pretend it is. It guards against regressions instead: every other
// case within its 15 % tolerance, the seven FP8 cases within 26 %, the MAPE of the rest at most
// 6 % and the overall MAPE at most 7 %.
TEST(ValidateCli, DevSetHoldsItsAccuracyWithTheDocumentedFp8Outliers) {
  CommandResult r = run_clustersim({"validate", kSource + "/configs/validation/dev-set.json", "--format", "json"});
  nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_LE(j["mape"].get<double>(), 0.07);
  const std::set<std::string> known = {"nemo2407-llama3-8b_8gpu",  "nemo2407-llama2-13b_16gpu",
                                       "nemo2407-gpt3-5b_64gpu",   "nemo2407-gpt3-20b_64gpu",
                                       "nemo2407-nemotron-8b_64gpu", "nemo2407-nemotron-22b_64gpu",
                                       "nemo2407-gpt3-175b_128gpu"};
  int outside = 0, others = 0;
  double others_error = 0;
  for (const auto& c : j["comparisons"]) {
    double error = std::abs(c["error"].get<double>());
    if (known.count(c["id"])) {
      EXPECT_LE(error, 0.26) << c["id"];
    } else {
      EXPECT_LE(error, 0.15) << c["id"];
      others_error += error;
      ++others;
    }
    outside += error > 0.15 ? 1 : 0;
  }
  EXPECT_LE(others_error / others, 0.06);
  EXPECT_EQ(r.exit_code, outside > 0 ? 1 : 0);
  EXPECT_EQ(j["comparisons"].size(), 30u);
  // Per case, how its bottleneck stage's GEMMs were priced (estimate --ops' coverage).
  ASSERT_EQ(j["coverage"].size(), 30u);
  for (const auto& [id, c] : j["coverage"].items()) {
    const nlohmann::json& g = c.at("gemm");
    EXPECT_GT(g.at("calls").get<int>(), 0) << id;
    EXPECT_EQ(g.at("inside").get<int>() + g.at("outside_range").get<int>() + g.at("derived").get<int>(),
              g.at("calls").get<int>())
        << id;
  }
}

// `full_attention` is NeMo's performance-table count, per token
// l·h²·(12 + 12·g/a + 18·f/h + 12·s/h + 6·V/(l·h)) for Llama: the attention core over all s keys.
TEST(ValidateCli, FullAttentionConventionIsNeMosFormula) {
  const double l = 32, h = 4096, g = 8, a = 32, f = 14336, V = 128256, s = 8192;
  const double nemo_flops_per_token = l * h * h * (12 + 12 * g / a + 18 * f / h + 12 * s / h + 6 * V / (l * h));
  const nlohmann::json cases = {{"cases",
      {{{"id", "llama-3-8b"}, {"source", "hand count"}, {"model", "llama-3-8b"}, {"cluster", "h100-ndr"},
        {"num_gpus", 8},
        {"plan", {{"micro_batch_size", 1}, {"global_batch_size", 8}, {"seq_length", 8192}, {"bf16", true}}},
        {"measured", {{"tokens_per_s_per_gpu", 1e4}, {"tflops_per_gpu", 1e4 * nemo_flops_per_token / 1e12}}},
        {"flops_convention", "full_attention"}, {"tolerance", 10.0}}}}};
  const std::string path = write_temp("full-attention-cases.json", cases.dump());
  CommandResult r = run_clustersim({"validate", path, "--format", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["comparisons"].size(), 2u);
  // Same error on both metrics only if predicted TFLOP/s = predicted tokens/s x NeMo's count.
  EXPECT_NEAR(j["comparisons"][0]["error"].get<double>(), j["comparisons"][1]["error"].get<double>(), 1e-9);
}

// A published run happened, so a case whose plan the memory estimate says cannot fit points at
// the memory model: validate reports it (and still compares the metrics).
TEST(ValidateCli, APlanEstimatedNotToFitIsReported) {
  const nlohmann::json cases = {{"cases",
      {{{"id", "70b-on-one-node"}, {"source", "made up"}, {"model", "llama-3-70b"}, {"cluster", "h100-ndr"},
        {"num_gpus", 8}, {"plan", {{"global_batch_size", 8}, {"seq_length", 8192}, {"bf16", true}}},
        {"measured", {{"tokens_per_s_per_gpu", 100}}}, {"tolerance", 10.0}}}}};
  const std::string path = write_temp("not-fitting-cases.json", cases.dump());
  CommandResult r = run_clustersim({"validate", path, "--format", "json"});
  ASSERT_EQ(r.exit_code, 0) << r.err;
  nlohmann::json j = nlohmann::json::parse(r.out);
  EXPECT_EQ(j["estimated_not_to_fit"], nlohmann::json::array({"70b-on-one-node"}));
  EXPECT_NE(r.err.find("warning: 70b-on-one-node: the plan is estimated at"), std::string::npos) << r.err;
  CommandResult dev = run_clustersim({"validate", kSource + "/configs/validation/dev-set.json", "--format", "json"});
  EXPECT_EQ(nlohmann::json::parse(dev.out)["estimated_not_to_fit"], nlohmann::json::array());
}

// Held-out set (configs/validation/nemo-long-sequence.json): NeMo's long-sequence Llama 2 7B FP8
// runs, 4k to 1M tokens with CP up to 32, never used to build a profile. Published TFLOP/s are in
// NeMo's convention (attention over all keys). The 4k row shares the dev set's FP8 gap
// (docs/validation.md) and is pinned below 20 %; the attention-dominated rows must stay within 15 %.
TEST(ValidateCli, HeldOutLongSequenceSetStaysWithinItsTolerances) {
  CommandResult r = run_clustersim({"validate", kSource + "/configs/validation/nemo-long-sequence.json", "--format", "json"});
  nlohmann::json j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["comparisons"].size(), 9u);
  EXPECT_LE(j["mape"].get<double>(), 0.08);
  int outside = 0;
  for (const auto& c : j["comparisons"]) {
    double error = std::abs(c["error"].get<double>());
    EXPECT_LE(error, c["id"] == "nemo2403-longseq-llama2-7b-4k" ? 0.20 : 0.15) << c["id"];
    outside += error > 0.15 ? 1 : 0;
  }
  EXPECT_EQ(r.exit_code, outside > 0 ? 1 : 0);
}

// The Megatron-Core r0.8 H100 weak-scaling rows (configs/validation/megatron-core-h100-scaling.json,
// 48-6,144 GPUs): not yet in the dev set, 14.9 % MAPE with known misses (docs/validation.md: the
// 32B row -21 %, the PP 4-16 rows +17-25 %, small models +10 %). Pricing DP collectives with
// NCCL's tuner model moved it from 11.7 % to 12.5 % (32B -26 -> -30 %); pricing TP overlap on H100
// (FLUX's H800 fit, the backward collectives beside Transformer Engine's GEMMs) from 12.5 % to
// 16.4 %: with TP communication hidden, the large rows show the optimism the fidelity issue reports
// at scale; the loss at Megatron's measured cross-entropy rate from 16.4 % to 14.9 % (1.7B +20 ->
// +10 %, its 131,072-entry vocabulary on one stage). Guards: MAPE at most 16 %, no row worse than 31 %.
TEST(ValidateCli, MegatronCoreScaleRowsHoldTheirDocumentedAccuracy) {
  CommandResult r = run_clustersim({"validate", kSource + "/configs/validation/megatron-core-h100-scaling.json", "--format", "json"});
  nlohmann::json j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["comparisons"].size(), 9u);
  EXPECT_LE(j["mape"].get<double>(), 0.16);
  for (const auto& c : j["comparisons"]) EXPECT_LE(std::abs(c["error"].get<double>()), 0.31) << c["id"];
  // The README states neither the micro-batch size nor the layers per virtual stage: every row
  // lists the values they could have had (`unstated`), and validate prices each combination. The
  // reported prediction is one of them, so the range holds it; only the 16B and 32B rows'
  // measurements fall inside their ranges (at micro-batch 2 or 4; for 32B it hides the DP
  // reduce-scatter).
  int inside = 0;
  for (const auto& c : j["comparisons"]) {
    ASSERT_TRUE(c.contains("unstated")) << c["id"];
    const auto& u = c["unstated"];
    EXPECT_LE(u["min"].get<double>(), c["predicted"].get<double>()) << c["id"];
    EXPECT_GE(u["max"].get<double>(), c["predicted"].get<double>()) << c["id"];
    EXPECT_EQ(u["settings"].get<int>(), u["priced"].get<int>() + u["invalid"].get<int>() + u["too_big_for_memory"].get<int>());
    inside += u["measured_inside"].get<bool>() ? 1 : 0;
  }
  EXPECT_EQ(inside, 2);
  EXPECT_TRUE(j["comparisons"][2]["unstated"]["measured_inside"].get<bool>()) << j["comparisons"][2]["id"];
  EXPECT_TRUE(j["comparisons"][3]["unstated"]["measured_inside"].get<bool>()) << j["comparisons"][3]["id"];
  const CommandResult table = run_clustersim({"validate", kSource + "/configs/validation/megatron-core-h100-scaling.json"});
  EXPECT_NE(table.out.find("mcore-r0.8-h100-weak-32B             tflops_per_gpu                459.6   -20.8% ..  +14.0%  3 of 3, measured inside"),
            std::string::npos) << table.out;
}

// NVIDIA dgxc-benchmarking v24.11.1 (configs/validation/dgxc-h100-bf16-fp8.json): six models, each
// in BF16 and FP8 on the same fully stated plan, at their smallest and largest published GPU count
// (8-2,304 H100s). Issue 16's target is every model's FP8 speed-up within 5 %; today it holds for
// Llama 3.1 8B and Nemotron-4 15B/340B and for Llama 3.1 405B on 576 GPUs, not for the GPT-3 175B
// and Llama 3.1 70B pairs (predicted 1.44-1.62x against 1.32-1.51x: the FP8 steps too fast) nor
// for 405B on 2,304 GPUs (docs/validation.md). Guards that state: the seven pairs within 5 %, the
// other five within 12 %; BF16 MAPE at most 6.5 %, FP8 at most 9 %, no case worse than 23 %.
TEST(ValidateCli, DgxcBf16Fp8PairsHoldTheirDocumentedSpeedups) {
  CommandResult r = run_clustersim({"validate", kSource + "/configs/validation/dgxc-h100-bf16-fp8.json", "--format", "json"});
  const nlohmann::json j = nlohmann::json::parse(r.out);
  ASSERT_EQ(j["comparisons"].size(), 24u);
  std::map<std::string, std::pair<double, double>> measured, predicted;  // pair -> (bf16, fp8) step
  for (const auto& c : j["comparisons"]) {
    const std::string id = c["id"].get<std::string>();
    EXPECT_LE(std::abs(c["error"].get<double>()), 0.23) << id;
    const bool fp8 = id.find("-fp8_") != std::string::npos;
    const std::string dtype = fp8 ? "-fp8_" : "-bf16_";
    const std::size_t at = id.find(dtype);
    ASSERT_NE(at, std::string::npos) << id;
    const std::string pair = id.substr(0, at) + "_" + id.substr(at + dtype.size());
    (fp8 ? measured[pair].second : measured[pair].first) = c["measured"].get<double>();
    (fp8 ? predicted[pair].second : predicted[pair].first) = c["predicted"].get<double>();
  }
  ASSERT_EQ(measured.size(), 12u);
  const std::set<std::string> outliers = {"dgxc-llama3.1-70b_64gpu", "dgxc-llama3.1-70b_2048gpu",
                                          "dgxc-gpt3-175b_128gpu", "dgxc-gpt3-175b_2048gpu",
                                          "dgxc-llama3.1-405b_2304gpu"};
  for (const auto& [pair, steps] : measured) {
    const double speedup = steps.first / steps.second;
    const double predicted_speedup = predicted[pair].first / predicted[pair].second;
    EXPECT_LE(std::abs(predicted_speedup / speedup - 1), outliers.count(pair) ? 0.12 : 0.05)
        << pair << ": measured " << speedup << "x, predicted " << predicted_speedup << "x";
  }
  EXPECT_LE(j["mape_by_group"]["dgxc-benchmarking v24.11.1 (H100, BF16)"]["mape"].get<double>(), 0.065);
  EXPECT_LE(j["mape_by_group"]["dgxc-benchmarking v24.11.1 (H100, FP8)"]["mape"].get<double>(), 0.09);
}

TEST(ValidateCli, EveryNewCommandHasHelpWithAnExample) {
  for (const char* cmd : {"estimate", "search", "validate"}) {
    CommandResult r = run_clustersim({cmd, "--help"});
    EXPECT_EQ(r.exit_code, 0);
    EXPECT_NE(r.out.find("Example"), std::string::npos) << cmd;
  }
}

}  // namespace
}  // namespace clustersim::test
