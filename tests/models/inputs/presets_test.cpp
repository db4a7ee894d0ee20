// Every shipped preset loads cleanly, and every number in a cluster preset cites its source.
#include <gtest/gtest.h>

#include <fstream>
#include <functional>
#include <nlohmann/json.hpp>

#include "models/inputs/cluster_spec.hpp"
#include "models/inputs/model_spec.hpp"
#include "models/inputs/preset_path.hpp"
#include "models/inputs/train_plan.hpp"

namespace clustersim {
namespace {

TEST(Presets, ModelsLoadWithoutWarnings) {
  auto names = preset_names("models");
  EXPECT_GE(names.size(), 18u);
  for (const auto& name : names) {
    SCOPED_TRACE(name);
    Diagnostics diag;
    EXPECT_NO_THROW(load_model_spec(resolve_input(name, "models", "--model"), name, diag));
    EXPECT_TRUE(diag.warnings().empty());
  }
}

TEST(Presets, PlansLoad) {
  for (const auto& name : preset_names("plans")) {
    SCOPED_TRACE(name);
    Diagnostics diag;
    EXPECT_NO_THROW(load_train_plan(resolve_input(name, "plans", "--plan"), diag));
  }
}

void numeric_pointers(const nlohmann::json& value, const std::string& pointer,
                      std::vector<std::string>& out) {
  if (value.is_number()) out.push_back(pointer);
  if (!value.is_object()) return;
  for (const auto& [key, child] : value.items()) {
    if (key != "sources") numeric_pointers(child, pointer + "/" + key, out);
  }
}

TEST(Presets, ClustersLoadAndSourceEveryNumber) {
  auto names = preset_names("clusters");
  for (const char* required : {"a100-hdr", "h100-ndr", "h800-roce", "h200-ndr"}) {
    EXPECT_NE(std::find(names.begin(), names.end(), required), names.end()) << required;
  }
  for (const auto& name : names) {
    SCOPED_TRACE(name);
    Diagnostics diag;
    std::string path = resolve_input(name, "clusters", "--cluster");
    ClusterSpec c = load_cluster_spec(path, name, diag);
    EXPECT_TRUE(c.gpu.peak_flops_per_s(Dtype::kBf16).has_value());
    std::ifstream in(path);
    std::vector<std::string> pointers;
    numeric_pointers(nlohmann::json::parse(in), "", pointers);
    for (const auto& p : pointers) {
      // Its own source, or one of an enclosing object ("/nccl" sources the NCCL graphs).
      bool sourced = false;
      for (std::string at = p; !at.empty() && !sourced; at = at.substr(0, at.rfind('/'))) {
        auto it = c.sources.find(at);
        sourced = it != c.sources.end() && it->second.size() > 20;
      }
      EXPECT_TRUE(sourced) << p << " has no source";
    }
  }
}

}  // namespace
}  // namespace clustersim
