#include "models/inputs/fleet_spec.hpp"

#include <filesystem>

#include "models/inputs/json_reader.hpp"
#include "models/inputs/preset_path.hpp"

namespace clustersim {

namespace {

// A mechanism's object: its numbers and the required "source" sentence.
JsonObjectReader mechanism(JsonObjectReader& r, std::string_view key) {
  JsonObjectReader m = r.object(key, true);
  m.required_string("source");
  return m;
}

// A mechanism holding one number (and its source).
double mechanism_number(JsonObjectReader& r, std::string_view key, std::string_view number, double min, double max,
                        const char* hint) {
  JsonObjectReader m = mechanism(r, key);
  const double value = m.required_number(number, min, max, hint).value_or(0);
  m.reject_unknown_keys();
  return value;
}

// A mechanism that is one spread: {"cv": ..., "source": ...}.
double mechanism_cv(JsonObjectReader& r, std::string_view key) {
  return mechanism_number(r, key, "cv", 0.0, 0.5, "coefficient of variation, 0 to 0.5");
}

}  // namespace

FleetSpec load_fleet_spec(const std::string& source, const std::string& flag, Diagnostics& diag) {
  FleetSpec f;
  if (source == "none") return f;
  JsonDocument doc = read_json_document(resolve_input(source, "fleets", flag), flag);
  f.source = doc.file;
  JsonObjectReader r(diag, doc.file, "", doc.value);
  diag.throw_if_errors();
  f.name = r.required_string("name").value_or(std::filesystem::path(doc.file).stem().string());
  if (f.name == "none") r.error("name", "\"none\" is reserved for no fleet", "name the fleet");
  r.string("description");
  {
    JsonObjectReader m = mechanism(r, "slow_hosts");
    f.slow_host_fraction = m.required_number("fraction", 0.0, 1.0, "a share of hosts, 0 to 1").value_or(0);
    f.slow_host_slowdown = m.required_number("slowdown", 1.0, 100.0, "compute time factor, >= 1").value_or(1);
    m.reject_unknown_keys();
  }
  f.host_speed_cv = mechanism_cv(r, "host_speed");
  f.op_jitter_cv = mechanism_cv(r, "op_jitter");
  f.data_imbalance_cv = mechanism_cv(r, "data_imbalance");
  f.data_loading_s = mechanism_number(r, "step_overheads", "data_loading_s", 0.0, 3600.0, "seconds per step");
  if (const nlohmann::json* raw = r.raw("sources"); !raw || !raw->is_array() || raw->empty()) {
    r.error("sources", "needs a non-empty array of URLs", "where the numbers come from");
  }
  r.reject_unknown_keys();
  diag.throw_if_errors();
  return f;
}

}  // namespace clustersim
