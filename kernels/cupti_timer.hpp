#pragma once
// CUPTI activity collection for timing (kernels/ only). One session at a time: CUPTI allows a
// single activity subscriber per process on CUDA <= 13.2, so a session cannot start under
// Nsight, Kineto or compute-sanitizer; the harness then falls back to CUDA events.
#include <cstdint>
#include <map>
#include <memory>

namespace clustersim::kernels::detail {

class CuptiSession {
 public:
  // Enables CONCURRENT_KERNEL, MEMCPY, MEMCPY2 (peer) and EXTERNAL_CORRELATION records; null
  // when CUPTI cannot be used here.
  static std::unique_ptr<CuptiSession> try_start();
  ~CuptiSession();
  CuptiSession(const CuptiSession&) = delete;
  CuptiSession& operator=(const CuptiSession&) = delete;

  // Launches between begin(id) and end() are attributed to iteration `id`.
  void begin(std::uint64_t id);
  void end();
  // Flushes every buffer, disables collection and returns each iteration's span (first start
  // to last end over its kernels and copies). Throws std::runtime_error when CUPTI reports
  // dropped records: the samples would be wrong.
  std::map<std::uint64_t, double> finish();

 private:
  CuptiSession() = default;
  bool finished_ = false;
};

}  // namespace clustersim::kernels::detail
