#pragma once
// Bad input is reported as a list of InputError: every rule is checked, all problems are
// collected, then one InputErrors is thrown. tools/ is the only place that catches it.
#include <exception>
#include <string>
#include <vector>

namespace clustersim {

struct InputError {
  std::string file;     // path of the input, or a pseudo-file such as "--gpus" or "megatron args"
  std::string pointer;  // RFC 6901 JSON pointer of the bad field; "" for the whole document
  std::string message;  // what is wrong
  std::string hint;     // what would be valid; may be empty

  // "file:/pointer: message (hint)"
  std::string to_string() const;
};

class InputErrors : public std::exception {
 public:
  explicit InputErrors(std::vector<InputError> errors, std::vector<InputError> warnings = {});
  const std::vector<InputError>& errors() const { return errors_; }
  // Warnings collected before the errors, so that they are not lost.
  const std::vector<InputError>& warnings() const { return warnings_; }
  const char* what() const noexcept override { return what_.c_str(); }

 private:
  std::vector<InputError> errors_;
  std::vector<InputError> warnings_;
  std::string what_;
};

// Collects errors and warnings while inputs are read and validated.
class Diagnostics {
 public:
  void error(std::string file, std::string pointer, std::string message, std::string hint = {});
  void warn(std::string file, std::string pointer, std::string message, std::string hint = {});
  bool has_errors() const { return !errors_.empty(); }
  const std::vector<InputError>& errors() const { return errors_; }
  const std::vector<InputError>& warnings() const { return warnings_; }
  // Throws InputErrors holding every error collected so far, if there is any.
  void throw_if_errors() const;

 private:
  std::vector<InputError> errors_;
  std::vector<InputError> warnings_;
};

// Throws a single InputError at once (for problems that stop reading, e.g. a missing file).
[[noreturn]] void throw_input_error(std::string file, std::string pointer, std::string message,
                                    std::string hint = {});

}  // namespace clustersim
