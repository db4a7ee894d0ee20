#include "models/accounting/parameter_count.hpp"

#include "models/accounting/model_shapes.hpp"

namespace clustersim {

namespace {

std::int64_t* bucket(ParameterCount& c, Role role) {
  switch (role) {
    case Role::kAttention: return &c.attention;
    case Role::kMlp: return &c.dense_mlp;
    case Role::kRoutedExpert: return &c.routed_experts;
    case Role::kSharedExpert: return &c.shared_experts;
    case Role::kRouter: return &c.router;
    case Role::kNorm: return &c.norms;
    case Role::kLmHead: return &c.lm_head;
  }
  return &c.norms;
}

}  // namespace

ParameterCount count_parameters(const ModelSpec& model) {
  ModelShapes shapes = model_shapes(model);
  ParameterCount c;
  c.embedding = shapes.embedding + shapes.position_embedding;
  c.lm_head = shapes.lm_head.parameters();
  c.norms = shapes.final_norm;
  for (const auto& layer : shapes.layers) {
    for (const auto& l : layer.linears) *bucket(c, l.role) += l.parameters();
    for (const auto& v : layer.vectors) *bucket(c, v.role) += v.size;
    c.total += layer.parameters();
    c.active += layer.active_parameters();
  }
  c.total += c.embedding + c.lm_head + shapes.final_norm;
  c.active += c.embedding + c.lm_head + shapes.final_norm;
  return c;
}

}  // namespace clustersim
