#include "calibrate/calibration_run.hpp"

#include <fmt/format.h>

#include <chrono>

#include "calibrate/sample_statistics.hpp"

namespace clustersim::calibrate {

std::string progress_line(const SweepCase& c, const std::vector<MeasurementRecord>& records) {
  std::string line;
  for (const auto& r : records) {
    const double median_s = summarize_samples(r.samples_s).median_s;
    line += fmt::format("{}median {:.4g} us", line.empty() ? "" : "; ", median_s * 1e6);
    if (const auto* coll = std::get_if<CollectiveRecord>(&r.shape)) {
      const double algbw = algorithm_bandwidth_bytes_per_s(coll->size_bytes, median_s);
      line += fmt::format(" algbw {:.3g} GB/s busbw {:.3g} GB/s", algbw * 1e-9,
                          algbw * bus_bandwidth_factor(coll->kind, coll->ranks) * 1e-9);
    } else if (const auto* gemm = std::get_if<GemmRecord>(&r.shape)) {
      line += fmt::format(" {:.3g} TFLOP/s",
                          2.0 * static_cast<double>(gemm->m * gemm->n) * static_cast<double>(gemm->k) /
                              median_s * 1e-12);
    } else if (const auto* ov = std::get_if<OverlapRecord>(&r.shape)) {
      line += fmt::format(" (gemm {:.4g}, comm {:.4g}, sequential {:.4g} us)", ov->gemm_alone_s * 1e6,
                          ov->comm_alone_s * 1e6, ov->sequential_s * 1e6);
    }
  }
  (void)c;
  return line;
}

RunSummary run_calibration(Backend& backend, const std::vector<SweepCase>& cases,
                           RecordFileWriter& writer, std::ostream& progress) {
  RunSummary summary;
  summary.cases = cases.size();
  std::size_t index = 0;
  for (const SweepCase& c : cases) {
    ++index;
    if (writer.has_case(c.label)) {
      ++summary.skipped;
      continue;
    }
    const RecordSource source = backend.source(c.suite);
    writer.ensure_source(source);
    const auto start = std::chrono::steady_clock::now();
    std::vector<MeasurementRecord> records = backend.measure(c);
    const double wall_s =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    for (std::size_t i = 0; i < records.size(); ++i) {
      records[i].source = source.id;
      records[i].label = records[i].label.empty() ? c.label : c.label + " #" + records[i].label;
    }
    writer.append(records);
    ++summary.measured;
    progress << fmt::format("[{}/{}] {}: {} ({:.2f} s)\n", index, cases.size(), c.label,
                            progress_line(c, records), wall_s)
             << std::flush;
  }
  summary.records = writer.records().records.size();
  return summary;
}

}  // namespace clustersim::calibrate
