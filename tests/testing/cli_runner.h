// Running the real `engage` binary (and example scripts) from end-to-end tests.
#pragma once

#include <sys/wait.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "engage/core/json.h"

namespace engage::testing {

struct CommandResult {
  int exit_code = -1;
  std::string out;
  std::string err;
  Json json() const { return Json::parse(out, nullptr, false); }
  // The last non-empty line of stdout, parsed as JSON (scripts end with one JSON object).
  Json last_line_json() const {
    std::string text = out;
    while (!text.empty() && text.back() == '\n') text.pop_back();
    size_t nl = text.rfind('\n');
    return Json::parse(nl == std::string::npos ? text : text.substr(nl + 1), nullptr, false);
  }
};

inline std::string ReadFileText(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// 'it'\''s': one shell word.
inline std::string ShellQuote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

// Runs `argv` through the shell with stdin from /dev/null, capturing stdout and stderr in
// files under `scratch_dir`. `env` entries ("NAME=value") are set for the command only.
inline CommandResult RunCommand(const std::vector<std::string>& argv,
                                const std::string& scratch_dir,
                                const std::vector<std::string>& env = {}) {
  std::string cmd;
  for (const auto& e : env)
    cmd += e.substr(0, e.find('=') + 1) + ShellQuote(e.substr(e.find('=') + 1)) + " ";
  for (const auto& a : argv) cmd += ShellQuote(a) + " ";
  std::string out = scratch_dir + "/.cmd-out", err = scratch_dir + "/.cmd-err";
  cmd += ">" + ShellQuote(out) + " 2>" + ShellQuote(err) + " </dev/null";
  int rc = std::system(cmd.c_str());
  CommandResult r;
  r.exit_code = WIFEXITED(rc) ? WEXITSTATUS(rc) : 128 + WTERMSIG(rc);
  r.out = ReadFileText(out);
  r.err = ReadFileText(err);
  return r;
}

}  // namespace engage::testing
