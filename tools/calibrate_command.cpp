#include "tools/calibrate_command.hpp"

#include <fmt/format.h>

#include <cctype>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>

#include "calibrate/backend.hpp"
#include "tools/calibrate_replay_command.hpp"
#include "calibrate/calibration_run.hpp"
#include "tools/cli_common.hpp"
#include "calibrate/record_file_writer.hpp"
#include "calibrate/sweeps.hpp"
#include "traces/measurement_import.hpp"
#include "models/inputs/preset_path.hpp"
#include "calibrate/profile_builder.hpp"
#include "models/cost/profile_json.hpp"
#include "models/cost/record_json.hpp"

namespace clustersim::cli {

namespace {

// Fits meeting these are "ok" in the report; the acceptance targets of our shipped profiles.
constexpr double kGoodMape = 0.10;
constexpr double kGoodLooMape = 0.15;
constexpr std::int64_t kEnoughPoints = 6;

struct ImportOptions {
  std::string input;
  std::string output;
};

struct FitOptions {
  std::vector<std::string> inputs;
  std::string output;
  std::string name;
  std::string gpu;
  std::string cluster;
};

struct RunOptions {
  std::string backend = "cpu";
  std::string suite = "all";
  int gpus = 0;  // 0: 8 for cuda, 2 for cpu
  std::vector<std::string> models;
  int warmup = -1;
  int iterations = -1;
  bool resume = false;
  bool list = false;
  std::string output;
};

struct ReportOptions {
  std::string profile;
  Format format = Format::kTable;
};


// A records file of ours (JSON whose "schema" says so), or anything the importers read.
RecordSet read_measurements(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  char first = 0;
  while (in && in.get(first) && std::isspace(static_cast<unsigned char>(first))) {
  }
  if (in && first == '{') {
    in.seekg(0);
    nlohmann::json doc = nlohmann::json::parse(in, nullptr, /*allow_exceptions=*/false);
    if (doc.is_object() && doc.value("schema", "") == kRecordsSchema) return load_record_set(path);
  }
  return import_measurement_file(path);
}

void run_import(const ImportOptions& o) {
  RecordSet set = import_measurement_file(o.input);
  std::cerr << fmt::format("{}: {} record(s) from {} source(s)\n", o.input, set.records.size(),
                           set.sources.size());
  write_output(o.output, record_set_to_json(set).dump(2) + "\n");
}

void run_fit(const FitOptions& o) {
  std::vector<std::pair<std::string, RecordSet>> sets;
  for (const auto& input : o.inputs) {
    sets.emplace_back(input, read_measurements(input));
    std::cerr << fmt::format("read {}: {} record(s)\n", input, sets.back().second.records.size());
  }
  calibrate::ProfileBuildOptions options;
  options.name = o.name.empty() ? std::filesystem::path(o.output.empty() ? "profile" : o.output).stem().string()
                                : o.name;
  options.gpu = o.gpu;
  options.created_by = "clustersim calibrate fit";
  if (!o.cluster.empty()) {
    Diagnostics diag;
    options.cluster = load_cluster(o.cluster, diag);
    print_warnings(diag);
  }
  Profile profile = calibrate::build_profile(calibrate::merge_record_sets(sets), options);
  std::cerr << fmt::format("{} fit(s)\n", profile.fits.size());
  write_output(o.output, profile_to_json(profile).dump(2) + "\n");
}

void run_run(const RunOptions& o) {
  std::vector<calibrate::Suite> suites;
  try {
    suites = calibrate::suites_from_string(o.suite);
  } catch (const std::invalid_argument& e) {
    throw UsageError(e.what());
  }
  const bool cpu = o.backend == "cpu";
  calibrate::BackendOptions backend_options;
  backend_options.gpus = o.gpus > 0 ? o.gpus : (cpu ? 2 : 8);
  backend_options.warmup_iterations = o.warmup >= 0 ? o.warmup : (cpu ? 2 : 10);
  backend_options.iterations = o.iterations > 0 ? o.iterations : (cpu ? 5 : 50);
  calibrate::SweepOptions sweep;
  sweep.gpus = backend_options.gpus;
  if (!o.models.empty()) sweep.models = o.models;
  calibrate::BackendRegistry registry;
  calibrate::register_builtin_backends(registry);
  std::unique_ptr<calibrate::Backend> backend;
  try {
    backend = registry.create(o.backend, backend_options);
  } catch (const calibrate::BackendUnavailable& e) {
    throw UsageError(fmt::format("calibrate run --backend {}: {}", o.backend, e.what()));
  } catch (const std::invalid_argument& e) {
    throw UsageError(e.what());
  }
  sweep.scale = backend->scale();
  std::vector<calibrate::Suite> runnable;
  for (calibrate::Suite s : suites) {
    if (backend->supports(s)) {
      runnable.push_back(s);
    } else if (o.suite != "all") {
      throw UsageError(fmt::format("calibrate run --backend {}: suite {} is not implemented there yet",
                                   o.backend, calibrate::to_string(s)));
    } else {
      std::cerr << fmt::format("calibrate run: backend {} has no {} suite yet, skipping it\n",
                               o.backend, calibrate::to_string(s));
    }
  }
  suites = runnable;
  const std::vector<calibrate::SweepCase> cases = calibrate::build_sweep(suites, sweep);
  if (o.list) {
    for (const auto& c : cases) std::cout << c.label << '\n';
    return;
  }
  if (o.output.empty()) throw UsageError("calibrate run needs -o <records.json>");
  calibrate::RecordFileWriter writer(o.output, o.resume);
  std::cerr << fmt::format("calibrate run: backend {}, suite {}, {} case(s), {} warm-up + {} timed "
                           "iteration(s) each, writing {}\n",
                           backend->name(), o.suite, cases.size(), backend_options.warmup_iterations,
                           backend_options.iterations, o.output);
  const calibrate::RunSummary summary = calibrate::run_calibration(*backend, cases, writer, std::cerr);
  std::cerr << fmt::format("calibrate run: {} measured, {} already in {}, {} record(s)\n",
                           summary.measured, summary.skipped, o.output, summary.records);
}

std::string status_of(const Fit& f) {
  if (f.origin == FitOrigin::kRooflineDefault) return "ROOFLINE DEFAULT";
  std::vector<std::string> why;
  if (f.error.points < kEnoughPoints) {
    why.push_back(fmt::format("{} point{}", f.error.points, f.error.points == 1 ? "" : "s"));
  }
  if (f.error.mape > kGoodMape) why.push_back("MAPE > 10 %");
  if (!f.error.loo_mape) {
    why.push_back("no LOO");
  } else if (*f.error.loo_mape > kGoodLooMape) {
    why.push_back("LOO > 15 %");
  }
  if (why.empty()) return "ok";
  std::string s = "WEAK:";
  for (const auto& w : why) s += " " + w + ";";
  s.pop_back();
  return s;
}

std::string range_text(const Fit& f) {
  std::string out;
  for (const auto& [variable, r] : f.ranges) {
    out += fmt::format("{}{} {:.4g}..{:.4g}", out.empty() ? "" : ", ", variable, r.min, r.max);
  }
  return out.empty() ? "-" : out;
}

std::string percent(double fraction) { return fmt::format("{:.1f}", 100.0 * fraction); }

void run_report(const ReportOptions& o) {
  std::string path = resolve_input(o.profile, "profiles", "--profile");
  Profile p = load_profile(path);
  std::vector<bool> used(p.measurements.records.size(), false);
  for (const auto& f : p.fits) {
    for (std::size_t i : f.records) used[i] = true;
  }
  std::vector<std::size_t> unused;
  for (std::size_t i = 0; i < used.size(); ++i) {
    if (!used[i]) unused.push_back(i);
  }
  if (o.format == Format::kJson) {
    nlohmann::ordered_json j;
    j["profile"] = o.profile;
    j["gpu"] = p.gpu;
    nlohmann::ordered_json fits = nlohmann::ordered_json::array();
    for (const auto& f : p.fits) {
      nlohmann::ordered_json row;
      row["id"] = f.id;
      row["model"] = model_name(f.model);
      row["origin"] = to_string(f.origin);
      row["points"] = f.error.points;
      row["mape"] = f.error.mape;
      row["loo_mape"] = f.error.loo_mape ? nlohmann::ordered_json(*f.error.loo_mape) : nlohmann::ordered_json();
      row["max_ape"] = f.error.max_ape;
      row["range"] = range_text(f);
      row["status"] = status_of(f);
      row["note"] = f.note;
      fits.push_back(row);
    }
    j["fits"] = fits;
    j["records_not_fitted"] = unused;
    std::cout << j.dump(2) << '\n';
    return;
  }
  std::cout << fmt::format("profile {} ({}): {} record(s), {} fit(s)\n\n", o.profile, p.gpu,
                           p.measurements.records.size(), p.fits.size());
  std::cout << fmt::format("{:<40} {:<24} {:>6} {:>7} {:>7} {:>7}  {:<22} {}\n", "fit", "model",
                           "points", "MAPE%", "LOO%", "max%", "status", "fitted on");
  for (const auto& f : p.fits) {
    bool roofline = f.origin == FitOrigin::kRooflineDefault;
    std::cout << fmt::format("{:<40} {:<24} {:>6} {:>7} {:>7} {:>7}  {:<22} {}\n", f.id,
                             model_name(f.model), roofline ? "-" : std::to_string(f.error.points),
                             roofline ? "-" : percent(f.error.mape),
                             roofline || !f.error.loo_mape ? "-" : percent(*f.error.loo_mape),
                             roofline ? "-" : percent(f.error.max_ape), status_of(f), range_text(f));
  }
  bool any_note = false;
  for (const auto& f : p.fits) {
    if (f.note.empty()) continue;
    if (!any_note) std::cout << "\nnotes:\n";
    any_note = true;
    std::cout << fmt::format("  {}: {}\n", f.id, f.note);
  }
  if (!unused.empty()) {
    std::cout << fmt::format("\n{} record(s) not used by any fit (single figures or no fitter):", unused.size());
    for (std::size_t i : unused) {
      const auto& r = p.measurements.records[i];
      std::cout << fmt::format(" {}{}", r.source, r.label.empty() ? "" : "/" + r.label);
    }
    std::cout << '\n';
  }
}

}  // namespace

void register_calibrate_command(CLI::App& app) {
  CLI::App* cmd = app.add_subcommand("calibrate", "Measure or import measurements, fit cost models, report fits");
  cmd->require_subcommand(1);

  auto imp = std::make_shared<ImportOptions>();
  CLI::App* import = cmd->add_subcommand(
      "import", "Read an nccl-tests log or -J JSON, a PyTorch profiler trace, or a published table");
  import->footer(
      "Example:\n"
      "  clustersim calibrate import examples/all_reduce_perf.log -o all_reduce.records.json\n"
      "  clustersim calibrate import ../shared/reference/kineto/hta_a100_80gb_rank0of16.json.gz \\\n"
      "      -o kineto.records.json");
  import->add_option("input", imp->input, "Measurement file")->required();
  import->add_option("-o,--output", imp->output, "Records file to write (default: stdout)")->check(writable_file());
  import->callback([imp] { run_import(*imp); });

  auto fit = std::make_shared<FitOptions>();
  CLI::App* fitc = cmd->add_subcommand("fit", "Fit cost models from records into a profile");
  fitc->footer(
      "Example:\n"
      "  clustersim calibrate fit configs/measurements/h100/*.csv --cluster h100-ndr \\\n"
      "      --name h100 -o h100.json");
  fitc->add_option("inputs", fit->inputs, "Records files or importable measurement files")->required();
  fitc->add_option("-o,--output", fit->output, "Profile to write (default: stdout)")->check(writable_file());
  fitc->add_option("--name", fit->name, "Profile name (default: the output file's stem)");
  fitc->add_option("--gpu", fit->gpu, "GPU name (default: the first source's)");
  fitc->add_option("--cluster", fit->cluster,
                   "Cluster preset or file: SM count, GPUs per node, and roofline defaults for "
                   "what no measurement covers (flagged in the profile)");
  fitc->callback([fit] { run_fit(*fit); });

  auto run = std::make_shared<RunOptions>();
  CLI::App* runc = cmd->add_subcommand(
      "run", "Measure GEMM, collectives, overlap, MoE and attention on this machine into records");
  runc->footer(
      "Records are rewritten after every measured case (temporary file + rename), so an\n"
      "interrupted run leaves a valid file; --resume continues it. Progress goes to stderr.\n"
      "Example:\n"
      "  clustersim calibrate run --backend cpu --suite all -o cpu.records.json\n"
      "  clustersim calibrate run --backend cuda --suite collectives --gpus 8 \\\n"
      "      -o h100.records.json   # synopsis: needs 8 GPUs\n"
      "  clustersim calibrate fit cpu.records.json -o cpu-profile.json");
  runc->add_option("--backend", run->backend, "cpu or cuda")
      ->check(CLI::IsMember({"cpu", "cuda"}));
  runc->add_option("--suite", run->suite, "gemm, collectives, overlap, moe, attention, memory or all");
  runc->add_option("--gpus", run->gpus,
                   "Ranks for collectives, overlap (TP) and MoE (EP) (default: 8 cuda, 2 cpu)")
      ->check(CLI::Range(1, 1024));
  runc->add_option("--models", run->models,
                   "Model presets whose shapes the GPU sweeps use (default: llama-3-8b llama-3-70b)");
  runc->add_option("--warmup", run->warmup, "Warm-up iterations per case (default: 10 cuda, 2 cpu)")
      ->check(CLI::Range(0, 100000));
  runc->add_option("--iterations", run->iterations,
                   "Timed iterations per case, all kept (default: 50 cuda, 5 cpu)")
      ->check(CLI::Range(1, 100000));
  runc->add_flag("--resume", run->resume, "Keep the records already in -o and skip their cases");
  runc->add_flag("--list", run->list, "Print the sweep's case labels and exit");
  runc->add_option("-o,--output", run->output, "Records file to write")->check(writable_file());
  runc->callback([run] { run_run(*run); });

  auto rep = std::make_shared<ReportOptions>();
  CLI::App* report = cmd->add_subcommand(
      "report", "Table of a profile's fits: inputs' range, MAPE, leave-one-out error, warnings");
  report->footer(
      "Example:\n"
      "  clustersim calibrate report h100\n"
      "  clustersim calibrate report configs/profiles/h800.json --format json");
  report->add_option("profile", rep->profile, "Profile file or shipped profile name")->required();
  add_format_option(*report, rep->format);
  report->callback([rep] { run_report(*rep); });

  register_calibrate_replay_command(*cmd);
}

}  // namespace clustersim::cli
