#pragma once
// Temporary files of a test process: all under one directory of its own (mkdtemp under the
// system temporary directory), removed when the process exits, so a test run leaves nothing in
// /tmp. Unique per process: builds of the same test (release and sanitizer) may run at once.
#include <filesystem>
#include <string>

namespace clustersim::test {

// The process's directory (created on first use).
const std::filesystem::path& temp_dir();

// A path in temp_dir(); the file is not created.
std::filesystem::path temp_path(const std::string& name);

// Writes `text` to temp_path(name) and returns that path.
std::string write_temp(const std::string& name, const std::string& text);

}  // namespace clustersim::test
