#pragma once
// Packed sequences of documents whose attention is masked per document (Megatron-LM's
// reset_attention_mask): documents drawn from a length histogram fill a sequence of S tokens,
// the last one cut at S, and the sequence's causal attention costs r = sum(l_i^2) / S^2 of a
// full causal attention over S (each document's is l_i^2 / 2 FLOP-units against S^2 / 2).
// docs/estimate.md, "Document lengths".
#include <cstdint>

#include "models/cost/fleet_variability.hpp"
#include "models/inputs/document_lengths.hpp"

namespace clustersim {

// One packed sequence's attention ratio r, documents drawn with `random`.
double draw_packed_attention_ratio(const DocumentLengths& documents, std::int64_t seq_length, FleetRandom& random);

struct PackedAttention {
  double mean = 1.0;  // E[r]
  double cv = 0.0;    // sd(r) / E[r]
};

// E[r] and its spread over 4,096 sequences drawn with a fixed seed (the same on every platform).
PackedAttention packed_attention(const DocumentLengths& documents, std::int64_t seq_length);

}  // namespace clustersim
