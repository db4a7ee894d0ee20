#include "kernels/cupti_timer.hpp"

#include <cupti.h>

#include <cstdlib>
#include <mutex>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/kernel_span.hpp"

namespace clustersim::kernels::detail {

namespace {

constexpr std::size_t kBufferBytes = 8u << 20;
constexpr std::size_t kBufferAlignment = 8;

// Filled by CUPTI's buffer-completed callback (any thread), read by finish().
struct Collected {
  std::mutex mutex;
  std::vector<KernelActivity> activities;
  std::vector<ExternalCorrelation> correlations;
};
Collected& collected() {
  static Collected c;
  return c;
}

void CUPTIAPI buffer_requested(uint8_t** buffer, size_t* size, size_t* max_records) {
  *buffer = static_cast<uint8_t*>(std::aligned_alloc(kBufferAlignment, kBufferBytes));
  *size = *buffer != nullptr ? kBufferBytes : 0;
  *max_records = 0;  // as many as fit
}

template <typename Copy>
KernelActivity copy_activity(const Copy* c) {
  KernelActivity a;
  a.start_ns = c->start;
  a.end_ns = c->end;
  a.device_id = c->deviceId;
  a.stream_id = c->streamId;
  a.correlation_id = c->correlationId;
  a.is_memcpy = true;
  a.bytes = c->bytes;
  return a;
}

void CUPTIAPI buffer_completed(CUcontext, uint32_t, uint8_t* buffer, size_t, size_t valid) {
  Collected& out = collected();
  CUpti_Activity* record = nullptr;
  {
    const std::lock_guard<std::mutex> lock(out.mutex);
    while (cuptiActivityGetNextRecord(buffer, valid, &record) == CUPTI_SUCCESS) {
      switch (record->kind) {
        case CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL:
        case CUPTI_ACTIVITY_KIND_KERNEL: {
          const auto* k = reinterpret_cast<const CUpti_ActivityKernel10*>(record);
          KernelActivity a;
          a.start_ns = k->start;
          a.end_ns = k->end;
          a.device_id = k->deviceId;
          a.stream_id = k->streamId;
          a.correlation_id = k->correlationId;
          a.grid_x = k->gridX;
          a.grid_y = k->gridY;
          a.grid_z = k->gridZ;
          a.block_x = k->blockX;
          a.block_y = k->blockY;
          a.block_z = k->blockZ;
          a.registers_per_thread = k->registersPerThread;
          a.shared_memory_bytes = k->staticSharedMemory + k->dynamicSharedMemory;
          a.name = nullptr;  // CUPTI owns the name; spans here only need times
          out.activities.push_back(a);
          break;
        }
        case CUPTI_ACTIVITY_KIND_MEMCPY:
          out.activities.push_back(copy_activity(reinterpret_cast<const CUpti_ActivityMemcpy6*>(record)));
          break;
        case CUPTI_ACTIVITY_KIND_MEMCPY2:
          out.activities.push_back(
              copy_activity(reinterpret_cast<const CUpti_ActivityMemcpyPtoP4*>(record)));
          break;
        case CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION: {
          const auto* e = reinterpret_cast<const CUpti_ActivityExternalCorrelation*>(record);
          out.correlations.push_back({e->correlationId, e->externalId});
          break;
        }
        default:
          break;
      }
    }
  }
  std::free(buffer);
}

const CUpti_ActivityKind kKinds[] = {CUPTI_ACTIVITY_KIND_CONCURRENT_KERNEL, CUPTI_ACTIVITY_KIND_MEMCPY,
                                     CUPTI_ACTIVITY_KIND_MEMCPY2,
                                     CUPTI_ACTIVITY_KIND_EXTERNAL_CORRELATION};

void disable_all() {
  for (CUpti_ActivityKind kind : kKinds) (void)cuptiActivityDisable(kind);
}

void check(CUptiResult status, const char* call) {
  if (status != CUPTI_SUCCESS) {
    const char* text = nullptr;
    (void)cuptiGetResultString(status, &text);
    throw std::runtime_error(std::string(call) + " failed: " + (text != nullptr ? text : "unknown"));
  }
}

}  // namespace

std::unique_ptr<CuptiSession> CuptiSession::try_start() {
  {
    Collected& c = collected();
    const std::lock_guard<std::mutex> lock(c.mutex);
    c.activities.clear();
    c.correlations.clear();
  }
  if (cuptiActivityRegisterCallbacks(buffer_requested, buffer_completed) != CUPTI_SUCCESS) {
    return nullptr;
  }
  for (CUpti_ActivityKind kind : kKinds) {
    if (cuptiActivityEnable(kind) != CUPTI_SUCCESS) {
      disable_all();
      return nullptr;  // e.g. another subscriber (Nsight, compute-sanitizer) holds CUPTI
    }
  }
  return std::unique_ptr<CuptiSession>(new CuptiSession());
}

CuptiSession::~CuptiSession() {
  if (!finished_) {
    disable_all();
    (void)cuptiActivityFlushAll(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED);
  }
}

void CuptiSession::begin(std::uint64_t id) {
  check(cuptiActivityPushExternalCorrelationId(CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM0, id),
        "cuptiActivityPushExternalCorrelationId");
}

void CuptiSession::end() {
  std::uint64_t last = 0;
  check(cuptiActivityPopExternalCorrelationId(CUPTI_EXTERNAL_CORRELATION_KIND_CUSTOM0, &last),
        "cuptiActivityPopExternalCorrelationId");
}

std::map<std::uint64_t, double> CuptiSession::finish() {
  finished_ = true;
  check(cuptiActivityFlushAll(CUPTI_ACTIVITY_FLAG_FLUSH_FORCED), "cuptiActivityFlushAll");
  disable_all();
  std::size_t dropped = 0;
  check(cuptiActivityGetNumDroppedRecords(nullptr, 0, &dropped), "cuptiActivityGetNumDroppedRecords");
  if (dropped > 0) {
    throw std::runtime_error("CUPTI dropped " + std::to_string(dropped) +
                             " activity records: the run's samples are incomplete; rerun with "
                             "fewer iterations per case");
  }
  Collected& c = collected();
  const std::lock_guard<std::mutex> lock(c.mutex);
  return iteration_durations_s(c.activities, c.correlations);
}

}  // namespace clustersim::kernels::detail
