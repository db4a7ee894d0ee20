#include "models/inputs/input_error.hpp"

#include <fmt/format.h>

namespace clustersim {

std::string InputError::to_string() const {
  std::string where = pointer.empty() ? file : fmt::format("{}:{}", file, pointer);
  if (hint.empty()) return fmt::format("{}: {}", where, message);
  return fmt::format("{}: {} ({})", where, message, hint);
}

InputErrors::InputErrors(std::vector<InputError> errors, std::vector<InputError> warnings)
    : errors_(std::move(errors)), warnings_(std::move(warnings)) {
  for (const auto& e : errors_) {
    if (!what_.empty()) what_ += '\n';
    what_ += e.to_string();
  }
}

void Diagnostics::error(std::string file, std::string pointer, std::string message,
                        std::string hint) {
  errors_.push_back({std::move(file), std::move(pointer), std::move(message), std::move(hint)});
}

void Diagnostics::warn(std::string file, std::string pointer, std::string message,
                       std::string hint) {
  warnings_.push_back({std::move(file), std::move(pointer), std::move(message), std::move(hint)});
}

void Diagnostics::throw_if_errors() const {
  if (!errors_.empty()) throw InputErrors(errors_, warnings_);
}

void throw_input_error(std::string file, std::string pointer, std::string message,
                       std::string hint) {
  throw InputErrors({{std::move(file), std::move(pointer), std::move(message), std::move(hint)}});
}

}  // namespace clustersim
