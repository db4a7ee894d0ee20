#include "traces/measurement_input.hpp"

#include <fmt/format.h>
#include <zlib.h>

#include <algorithm>
#include <array>

#include "models/inputs/input_error.hpp"

namespace clustersim {

namespace {

// Larger inputs are refused rather than exhausting memory (a trace is tens of MB).
constexpr std::size_t kMaxInputBytes = std::size_t{4} << 30;

std::string lowercase(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

}  // namespace

std::string read_measurement_file(const std::string& path) {
  // gzread passes plain files through unchanged, so one reader serves both.
  gzFile in = gzopen(path.c_str(), "rb");
  if (in == nullptr) throw_input_error(path, "", "cannot open file", "check the path");
  std::string text;
  std::array<char, 1 << 16> buffer{};
  int n = 0;
  while ((n = gzread(in, buffer.data(), static_cast<unsigned>(buffer.size()))) > 0) {
    text.append(buffer.data(), static_cast<std::size_t>(n));
    if (text.size() > kMaxInputBytes) {
      gzclose(in);
      throw_input_error(path, "", fmt::format("larger than {} GiB", kMaxInputBytes >> 30),
                        "split the measurement into smaller files");
    }
  }
  int code = Z_OK;
  const char* message = gzerror(in, &code);
  std::string reason = message ? message : "";
  bool compressed = gzdirect(in) == 0;
  gzclose(in);
  if (n < 0 || (code != Z_OK && code != Z_STREAM_END)) {
    if (compressed) {
      throw_input_error(path, "", fmt::format("corrupt gzip data: {}", reason),
                        "the file starts like gzip but does not decompress; re-download or gunzip "
                        "it to check");
    }
    throw_input_error(path, "", fmt::format("cannot read file: {}", reason), "check the path");
  }
  return text;
}

nlohmann::json parse_measurement_json(const std::string& text, const std::string& file) {
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::parse_error& e) {
    std::size_t end = std::min(e.byte == 0 ? 0 : e.byte - 1, text.size());
    std::size_t line = 1 + static_cast<std::size_t>(std::count(text.begin(), text.begin() +
                                                                 static_cast<std::ptrdiff_t>(end),
                                                                 '\n'));
    std::size_t line_start = text.rfind('\n', end == 0 ? 0 : end - 1);
    std::size_t column = line_start == std::string::npos || end == 0 ? end + 1 : end - line_start;
    std::string what = e.what();
    auto colon = what.rfind(": ");
    throw_input_error(file, "",
                      fmt::format("malformed JSON at line {}, column {}: {}", line, column,
                                  colon == std::string::npos ? what : what.substr(colon + 2)),
                      "a JSON measurement file is one JSON object");
  }
}

std::string file_name_of(std::string_view path) {
  auto slash = path.find_last_of('/');
  return std::string(slash == std::string_view::npos ? path : path.substr(slash + 1));
}

std::string source_id_from_path(std::string_view path) {
  std::string name = file_name_of(path);
  for (std::string_view ext : {".gz", ".json", ".log", ".txt", ".out", ".csv"}) {
    if (name.size() > ext.size() && lowercase(name).ends_with(ext)) {
      name.resize(name.size() - ext.size());
    }
  }
  return name.empty() ? "measurement" : name;
}

}  // namespace clustersim
