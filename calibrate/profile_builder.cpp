#include "calibrate/profile_builder.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <set>
#include <tuple>

#include "calibrate/alpha_beta_fitter.hpp"
#include "calibrate/gemm_fitter.hpp"
#include "calibrate/linear_cost_fitter.hpp"
#include "models/cost/record_json.hpp"
#include "calibrate/sample_statistics.hpp"
#include "calibrate/serve_iteration_fitter.hpp"

namespace clustersim::calibrate {

namespace {

// GEMM libraries that run on CPU cores: their records get the CPU form (fit_gemm_cpu).
bool cpu_gemm_library(const std::string& implementation) {
  for (const char* name : {"eigen", "openblas", "mkl", "onednn", "blis"}) {
    if (implementation == name) return true;
  }
  return false;
}

// Output precision of a GEMM with this input dtype: FP8 GEMMs write BF16.
double output_bytes_per_element(Dtype d) { return d == Dtype::kFp8 ? 2.0 : bytes_per_element(d); }

void widen(std::map<std::string, FitRange>& ranges, const std::string& variable, double value) {
  auto [it, inserted] = ranges.try_emplace(variable, FitRange{value, value});
  if (!inserted) {
    it->second.min = std::min(it->second.min, value);
    it->second.max = std::max(it->second.max, value);
  }
}

// A nonnegative fit can zero a coefficient that the cost form needs positive when the records
// are noisy (a loaded machine). Then the fit is redone with that feature alone, and `note` says
// so. Without this, the builder would write a profile that its own reader rejects.
LinearCostFit fit_keeping_positive(const std::vector<LinearPoint>& points, std::size_t required, std::string& note,
                                   const std::string& why) {
  LinearCostFit lin = fit_linear_cost(points);
  if (lin.coefficients[required] > 0) return lin;
  std::vector<LinearPoint> alone;
  for (const auto& p : points) alone.push_back({{p.features[required]}, p.time_s});
  const LinearCostFit one = fit_linear_cost(alone);
  lin.coefficients.assign(points.front().features.size(), 0.0);
  lin.coefficients[required] = one.coefficients[0];
  lin.error = one.error;
  note = why;
  return lin;
}

std::string weak_note(const FitError& e) {
  if (!e.loo_mape) return "weak: too few points for a leave-one-out error";
  return {};
}

class Builder {
 public:
  Builder(RecordSet records, const ProfileBuildOptions& options) : options_(options) {
    profile_.measurements = std::move(records);
    profile_.name = options.name;
    profile_.gpu = options.gpu;
    if (profile_.gpu.empty() && !profile_.measurements.sources.empty()) {
      profile_.gpu = profile_.measurements.sources.front().gpu;
    }
    profile_.created_by = options.created_by;
    for (const auto& s : profile_.measurements.sources) sources_[s.id] = &s;
  }

  Profile build() {
    group();
    fit_collectives();
    fit_memory();
    fit_gemms();
    fit_grouped_gemms();
    fit_attention();
    fit_decode();
    fit_all_to_all();
    fit_overlap();
    fit_serve_iterations();
    if (options_.cluster) add_roofline_defaults(*options_.cluster);
    diag_.throw_if_errors();
    return std::move(profile_);
  }

 private:
  const RecordSource& source_of(std::size_t i) const {
    return *sources_.at(profile_.measurements.records[i].source);
  }

  void group() {
    const auto& records = profile_.measurements.records;
    for (std::size_t i = 0; i < records.size(); ++i) {
      const auto& shape = records[i].shape;
      if (auto* c = std::get_if<CollectiveRecord>(&shape)) {
        collectives_[{c->kind, c->algorithm, c->ranks, c->nodes}].push_back(i);
      } else if (auto* g = std::get_if<GemmRecord>(&shape)) {
        (grouped_gemm_implementation(g->implementation) ? grouped_gemms_ : gemms_)[g->dtype].push_back(i);
      } else if (auto* a = std::get_if<AttentionRecord>(&shape)) {
        if (a->pass == AttentionPass::kDecode) {
          decode_.push_back(i);
        } else {
          attention_[{a->pass, a->causal, a->head_dim}].push_back(i);
        }
      } else if (auto* m = std::get_if<AllToAllRecord>(&shape)) {
        all_to_all_[{m->phase, m->implementation}].push_back(i);
      } else if (auto* o = std::get_if<OverlapRecord>(&shape)) {
        overlap_[{o->pattern, o->variant}].push_back(i);
      } else if (auto* mem = std::get_if<MemoryRecord>(&shape)) {
        // Kernels far below STREAM's rate (kOwnFitMemoryKernels): a fit of their own each.
        if (own_fit_memory_kernel(mem->kernel) >= 0) {
          own_kernels_[mem->kernel].push_back(i);
        } else {
          memory_.push_back(i);
        }
      } else if (auto* s = std::get_if<ServeIterationRecord>(&shape)) {
        // FP16 and BF16 run on the same tensor cores, as for GEMMs.
        const Dtype d = s->dtype == Dtype::kBf16 ? Dtype::kFp16 : s->dtype;
        serve_iterations_[{s->model, s->tensor_parallel_size, s->phase, d}].push_back(i);
      }
    }
  }

  template <class T>
  const T& shape(std::size_t i) const {
    return std::get<T>(profile_.measurements.records[i].shape);
  }
  double time(std::size_t i) const { return representative_time_s(profile_.measurements.records[i]); }

  void add(Fit fit) {
    if (fit.note.empty()) fit.note = weak_note(fit.error);
    profile_.fits.push_back(std::move(fit));
  }

  void fit_collectives() {
    for (const auto& [key, indices] : collectives_) {
      const auto& [kind, algorithm, ranks, nodes] = key;
      std::vector<SizeTimePoint> points;
      Fit fit;
      for (std::size_t i : indices) points.push_back({shape<CollectiveRecord>(i).size_bytes, time(i)});
      if (points.size() < 2) continue;  // one figure cannot give latency and bandwidth
      AlphaBetaFit ab = fit_piecewise_alpha_beta(points);
      fit.id = fmt::format("{}/{}/{}x{}", to_string(kind), algorithm, ranks, nodes);
      fit.model = CollectiveFit{kind, algorithm, ranks, nodes, ab.segments};
      fit.error = ab.error;
      for (std::size_t k = 0; k < indices.size(); ++k) {
        if (std::find(ab.excluded.begin(), ab.excluded.end(), k) == ab.excluded.end()) {
          fit.records.push_back(indices[k]);
          widen(fit.ranges, "size_bytes", points[k].size_bytes);
        }
      }
      if (!ab.excluded.empty()) {
        std::string which;
        for (std::size_t k : ab.excluded) {
          which += fmt::format("{}{} B ({:.4g} us)", which.empty() ? "" : ", ", points[k].size_bytes,
                               points[k].time_s * 1e6);
        }
        fit.note = fmt::format(
            "{} point(s) left out as not monotone (more than {}x slower than a larger message): {}",
            ab.excluded.size(), kNonMonotoneFactor, which);
      }
      add(std::move(fit));
    }
  }

  // t = t0 + bytes / BW over memory-bound kernels; one figure (a published bandwidth) gives
  // BW alone. A sweep over sizes (the harness's memory suite) is fitted piecewise, as
  // collectives are: a CPU copies several times faster in cache than beyond it, which one
  // line cannot follow. The bandwidth of the largest sizes prices GEMMs' memory term.
  void fit_memory() {
    if (!memory_.empty()) {
      const double per_byte = fit_memory_curve(memory_, "memory");
      if (per_byte > 0) memory_bandwidth_ = 1.0 / per_byte;
    }
    for (const auto& [kernel, indices] : own_kernels_) fit_memory_curve(indices, fmt::format("memory/{}", kernel));
  }

  // Adds the fit `id` of these memory records; returns its seconds per byte at the largest sizes.
  double fit_memory_curve(const std::vector<std::size_t>& indices, const std::string& id) {
    Fit fit;
    fit.id = id;
    std::set<double> sizes;
    for (std::size_t i : indices) {
      sizes.insert(shape<MemoryRecord>(i).bytes);
      widen(fit.ranges, "bytes", shape<MemoryRecord>(i).bytes);
      fit.records.push_back(i);
    }
    MemoryFit m;
    if (sizes.size() >= 2 * static_cast<std::size_t>(kMinPointsPerSegment)) {
      std::vector<SizeTimePoint> points;
      for (std::size_t i : indices) points.push_back({shape<MemoryRecord>(i).bytes, time(i)});
      AlphaBetaFit ab = fit_piecewise_alpha_beta(points);
      m.segments = ab.segments;
      fit.error = ab.error;
      if (!ab.excluded.empty()) {
        fit.note = fmt::format("{} point(s) more than {}x slower than a larger copy left out", ab.excluded.size(),
                               kNonMonotoneFactor);
      }
    } else {
      const bool with_launch = sizes.size() >= 2;
      std::vector<LinearPoint> points;
      for (std::size_t i : indices) {
        const double bytes = shape<MemoryRecord>(i).bytes;
        points.push_back({with_launch ? std::vector<double>{1.0, bytes} : std::vector<double>{bytes}, time(i)});
      }
      LinearCostFit lin = fit_linear_cost(points);
      m.segments = {{0.0, with_launch ? lin.coefficients[0] : 0.0, lin.coefficients.back()}};
      fit.error = lin.error;
    }
    const double per_byte = m.segments.back().seconds_per_byte;
    fit.model = std::move(m);
    add(std::move(fit));
    return per_byte;
  }

  std::optional<std::int64_t> sm_count_for(const std::vector<std::size_t>& indices) {
    for (std::size_t i : indices) {
      if (source_of(i).sm_count) return source_of(i).sm_count;
    }
    if (options_.cluster) return options_.cluster->gpu.sm_count;
    return std::nullopt;
  }

  // t = experts x per_expert_s + FLOPs / flops_per_s over the grouped records of a dtype: the
  // per-expert term needs records of different expert counts or sizes, else the rate alone.
  void fit_grouped_gemms() {
    for (const auto& [dtype, indices] : grouped_gemms_) {
      std::vector<LinearPoint> points;
      std::set<std::int64_t> experts;
      Fit fit;
      for (std::size_t i : indices) {
        const auto& g = shape<GemmRecord>(i);
        const double flops = 2.0 * static_cast<double>(g.m) * static_cast<double>(g.n) * static_cast<double>(g.k) *
                             static_cast<double>(g.batch);
        points.push_back({{static_cast<double>(g.batch), flops}, time(i)});
        experts.insert(g.m * 1000003 + g.batch);
        widen(fit.ranges, "rows_per_expert", static_cast<double>(g.m));
        widen(fit.ranges, "experts", static_cast<double>(g.batch));
        fit.records.push_back(i);
      }
      GroupedGemmFit model{dtype, 0.0, 1.0};
      if (experts.size() >= 2) {
        LinearCostFit lin = fit_keeping_positive(points, 1, fit.note, "per-expert cost fitted to 0: the rate alone");
        model.per_expert_s = lin.coefficients[0];
        model.flops_per_s = 1.0 / lin.coefficients[1];
        fit.error = lin.error;
      } else {
        for (auto& p : points) p.features = {p.features[1]};
        LinearCostFit lin = fit_linear_cost(points);
        model.flops_per_s = 1.0 / lin.coefficients[0];
        fit.error = lin.error;
        fit.note = "weak: one shape, so only the rate is fitted; no per-expert cost";
      }
      fit.id = fmt::format("grouped_gemm/{}", to_string(dtype));
      fit.model = model;
      add(std::move(fit));
    }
  }

  void fit_gemms() {
    for (const auto& [dtype, indices] : gemms_) {
      auto sms = sm_count_for(indices);
      if (!sms) {
        const auto& r = profile_.measurements.records[indices.front()];
        diag_.error("records", fmt::format("/sources/{}", r.source),
                    fmt::format("GEMM records need the GPU's SM count for the wave model"),
                    "give system.sm_count in the source, or --cluster");
        continue;
      }
      std::vector<GemmPoint> points;
      Fit fit;
      for (std::size_t i : indices) {
        const auto& g = shape<GemmRecord>(i);
        GemmPoint p;
        p.shape = {g.m, g.n, g.k, g.batch};
        if (g.tile_m && g.tile_n) p.tile = GemmTile{*g.tile_m, *g.tile_n, g.split_k.value_or(1)};
        p.input_bytes_per_element = bytes_per_element(g.dtype);
        p.output_bytes_per_element = output_bytes_per_element(g.dtype);
        p.time_s = time(i);
        points.push_back(p);
        widen(fit.ranges, "m", static_cast<double>(g.m));
        widen(fit.ranges, "n", static_cast<double>(g.n));
        widen(fit.ranges, "k", static_cast<double>(g.k));
        fit.records.push_back(i);
      }
      fit.id = fmt::format("gemm/{}", to_string(dtype));
      if (std::all_of(indices.begin(), indices.end(),
                      [&](std::size_t i) { return cpu_gemm_library(shape<GemmRecord>(i).implementation); })) {
        GemmWaveFit g = fit_gemm_cpu(points, memory_bandwidth_);
        const GemmFitParameters& q = g.parameters;
        fit.model = GemmFit{dtype, q};
        fit.error = g.error;
        fit.note = fmt::format(
            "CPU: one rank thread per GEMM at {:.4g} FLOP/s, {}; {}", q.sm_flops_per_s,
            q.packing_bytes_per_s > 0 ? fmt::format("packing A + B + C at {:.4g} B/s", q.packing_bytes_per_s)
                                      : std::string("no packing term (not earned)"),
            g.bandwidth_measured ? fmt::format("memory term at the measured {:.4g} B/s", q.memory_bytes_per_s)
                                 : fmt::format("no memory term ({:.0e} B/s): no bandwidth measured", q.memory_bytes_per_s));
        add(std::move(fit));
        continue;
      }
      if (points.size() < kGemmFullFitPoints) {
        std::optional<double> bandwidth = memory_bandwidth_;
        if (!bandwidth && options_.cluster) bandwidth = options_.cluster->gpu.hbm_bandwidth_bytes_per_s;
        if (!bandwidth) {
          diag_.error("records", fmt::format("/sources/{}", profile_.measurements.records[indices.front()].source),
                      "too few GEMM records to fit the memory term, and no memory bandwidth is known",
                      "add a memory record (STREAM copy), or give --cluster");
          continue;
        }
        GemmWaveFit g = fit_gemm_rate_only(points, *sms, *bandwidth);
        fit.model = GemmFit{dtype, g.parameters};
        fit.error = g.error;
        fit.note = fmt::format(
            "weak: {} point(s), so only the SM rate is fitted; no launch or wave cost; memory term at "
            "{:.4g} B/s ({})",
            points.size(), *bandwidth, memory_bandwidth_ ? "measured" : "cluster HBM spec");
        add(std::move(fit));
        continue;
      }
      GemmWaveFit g = fit_gemm_waves(points, *sms, memory_bandwidth_);
      fit.model = GemmFit{dtype, g.parameters};
      fit.error = g.error;
      if (g.bandwidth_measured) {
        fit.note = "memory term at the measured memory bandwidth (fit \"memory\"), not fitted";
      } else if (!g.bandwidth_identified) {
        fit.note = "no memory-bound point: memory bandwidth is not identified by these records";
      }
      add(std::move(fit));
    }
  }

  void fit_attention() {
    for (const auto& [key, indices] : attention_) {
      const auto& [pass, causal, head_dim] = key;
      std::set<std::int64_t> lengths;
      for (std::size_t i : indices) lengths.insert(shape<AttentionRecord>(i).seq_kv);
      if (lengths.size() < 2) continue;  // one sequence length cannot give the curve
      std::vector<LinearPoint> points;
      Fit fit;
      for (std::size_t i : indices) {
        const auto& a = shape<AttentionRecord>(i);
        double flops = attention_pass_flops(a);
        points.push_back({{flops, flops / static_cast<double>(a.seq_kv)}, time(i)});
        widen(fit.ranges, "seq_kv", static_cast<double>(a.seq_kv));
        fit.records.push_back(i);
      }
      LinearCostFit lin = fit_keeping_positive(
          points, 0, fit.note, "no positive long-sequence cost beside the saturation term: one rate for every length");
      fit.id = fmt::format("attention/{}/{}/d{}", to_string(pass), causal ? "causal" : "full", head_dim);
      fit.model = AttentionFit{pass, causal, head_dim, {lin.coefficients[0], lin.coefficients[1]}};
      fit.error = lin.error;
      add(std::move(fit));
    }
  }

  void fit_decode() {
    if (decode_.size() < 2) return;
    std::vector<LinearPoint> points;
    Fit fit;
    for (std::size_t i : decode_) {
      double kv = decode_kv_bytes(shape<AttentionRecord>(i));
      points.push_back({{1.0, kv}, time(i)});
      widen(fit.ranges, "kv_bytes", kv);
      fit.records.push_back(i);
    }
    LinearCostFit lin =
        fit_keeping_positive(points, 1, fit.note, "no positive per-byte cost beside the launch term: per-byte cost alone");
    fit.id = "decode_attention";
    fit.model = DecodeAttentionFit{lin.coefficients[0], lin.coefficients[1]};
    fit.error = lin.error;
    add(std::move(fit));
  }

  std::optional<int> gpus_per_node_for(const std::vector<std::size_t>& indices) {
    for (std::size_t i : indices) {
      if (source_of(i).gpus_per_node) return static_cast<int>(*source_of(i).gpus_per_node);
    }
    if (options_.cluster) return static_cast<int>(options_.cluster->node.gpus_per_node);
    return std::nullopt;
  }

  void fit_all_to_all() {
    for (const auto& [key, indices] : all_to_all_) {
      const auto& [phase, implementation] = key;
      auto gpn = gpus_per_node_for(indices);
      if (!gpn) {
        diag_.error("records", fmt::format("/sources/{}", profile_.measurements.records[indices.front()].source),
                    "MoE all-to-all records need GPUs per node to split NVLink and network bytes",
                    "give system.gpus_per_node in the source, or --cluster");
        continue;
      }
      std::vector<LinearPoint> points;
      Fit fit;
      for (std::size_t i : indices) {
        const auto& a = shape<AllToAllRecord>(i);
        points.push_back({all_to_all_features(a.bytes_per_rank, a.imbalance, a.ranks, *gpn), time(i)});
        widen(fit.ranges, "ranks", a.ranks);
        widen(fit.ranges, "bytes_per_rank", a.bytes_per_rank);
        fit.records.push_back(i);
      }
      if (points.size() < 2) continue;
      LinearCostFit lin = fit_linear_cost(points);
      fit.id = fmt::format("moe_{}/{}", to_string(phase), implementation);
      fit.model = AllToAllFit{phase, implementation, *gpn, lin.coefficients};
      fit.error = lin.error;
      add(std::move(fit));
    }
  }

  void fit_overlap() {
    for (const auto& [key, indices] : overlap_) {
      const auto& [pattern, variant] = key;
      std::vector<LinearPoint> points;
      Fit fit;
      for (std::size_t i : indices) {
        const auto& o = shape<OverlapRecord>(i);
        points.push_back({overlap_features(o.gemm_alone_s, o.comm_alone_s), time(i)});
        widen(fit.ranges, "comm_over_gemm", o.comm_alone_s / o.gemm_alone_s);
        fit.records.push_back(i);
      }
      LinearCostFit lin = fit_linear_cost(points, {1});
      // Keep the parameters inside what a profile may hold (profile_json.cpp): with the shorter
      // operation a few percent of the longer (CPU runs), the exposed share is poorly determined.
      const double scale = std::clamp(lin.coefficients.at(0), 0.5, 10.0);
      const double exposed = std::clamp(lin.coefficients.at(1), -1.0, 2.0);
      if (scale != lin.coefficients.at(0) || exposed != lin.coefficients.at(1)) {
        fit.note = fmt::format("fitted (longer_scale {:.3g}, shorter_exposed {:.3g}) clamped to "
                               "the allowed ranges: the data do not determine them",
                               lin.coefficients.at(0), lin.coefficients.at(1));
        lin.coefficients.at(0) = scale;
        lin.coefficients.at(1) = exposed;
      }
      fit.id = fmt::format("{}/{}", to_string(pattern), variant);
      fit.model = OverlapFit{pattern, variant, lin.coefficients};
      fit.error = lin.error;
      add(std::move(fit));
    }
  }

  // Whole serving iterations per model, TP degree, phase and dtype (serve_iteration_fitter.hpp).
  void fit_serve_iterations() {
    for (const auto& [key, indices] : serve_iterations_) {
      const auto& [model, tp, phase, dtype] = key;
      std::vector<ServeIterationPoint> points;
      Fit fit;
      for (std::size_t i : indices) {
        const auto& s = shape<ServeIterationRecord>(i);
        points.push_back({s.batch, s.tokens, s.tokens_squared, time(i)});
        widen(fit.ranges, "batch", static_cast<double>(s.batch));
        widen(fit.ranges, "tokens", s.tokens);
        fit.records.push_back(i);
      }
      ServeIterationFitResult r = fit_serve_iteration(points, phase);
      if (r.segments.empty()) continue;  // too few points for three coefficients
      fit.id = fmt::format("serve_iteration/{}/tp{}/{}/{}", model, tp, to_string(phase), to_string(dtype));
      fit.model = ServeIterationFit{model, tp, phase, dtype, r.segments};
      fit.error = r.error;
      add(std::move(fit));
    }
  }

  void add_roofline_defaults(const ClusterSpec& c);

  const ProfileBuildOptions& options_;
  Profile profile_;
  Diagnostics diag_;
  std::map<std::string, const RecordSource*> sources_;
  std::map<std::tuple<CollectiveKind, std::string, int, int>, std::vector<std::size_t>> collectives_;
  std::map<Dtype, std::vector<std::size_t>> gemms_;
  std::map<Dtype, std::vector<std::size_t>> grouped_gemms_;  // implementation "grouped:<kernel>"
  std::map<std::tuple<AttentionPass, bool, std::int64_t>, std::vector<std::size_t>> attention_;
  std::vector<std::size_t> decode_;
  std::vector<std::size_t> memory_;
  std::map<std::string, std::vector<std::size_t>> own_kernels_;  // memory records of kOwnFitMemoryKernels, by kernel
  std::optional<double> memory_bandwidth_;  // measured, bytes/s
  std::map<std::pair<MoePhase, std::string>, std::vector<std::size_t>> all_to_all_;
  std::map<std::pair<OverlapPattern, std::string>, std::vector<std::size_t>> overlap_;
  std::map<std::tuple<std::string, std::int64_t, ServePhase, Dtype>, std::vector<std::size_t>> serve_iterations_;
};

Fit roofline_fit(std::string id, FitModel model, std::string how) {
  Fit f;
  f.id = std::move(id);
  f.origin = FitOrigin::kRooflineDefault;
  f.model = std::move(model);
  f.note = "roofline default, not measured: " + std::move(how);
  return f;
}

void Builder::add_roofline_defaults(const ClusterSpec& c) {
  auto has = [&](auto predicate) {
    return std::any_of(profile_.fits.begin(), profile_.fits.end(), predicate);
  };
  const double sms = static_cast<double>(c.gpu.sm_count);
  for (const auto& [dtype, peak] : c.gpu.peak_dense_flops_per_s) {
    const Dtype d = dtype;  // clang 14 does not capture structured bindings
    if (has([&](const Fit& f) { auto* g = std::get_if<GemmFit>(&f.model); return g && g->dtype == d; })) continue;
    profile_.fits.push_back(roofline_fit(
        fmt::format("gemm/{}", to_string(dtype)),
        GemmFit{dtype, {0.0, peak / sms, 0.0, c.gpu.hbm_bandwidth_bytes_per_s, c.gpu.sm_count}},
        fmt::format("{} peak {:.4g} FLOP/s over {} SMs, HBM {:.4g} B/s", c.name, peak, c.gpu.sm_count,
                    c.gpu.hbm_bandwidth_bytes_per_s)));
  }
  auto peak16 = c.gpu.peak_flops_per_s(Dtype::kBf16);
  if (!peak16) peak16 = c.gpu.peak_flops_per_s(Dtype::kFp16);
  // Attention: only when nothing was measured (a forward+backward curve prices either pass).
  const bool attention_measured = has([](const Fit& f) { return std::holds_alternative<AttentionFit>(f.model); });
  for (AttentionPass pass : {AttentionPass::kForward, AttentionPass::kBackward}) {
    if (attention_measured) break;
    profile_.fits.push_back(roofline_fit(
        fmt::format("attention/{}/any/d128", to_string(pass)),
        AttentionFit{pass, false, 128, {1.0 / *peak16, 0.0}},
        fmt::format("{} dense 16-bit peak {:.4g} FLOP/s", c.name, *peak16)));
  }
  if (!has([](const Fit& f) { return f.id == "memory"; })) {
    profile_.fits.push_back(roofline_fit("memory", MemoryFit{{{0.0, 0.0, 1.0 / c.gpu.hbm_bandwidth_bytes_per_s}}},
                                         fmt::format("{} HBM {:.4g} B/s", c.name, c.gpu.hbm_bandwidth_bytes_per_s)));
  }
  if (!has([](const Fit& f) { return std::holds_alternative<DecodeAttentionFit>(f.model); })) {
    profile_.fits.push_back(roofline_fit("decode_attention",
                                         DecodeAttentionFit{0.0, 1.0 / c.gpu.hbm_bandwidth_bytes_per_s},
                                         fmt::format("{} HBM {:.4g} B/s", c.name, c.gpu.hbm_bandwidth_bytes_per_s)));
  }
  // Ring collectives: per step one link latency; busbw = link bandwidth. A step across the
  // network also pays NCCL's software latency per step (proxy, protocol), which a measured
  // collective inside a node shows as its small-message time over its ring steps; the NIC's
  // hardware latency alone would make small cross-node collectives several times too fast.
  double software_step_s = 0;
  const Fit* software_from = nullptr;
  for (const auto& f : profile_.fits) {
    const auto* cf = std::get_if<CollectiveFit>(&f.model);
    if (!cf || f.origin != FitOrigin::kFitted || cf->nodes != 1 || cf->ranks < 2 || cf->segments.empty()) continue;
    const double steps = (cf->kind == CollectiveKind::kAllReduce ? 2.0 : 1.0) * (cf->ranks - 1);
    const double per_step = cf->segments.front().latency_s / steps;
    if (!software_from || cf->kind == CollectiveKind::kAllReduce) {
      software_step_s = per_step;
      software_from = &f;
      if (cf->kind == CollectiveKind::kAllReduce) break;
    }
  }
  const std::string software_note =
      software_from ? fmt::format(" (NIC {:.3g} s + {:.3g} s of per-step software latency from the measured {})",
                                  c.node.nic_latency_s, software_step_s, software_from->id)
                    : std::string();
  const int gpn = static_cast<int>(c.node.gpus_per_node);
  for (CollectiveKind kind : {CollectiveKind::kAllReduce, CollectiveKind::kAllGather,
                              CollectiveKind::kReduceScatter, CollectiveKind::kAllToAll}) {
    struct Scope {
      int ranks, nodes;
      double latency_s, bandwidth;
      const char* what;
    };
    for (const Scope& s : {Scope{gpn, 1, c.node.nvlink_latency_s, c.node.nvlink_bandwidth_bytes_per_s, "NVLink"},
                           Scope{2, 2, c.node.nic_latency_s + software_step_s, c.node.nic_bandwidth_bytes_per_s,
                                 "NIC"}}) {
      // Only for a scope nothing was measured in: the cost model derives other collectives
      // and group sizes from a measured one by ring scaling.
      if (has([&](const Fit& f) {
            auto* cf = std::get_if<CollectiveFit>(&f.model);
            return cf && f.origin == FitOrigin::kFitted && (cf->nodes > 1) == (s.nodes > 1);
          })) {
        continue;
      }
      double steps = (kind == CollectiveKind::kAllReduce ? 2.0 : 1.0) * (s.ranks - 1);
      double factor = bus_bandwidth_factor(kind, s.ranks);
      profile_.fits.push_back(roofline_fit(
          fmt::format("{}/ring/{}x{}", to_string(kind), s.ranks, s.nodes),
          CollectiveFit{kind, "ring", s.ranks, s.nodes, {{0.0, steps * s.latency_s, factor / s.bandwidth}}},
          fmt::format("ring over {} at {:.4g} B/s, {:.3g} s per step{}", s.what, s.bandwidth, s.latency_s,
                      s.nodes > 1 ? software_note : std::string())));
    }
  }
}

}  // namespace

double representative_time_s(const MeasurementRecord& record) {
  return summarize_samples(record.samples_s).median_s;
}

RecordSet merge_record_sets(const std::vector<std::pair<std::string, RecordSet>>& sets) {
  RecordSet out;
  Diagnostics diag;
  std::map<std::string, std::pair<std::string, nlohmann::json>> seen;  // id -> (file, source)
  for (const auto& [file, set] : sets) {
    std::map<std::string, bool> skip;
    for (const auto& s : set.sources) {
      nlohmann::json j = to_json(s);
      auto [it, inserted] = seen.try_emplace(s.id, file, j);
      if (!inserted) {
        if (it->second.second != j) {
          diag.error(file, "/sources", fmt::format("source id \"{}\" is also used by {} for a different source",
                                                   s.id, it->second.first),
                     "give each source a unique id");
        }
        continue;
      }
      out.sources.push_back(s);
    }
    for (const auto& r : set.records) out.records.push_back(r);
  }
  diag.throw_if_errors();
  return out;
}

Profile build_profile(RecordSet records, const ProfileBuildOptions& options) {
  return Builder(std::move(records), options).build();
}

}  // namespace clustersim::calibrate
