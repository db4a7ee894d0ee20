#pragma once
// The lengths of the documents packed into training sequences, as a histogram (the plan's
// "document_lengths": a file or an inline object). With reset_attention_mask each document
// attends only to itself, so a sequence's attention costs sum(l^2) / S^2 of a full causal one,
// and that differs per micro-batch (docs/estimate.md, "Document lengths").
#include <optional>
#include <string>
#include <vector>

#include "models/inputs/input_error.hpp"

namespace clustersim {

class JsonObjectReader;

struct DocumentLengths {
  std::vector<double> tokens;   // document length of each bin, tokens (> 0)
  std::vector<double> weights;  // relative frequency of each bin (>= 0, not all 0)
  std::string source;           // where the histogram comes from
};

// Reads the plan's `key`: a path to a JSON file {"tokens": [...], "weights": [...], "source": "..."}
// (relative paths from the plan's folder) or that object inline. Errors go to the reader's
// diagnostics, naming the file and JSON pointer. nullopt when the key is absent.
std::optional<DocumentLengths> read_document_lengths(JsonObjectReader& plan, const char* key,
                                                     const std::string& plan_file);

}  // namespace clustersim
