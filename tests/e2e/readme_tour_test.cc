// README.md's tour, run as written: every command of the ```sh blocks between "## Tour" and the
// next section runs in order on a fresh home, and each must succeed. The only changes: fewer
// customers (so the test takes a minute), and the server on a free port (`--port 0` with a port
// file; `localhost:8080` then names that port).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "testing/cli_runner.h"
#include "testing/temp_dir.h"

namespace engage {
namespace {

namespace fs = std::filesystem;

struct TourCommand {
  int line = 0;  // in README.md
  std::string text;
};

// The command without its trailing comment (a `#` after whitespace, outside quotes).
std::string StripComment(const std::string& s) {
  char quote = 0;
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (quote != 0) {
      if (c == quote) quote = 0;
    } else if (c == '\'' || c == '"') {
      quote = c;
    } else if (c == '#' && (i == 0 || s[i - 1] == ' ' || s[i - 1] == '\t')) {
      std::string out = s.substr(0, i);
      while (!out.empty() && (out.back() == ' ' || out.back() == '\t')) out.pop_back();
      return out;
    }
  }
  return s;
}

// The tour's commands: lines of ```sh blocks from "## Tour" to the next "## " or "### "
// heading, continuation lines joined, comments and blank lines dropped.
std::vector<TourCommand> TourCommands(const std::string& readme) {
  std::istringstream in(readme);
  std::string line;
  std::vector<TourCommand> out;
  bool in_tour = false, in_block = false;
  std::string pending;
  int pending_line = 0;
  for (int n = 1; std::getline(in, line); ++n) {
    if (line.rfind("## Tour", 0) == 0) {
      in_tour = true;
      continue;
    }
    if (!in_tour) continue;
    if (!in_block && (line.rfind("## ", 0) == 0 || line.rfind("### ", 0) == 0)) break;
    if (line.rfind("```", 0) == 0) {
      in_block = !in_block && line == "```sh";
      continue;
    }
    if (!in_block) continue;
    if (pending.empty()) pending_line = n;
    if (!line.empty() && line.back() == '\\') {
      pending += line.substr(0, line.size() - 1) + " ";
      continue;
    }
    pending += line;
    std::string cmd = StripComment(pending);
    pending.clear();
    if (cmd.find_first_not_of(" \t") == std::string::npos) continue;
    out.push_back({pending_line, cmd});
  }
  return out;
}

void ReplaceAll(std::string& s, const std::string& from, const std::string& to) {
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) {
    s.replace(at, from.size(), to);
  }
}

// One bash script that runs the commands in order and stops at the first failure, naming the
// README line and showing the command's output.
std::string TourScript(const std::vector<TourCommand>& commands, const std::string& bin_dir) {
  std::string s =
      "set -u\n"
      "export PATH=" +
      testing::ShellQuote(bin_dir) +
      ":$PATH\n"
      "trap 'kill $(jobs -p) 2>/dev/null' EXIT\n";
  int i = 0;
  for (TourCommand c : commands) {
    ++i;
    std::string out = "tour-" + std::to_string(i) + ".out";
    ReplaceAll(c.text, "--customers 100000", "--customers 3000");
    ReplaceAll(c.text, "localhost:8080", "localhost:$PORT");
    bool background = c.text.back() == '&';
    bool server = c.text.find("engage serve") != std::string::npos;
    if (server) ReplaceAll(c.text, "--port 8080", "--port 0 --port-file tour.port");
    s += "echo " + testing::ShellQuote("+ " + c.text) + "\n";
    if (background) {
      c.text.pop_back();
      s += c.text + " >" + out + " 2>&1 &\n";
      if (server) {
        s += "for i in $(seq 300); do [ -s tour.port ] && break; sleep 0.1; done\n"
             "PORT=$(cat tour.port)\n";
      }
      continue;
    }
    s += "{ " + c.text + "\n} >" + out + " 2>&1\nrc=$?\nif [ $rc -ne 0 ]; then echo " +
         testing::ShellQuote("TOUR FAILED: README.md line " + std::to_string(c.line) + ": " +
                             c.text) +
         " \"(exit $rc)\"; tail -c 3000 " + out + "; exit 1; fi\n";
  }
  s += "echo TOUR OK\n";
  return s;
}

TEST(ReadmeTourTest, ExtractsCommandsJoiningContinuationsAndDroppingComments) {
  auto cmds = TourCommands(
      "# x\n## Tour\ntext\n```sh\n# a comment\nengage init   # make the home\n"
      "engage query \"SELECT '#1' # not a comment\" # but this is\n"
      "engage a \\\n    --b c\n```\n```toml\nx = 1\n```\n### Configuration\n```sh\nno\n```\n");
  ASSERT_EQ(cmds.size(), 3u);
  EXPECT_EQ(cmds[0].text, "engage init");
  EXPECT_EQ(cmds[0].line, 6);
  EXPECT_EQ(cmds[1].text, "engage query \"SELECT '#1' # not a comment\"");
  EXPECT_EQ(cmds[2].text, "engage a      --b c");
}

TEST(ReadmeTourTest, EveryTourCommandRunsAsWrittenOnAFreshHome) {
  std::string readme = testing::ReadFileText(std::string(ENGAGE_SOURCE_DIR) + "/README.md");
  std::vector<TourCommand> commands = TourCommands(readme);
  ASSERT_GE(commands.size(), 25u) << "the tour lost its commands";
  testing::TempDir dir;
  // The tour runs from a checkout: examples/ is where the README says.
  fs::create_directory_symlink(std::string(ENGAGE_SOURCE_DIR) + "/examples",
                               dir.path() + "/examples");
  std::string bin_dir = fs::path(ENGAGE_BINARY).parent_path().string();
  std::string script = dir.WriteFile("tour.sh", TourScript(commands, bin_dir));
  auto r = testing::RunCommand(
      {"bash", "-c", "cd " + testing::ShellQuote(dir.path()) + " && bash tour.sh"}, dir.path(),
      {"ENGAGE_HOME=" + dir.path() + "/engage-home"});
  EXPECT_EQ(r.exit_code, 0) << r.out << r.err;
  EXPECT_NE(r.out.find("TOUR OK"), std::string::npos) << r.out << r.err;
}

}  // namespace
}  // namespace engage
