#include "tools/serve_command.hpp"

#include <fmt/format.h>

#include <fstream>
#include <iostream>
#include <memory>
#include <nlohmann/json.hpp>

#include "traces/chrome_trace_writer.hpp"
#include "tools/cli_common.hpp"
#include "models/cost/cost_model.hpp"
#include "traces/request_trace_reader.hpp"
#include "models/inputs/serve_deployment.hpp"
#include "sim/serving/serve_engine.hpp"
#include "sim/serving/serve_metrics.hpp"
#include "models/inputs/serve_workload.hpp"

namespace clustersim::cli {

namespace {

struct ServeOptions {
  std::string model, cluster, deployment, workload, profile;
  double rate = 0;
  double slo_ttft_s = 0, slo_tpot_s = 0, slo_share = 0.9;
  std::string slo_rule = "joint";
  std::string network = "closed-form";
  bool goodput = false;
  std::string perfetto, requests_csv;
  std::vector<double> window;
  std::uint64_t seed = 1;
  Format format = Format::kTable;
};

nlohmann::json percentiles_json(const sim::Percentiles& p) {
  return {{"p50", p.p50}, {"p90", p.p90}, {"p99", p.p99}, {"mean", p.mean}};
}

// One row per request in arrival order, to compare with a measured run request by request.
void write_requests_csv(const std::string& path, const sim::ServeOutcome& outcome) {
  std::ofstream out(path);
  if (!out) throw UsageError(fmt::format("cannot write {}", path));
  out << "request,arrival_s,input_tokens,output_tokens,finished,ttft_s,tpot_s,e2e_s,preemptions\n";
  for (std::size_t i = 0; i < outcome.requests.size(); ++i) {
    const sim::RequestOutcome& r = outcome.requests[i];
    out << fmt::format("{},{:.6f},{},{},{},{:.6f},{:.6f},{:.6f},{}\n", i, r.arrival_s, r.input_tokens, r.output_tokens,
                       r.finished ? 1 : 0, r.ttft_s, r.tpot_s, r.e2e_s, r.preemptions);
  }
}

// Checks of the command line that need no input loaded: before any work.
void check_options(const ServeOptions& o) {
  if (!o.window.empty()) {
    if (o.window.size() != 2) throw UsageError("--trace-window takes BEGIN,END seconds");
    if (!(o.window[0] >= 0) || !(o.window[1] > o.window[0])) {
      throw UsageError(fmt::format("--trace-window {},{}: the window is empty or inverted; give BEGIN,END "
                                   "seconds of simulated time with 0 <= BEGIN < END",
                                   o.window[0], o.window[1]));
    }
  }
  if (!o.perfetto.empty() && o.window.empty()) throw UsageError("--perfetto needs --trace-window BEGIN,END");
}

void run(const ServeOptions& o) {
  check_options(o);
  Diagnostics diag;
  ModelSpec model = load_model(o.model, diag);
  ClusterSpec cluster = load_cluster(o.cluster, diag);
  diag.throw_if_errors();
  ServeDeployment deployment = load_serve_deployment(o.deployment, cluster.node.gpus_per_node, diag);
  WorkloadSpec workload = load_workload_spec(o.workload, diag);
  std::unique_ptr<ModelSpec> draft;
  for (const auto& p : deployment.pools) {
    if (p.role == PoolRole::kDraft && !draft) draft = std::make_unique<ModelSpec>(load_model(p.model, diag));
  }
  diag.throw_if_errors();
  RequestSet base;
  double base_rate = workload.rate_per_s;
  if (workload.trace) {
    base = traces::read_request_trace(*workload.trace);
    const auto& r = base.requests;
    base_rate = r.size() > 1 && r.back().arrival_s > 0 ? static_cast<double>(r.size() - 1) / r.back().arrival_s : 1.0;
  }
  if (o.rate > 0 && !workload.trace) base_rate = o.rate;
  LoadedProfile profile = load_profile_for(o.profile, cluster);
  CostModel cost(profile.profile, profile.file, cluster);
  const sim::ServeNetworkMode network =
      o.network == "flows" ? sim::ServeNetworkMode::kFlows : sim::ServeNetworkMode::kClosedForm;
  if (deployment.background_training && network != sim::ServeNetworkMode::kFlows) {
    diag.warn(deployment.source, "/background_training",
                 "background training traffic is simulated only with --network flows; closed-form ignores it");
  }
  sim::ServeSimulator simulator(model, deployment, cluster, cost, draft.get(), network);
  print_warnings(diag);

  // Requests at a rate: synthetic ones are redrawn, a trace is compressed or stretched in time.
  auto requests_at = [&](double rate) {
    if (!workload.trace) return generate_requests(workload, rate);
    RequestSet scaled = base;
    const double factor = base_rate / rate;
    for (auto& r : scaled.requests) r.arrival_s *= factor;
    return scaled;
  };
  const double rate = workload.trace && o.rate > 0 ? o.rate : base_rate;
  const sim::ServeSlo slo{o.slo_ttft_s, o.slo_tpot_s, o.slo_share,
                          o.slo_rule == "separate" ? sim::SloRule::kSeparate : sim::SloRule::kJoint};
  traces::ChromeTraceWriter writer;
  sim::TraceWindow window;
  if (o.window.size() == 2) window = {o.window[0], o.window[1]};
  const RequestSet requests = requests_at(rate);
  sim::ServeOutcome outcome = simulator.run(requests, o.perfetto.empty() ? nullptr : &window,
                                            o.perfetto.empty() ? nullptr : &writer, o.seed);
  // Wall-clock time is progress, not a result: stderr, so stdout stays byte-identical per input.
  std::cerr << fmt::format("serve: simulated {} requests in {:.3f} s wall\n", requests.requests.size(), outcome.wall_s);
  const sim::ServeSummary s = sim::summarise(outcome, slo);
  sim::GoodputResult goodput;
  if (o.goodput) {
    if (o.slo_ttft_s <= 0 && o.slo_tpot_s <= 0) throw UsageError("--goodput needs --slo-ttft and/or --slo-tpot");
    goodput = sim::find_goodput([&](double r) { return simulator.run(requests_at(r), nullptr, nullptr, o.seed); },
                                slo, rate);
  }
  if (!o.perfetto.empty()) {
    std::ofstream out(o.perfetto);
    if (!out) throw UsageError(fmt::format("cannot write {}", o.perfetto));
    writer.write(out);
  }
  if (!o.requests_csv.empty()) write_requests_csv(o.requests_csv, outcome);
  const double gpus = static_cast<double>(outcome.gpus);
  if (o.format == Format::kJson) {
    nlohmann::json j;
    j["model"] = model.name;
    j["cluster"] = cluster.name;
    j["profile"] = profile.file;
    j["deployment"] = deployment.source;
    j["gpus"] = outcome.gpus;
    j["requests"] = s.requests;
    j["finished"] = s.finished;
    j["dropped"] = s.dropped;
    j["rate_per_s"] = rate;
    j["ttft_s"] = percentiles_json(s.ttft);
    j["tpot_s"] = percentiles_json(s.tpot);
    j["e2e_s"] = percentiles_json(s.e2e);
    j["slo"] = {{"ttft_s", o.slo_ttft_s},
                {"tpot_s", o.slo_tpot_s},
                {"share", o.slo_share},
                {"rule", o.slo_rule},
                {"attainment", s.attainment},
                {"ttft_attainment", s.ttft_attainment},
                {"tpot_attainment", s.tpot_attainment}};
    j["duration_s"] = s.duration_s;
    j["input_tokens_per_s"] = s.input_tokens_per_s;
    j["output_tokens_per_s"] = s.output_tokens_per_s;
    j["output_tokens_per_s_per_gpu"] = s.output_tokens_per_s_per_gpu;
    j["tokens_per_s_per_gpu"] = s.tokens_per_s_per_gpu;
    j["preemptions"] = outcome.preemptions;
    j["kv_transfers"] = outcome.kv_transfers;
    j["kv_transfer_s_mean"] = outcome.kv_transfer_s_mean;
    j["prefix_hit_share"] = outcome.prefix_hit_share;
    j["network"] = {{"mode", o.network}};
    if (network == sim::ServeNetworkMode::kFlows) {
      j["network"]["fabric_gpus"] = outcome.fabric_gpus;
      j["network"]["flows"] = outcome.flows;
      j["network"]["kv_transfer_slowdown_mean"] = outcome.kv_transfer_slowdown_mean;
      if (deployment.background_training) {
        j["network"]["background_all_reduces"] = outcome.background_rounds;
        j["network"]["background_all_reduce_s_mean"] = outcome.background_round_s_mean;
      }
    }
    j["extrapolated"] = simulator.extrapolated();
    j["roofline_default_fits"] = simulator.roofline_bases();
    nlohmann::json pools = nlohmann::json::array();
    for (const auto& p : outcome.pools) {
      nlohmann::json pj{{"name", p.name},
                        {"role", std::string(to_string(p.role))},
                        {"instances", p.instances},
                        {"gpus", p.gpus},
                        {"kv_blocks_per_instance", p.kv_blocks_per_instance},
                        {"busy_share", p.busy_share},
                        {"kv_utilisation_mean", p.kv_utilisation_mean},
                        {"kv_utilisation_peak", p.kv_utilisation_peak},
                        {"iterations", p.iterations},
                        {"mean_batch_tokens", p.mean_batch_tokens},
                        {"iteration_price", p.measured_fits.empty() ? "composed" : "measured"},
                        {"measured_fits", p.measured_fits}};
      if (p.afd_event_level_s > 0) {
        pj["afd_iteration_s"] = {{"event_level", p.afd_event_level_s}, {"closed_form", p.afd_closed_form_s}};
      }
      pools.push_back(pj);
    }
    j["pools"] = pools;
    if (o.goodput) {
      j["goodput"] = {{"rate_per_s", goodput.rate_per_s},
                      {"rate_per_s_per_gpu", goodput.rate_per_s / gpus},
                      {"failing_rate_per_s", goodput.failing_rate_per_s > 0 ? nlohmann::json(goodput.failing_rate_per_s) : nlohmann::json()},
                      {"rule", o.slo_rule}};
      nlohmann::json steps = nlohmann::json::array();
      for (const auto& st : goodput.steps) steps.push_back({{"rate_per_s", st.rate_per_s}, {"attainment", st.attainment}});
      j["goodput"]["steps"] = steps;
    }
    std::cout << j.dump(2) << '\n';
    return;
  }
  std::cout << fmt::format("serve: {} on {} GPUs of {} (profile {})\n", model.name, outcome.gpus, cluster.name, profile.file);
  std::cout << fmt::format("requests {} (finished {}, dropped {}) at {:.3g} req/s over {:.1f} s\n", s.requests, s.finished,
                           s.dropped, rate, s.duration_s);
  std::cout << fmt::format("{:<8} {:>10} {:>10} {:>10} {:>10}\n", "", "p50", "p90", "p99", "mean");
  auto row = [](const char* name, const sim::Percentiles& p) {
    return fmt::format("{:<8} {:>9.1f}ms {:>9.1f}ms {:>9.1f}ms {:>9.1f}ms\n", name, p.p50 * 1e3, p.p90 * 1e3, p.p99 * 1e3,
                       p.mean * 1e3);
  };
  std::cout << row("TTFT", s.ttft) << row("TPOT", s.tpot) << row("E2E", s.e2e);
  if (o.slo_ttft_s > 0 || o.slo_tpot_s > 0) {
    std::cout << fmt::format("SLO attainment {:.1f}% (TTFT <= {} s, TPOT <= {} s; TTFT alone {:.1f}%, TPOT alone {:.1f}%)\n",
                             100 * s.attainment, o.slo_ttft_s, o.slo_tpot_s, 100 * s.ttft_attainment,
                             100 * s.tpot_attainment);
  }
  std::cout << fmt::format("throughput {:.0f} in + {:.0f} out tok/s; {:.1f} out tok/s/GPU; {:.1f} tok/s/GPU\n",
                           s.input_tokens_per_s, s.output_tokens_per_s, s.output_tokens_per_s_per_gpu,
                           s.tokens_per_s_per_gpu);
  std::cout << fmt::format("preemptions {}; KV transfers {} (mean {:.2f} ms); prefix-cache hits {:.1f}% of prompt tokens\n",
                           outcome.preemptions, outcome.kv_transfers, outcome.kv_transfer_s_mean * 1e3,
                           100 * outcome.prefix_hit_share);
  if (network == sim::ServeNetworkMode::kFlows) {
    std::cout << fmt::format("network: flows on the rail fat-tree of {} GPUs, {} flows; KV transfers took {:.3f}x "
                             "their uncontended time (mean)\n",
                             outcome.fabric_gpus, outcome.flows, outcome.kv_transfer_slowdown_mean);
    if (deployment.background_training) {
      std::cout << fmt::format("background training: {} all-reduces of {:.3g} MB per GPU, mean {:.2f} ms\n",
                               outcome.background_rounds, deployment.background_training->all_reduce_bytes / 1e6,
                               outcome.background_round_s_mean * 1e3);
    }
  }
  std::cout << fmt::format("{:<12} {:<10} {:>5} {:>5} {:>8} {:>9} {:>8} {:>10} {:>10}\n", "pool", "role", "inst", "gpus",
                           "busy", "KV mean", "KV peak", "iterations", "tok/iter");
  for (const auto& p : outcome.pools) {
    std::cout << fmt::format("{:<12} {:<10} {:>5} {:>5} {:>7.1f}% {:>8.1f}% {:>7.1f}% {:>10} {:>10.1f}\n", p.name,
                             to_string(p.role), p.instances, p.gpus, 100 * p.busy_share, 100 * p.kv_utilisation_mean,
                             100 * p.kv_utilisation_peak, p.iterations, p.mean_batch_tokens);
    if (!p.measured_fits.empty()) {
      std::cout << fmt::format("  iterations priced by measured fits: {}\n", fmt::join(p.measured_fits, ", "));
    }
    if (p.afd_event_level_s > 0) {
      std::cout << fmt::format("  attention/FFN iteration: event level {:.2f} ms, closed form {:.2f} ms\n",
                               p.afd_event_level_s * 1e3, p.afd_closed_form_s * 1e3);
    }
  }
  if (o.goodput) {
    std::cout << fmt::format("goodput {:.3f} req/s ({:.3f} req/s per GPU) at {:.0f}% attainment ({}), {} simulations\n",
                             goodput.rate_per_s, goodput.rate_per_s / gpus, 100 * o.slo_share,
                             o.slo_rule == "separate" ? "TTFT and TPOT counted separately" : "both targets per request",
                             goodput.steps.size());
    std::cout << (goodput.failing_rate_per_s > 0
                      ? fmt::format("  bracket: meets the SLO at {:.3f}, misses it at {:.3f} req/s ({:.3f}-{:.3f} per GPU)\n",
                                    goodput.rate_per_s, goodput.failing_rate_per_s, goodput.rate_per_s / gpus,
                                    goodput.failing_rate_per_s / gpus)
                      : fmt::format("  bracket: meets the SLO at every rate tried, up to {:.3f} req/s; no upper end found\n",
                                    goodput.rate_per_s));
  }
  const auto roofline = simulator.roofline_bases();
  if (!roofline.empty()) {
    std::cout << fmt::format("note: priced with roofline defaults (not measured): {}\n", fmt::join(roofline, ", "));
  }
}

}  // namespace

void register_serve_command(CLI::App& app) {
  auto o = std::make_shared<ServeOptions>();
  CLI::App* cmd = app.add_subcommand("serve", "Request-level serving simulation: TTFT, TPOT, SLO attainment, goodput");
  cmd->footer(
      "Examples:\n"
      "  clustersim serve --model configs/serve/opt-13b.json --cluster a100-hdr --profile a100 \\\n"
      "      --deployment configs/serve/distserve-opt-13b-deployment.json \\\n"
      "      --workload configs/serve/sharegpt-like.json --slo-ttft 0.2 --slo-tpot 0.1 --goodput\n"
      "  clustersim serve --model llama-3-70b --cluster a100-hdr --deployment configs/serve/llama-3-70b-pd-64.json \\\n"
      "      --workload configs/serve/azure-conv-2023-like.json --slo-ttft 1 --slo-tpot 0.1 --format json\n"
      "  clustersim serve --model llama-3-70b --cluster a100-hdr --deployment configs/serve/llama-3-70b-pd-64.json \\\n"
      "      --workload configs/serve/azure-conv-2023-like.json --slo-ttft 1 --slo-tpot 0.1 --network flows");
  cmd->add_option("--model", o->model, "Hugging Face config.json path, inline JSON, or preset")->required();
  cmd->add_option("--cluster", o->cluster, "Cluster preset or JSON file")->required();
  cmd->add_option("--deployment", o->deployment, "Deployment JSON (docs/serve.md), path or inline")->required();
  cmd->add_option("--workload", o->workload, "Workload JSON: synthetic arrivals or a trace (docs/serve.md)")->required();
  cmd->add_option("--profile", o->profile, "Profile file or shipped name (default: the cluster's GPU)");
  cmd->add_option("--rate", o->rate, "Request rate, req/s (overrides the workload's; a trace is time-scaled)")
      ->check(positive_number("requests per second"));
  cmd->add_option("--slo-ttft", o->slo_ttft_s, "TTFT target, seconds")->check(CLI::NonNegativeNumber);
  cmd->add_option("--slo-tpot", o->slo_tpot_s, "TPOT target, seconds")->check(CLI::NonNegativeNumber);
  cmd->add_option("--slo-share", o->slo_share, "Share of requests that must meet the targets (default 0.9)")
      ->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--slo-rule", o->slo_rule,
                  "How --slo-share is counted: joint (default: requests meeting both targets) or separate "
                  "(DistServe: the share meeting TTFT and the share meeting TPOT each reach it)")
      ->check(CLI::IsMember({"joint", "separate"}));
  cmd->add_option("--network", o->network,
                  "How inter-instance transfers (KV hand-offs) are timed: closed-form (default: priced per transfer, "
                  "FIFO per instance) or flows (SimGrid flows on the cluster's rail fat-tree, sharing links)")
      ->check(CLI::IsMember({"closed-form", "flows"}));
  cmd->add_flag("--goodput", o->goodput, "Bisect the highest rate meeting the SLO (a simulation per step)");
  cmd->add_option("--perfetto", o->perfetto, "Write a Perfetto/Chrome trace of --trace-window to this file")
      ->check(writable_file());
  cmd->add_option("--requests-csv", o->requests_csv, "Write one row per request (arrival, lengths, TTFT, TPOT, E2E)");
  cmd->add_option("--trace-window", o->window, "BEGIN,END seconds of simulated time to trace")->delimiter(',')->expected(2);
  cmd->add_option("--seed", o->seed, "Seed of the speculative-acceptance draws");
  add_format_option(*cmd, o->format);
  cmd->callback([o] { run(*o); });
}

}  // namespace clustersim::cli
