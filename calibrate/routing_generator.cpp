#include "calibrate/routing_generator.hpp"

#include "models/accounting/expert_routing.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <numeric>
#include <random>
#include <sstream>
#include <stdexcept>
#include <utility>
#include <vector>

namespace clustersim::calibrate {

namespace {

// The popularity draws are the simulator's (models/accounting/expert_routing.cpp), so a plan's
// moe_routing and a calibration run's --routing name the same distributions.
std::vector<double> popularity(std::int64_t experts, const RoutingSpec& spec, std::mt19937_64& rng) {
  switch (spec.kind) {
    case RoutingKind::kZipf: return expert_popularity(clustersim::RoutingKind::kZipf, spec.zipf_s, experts, rng);
    case RoutingKind::kDirichlet:
      return expert_popularity(clustersim::RoutingKind::kDirichlet, spec.dirichlet_alpha, experts, rng);
    default: return expert_popularity(clustersim::RoutingKind::kUniform, 0, experts, rng);
  }
}

std::string trim_number(double x) {
  std::ostringstream s;
  s << x;
  return s.str();
}

[[noreturn]] void bad_line(const std::string& path, int line, const std::string& message) {
  throw std::invalid_argument(path + ":" + std::to_string(line) + ": " + message);
}

}  // namespace

std::string to_string(const RoutingSpec& spec) {
  switch (spec.kind) {
    case RoutingKind::kUniform: return "uniform";
    case RoutingKind::kZipf: return "zipf" + trim_number(spec.zipf_s);
    case RoutingKind::kDirichlet: return "dirichlet" + trim_number(spec.dirichlet_alpha);
    case RoutingKind::kFile: return "file:" + spec.path;
  }
  return "unknown";
}

RoutingSpec routing_spec_from_string(const std::string& text, std::uint64_t seed) {
  RoutingSpec spec;
  spec.seed = seed;
  const auto parameter = [&](std::size_t prefix, double fallback) {
    if (text.size() == prefix) return fallback;
    std::size_t used = 0;
    const double value = std::stod(text.substr(prefix), &used);
    if (used != text.size() - prefix || !(value > 0)) {
      throw std::invalid_argument("routing '" + text + "': the parameter must be a positive number");
    }
    return value;
  };
  if (text == "uniform") {
    spec.kind = RoutingKind::kUniform;
  } else if (text.rfind("zipf", 0) == 0) {
    spec.kind = RoutingKind::kZipf;
    spec.zipf_s = parameter(4, spec.zipf_s);
  } else if (text.rfind("dirichlet", 0) == 0) {
    spec.kind = RoutingKind::kDirichlet;
    spec.dirichlet_alpha = parameter(9, spec.dirichlet_alpha);
  } else if (text.rfind("file:", 0) == 0 && text.size() > 5) {
    spec.kind = RoutingKind::kFile;
    spec.path = text.substr(5);
  } else {
    throw std::invalid_argument("routing '" + text +
                                "': expected uniform, zipf<s>, dirichlet<alpha> or file:<path>");
  }
  return spec;
}

kernels::MoeRouting generate_routing(std::int64_t tokens, std::int64_t experts, std::int64_t topk,
                                     const RoutingSpec& spec) {
  if (spec.kind == RoutingKind::kFile) {
    kernels::MoeRouting routing = load_routing_file(spec.path, experts);
    if (routing.tokens != tokens || routing.topk != topk) {
      throw std::invalid_argument(spec.path + ": has " + std::to_string(routing.tokens) +
                                  " tokens x top-" + std::to_string(routing.topk) + ", the case needs " +
                                  std::to_string(tokens) + " x top-" + std::to_string(topk));
    }
    return routing;
  }
  if (tokens <= 0 || experts <= 0 || topk <= 0 || topk > experts) {
    throw std::invalid_argument("generate_routing: need tokens, experts, topk > 0, topk <= experts");
  }
  if ((spec.kind == RoutingKind::kZipf && !(spec.zipf_s > 0)) ||
      (spec.kind == RoutingKind::kDirichlet && !(spec.dirichlet_alpha > 0))) {
    throw std::invalid_argument("generate_routing: the distribution's parameter must be > 0");
  }
  std::mt19937_64 rng(spec.seed);
  const std::vector<double> p = popularity(experts, spec, rng);
  std::vector<double> log_p(p.size());
  for (std::size_t e = 0; e < p.size(); ++e) log_p[e] = std::log(p[e]);

  kernels::MoeRouting routing;
  routing.tokens = tokens;
  routing.topk = topk;
  routing.num_experts = experts;
  routing.experts.reserve(static_cast<std::size_t>(tokens * topk));
  routing.weights.reserve(static_cast<std::size_t>(tokens * topk));
  std::vector<std::pair<double, std::int32_t>> keys;
  for (std::int64_t t = 0; t < tokens; ++t) {
    routing_top_k(log_p, topk, rng, keys);
    double chosen = 0;
    for (std::int64_t k = 0; k < topk; ++k) chosen += p[static_cast<std::size_t>(keys[static_cast<std::size_t>(k)].second)];
    for (std::int64_t k = 0; k < topk; ++k) {
      const std::int32_t e = keys[static_cast<std::size_t>(k)].second;
      routing.experts.push_back(e);
      routing.weights.push_back(static_cast<float>(p[static_cast<std::size_t>(e)] / chosen));
    }
  }
  return routing;
}

kernels::MoeRouting load_routing_file(const std::string& path, std::int64_t experts) {
  std::ifstream in(path);
  if (!in) throw std::invalid_argument(path + ": cannot open routing file");
  kernels::MoeRouting routing;
  routing.num_experts = experts;
  std::string line;
  int line_number = 0;
  while (std::getline(in, line)) {
    ++line_number;
    line = line.substr(0, line.find('#'));
    std::replace(line.begin(), line.end(), ',', ' ');
    std::istringstream fields(line);
    std::string field;
    std::vector<std::pair<std::int32_t, float>> choices;
    bool weighted = false;
    while (fields >> field) {
      const std::size_t colon = field.find(':');
      try {
        std::size_t used = 0;
        const long expert = std::stol(field.substr(0, colon), &used);
        if (used != field.substr(0, colon).size()) throw std::invalid_argument("");
        float weight = 0;
        if (colon != std::string::npos) {
          weight = std::stof(field.substr(colon + 1));
          weighted = true;
        }
        choices.emplace_back(static_cast<std::int32_t>(expert), weight);
      } catch (const std::exception&) {
        bad_line(path, line_number, "'" + field + "' is not an expert id or expert:weight");
      }
    }
    if (choices.empty()) continue;
    if (routing.topk == 0) routing.topk = static_cast<std::int64_t>(choices.size());
    if (static_cast<std::int64_t>(choices.size()) != routing.topk) {
      bad_line(path, line_number, "names " + std::to_string(choices.size()) + " experts, earlier tokens " +
                                      std::to_string(routing.topk));
    }
    for (const auto& [expert, weight] : choices) {
      if (expert < 0 || expert >= experts) {
        bad_line(path, line_number, "expert " + std::to_string(expert) + " is not in 0.." +
                                        std::to_string(experts - 1));
      }
      routing.experts.push_back(expert);
      routing.weights.push_back(weighted ? weight : 1.0f / static_cast<float>(routing.topk));
    }
    ++routing.tokens;
  }
  if (routing.tokens == 0) throw std::invalid_argument(path + ": no tokens");
  try {
    kernels::validate_moe_routing(routing);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument(path + ": " + e.what());
  }
  return routing;
}

}  // namespace clustersim::calibrate
