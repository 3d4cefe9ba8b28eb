// Filesystem access behind an interface (like leveldb's Env) so tests can inject failures,
// plus the one way Engage writes a file: temp name, fsync, rename, fsync of the directory.
//
// Thread-safety: PosixFileSystem is stateless and safe for concurrent use.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "engage/core/status.h"

namespace engage {

class FileSystem {
 public:
  virtual ~FileSystem() = default;

  virtual Result<std::string> ReadFile(const std::string& path) = 0;
  // Writes `data` so that a reader sees either the old file or the whole new one, never a
  // prefix: write `path`.tmp.<pid>.<n>, fsync, rename over `path`, fsync the directory. The
  // temporary file is removed on failure.
  virtual Status WriteFileAtomic(const std::string& path, std::string_view data) = 0;
  // Appends and fsyncs (used for quarantine and logs where order matters more than atomicity).
  virtual Status AppendFile(const std::string& path, std::string_view data) = 0;
  virtual Status CreateDirs(const std::string& path) = 0;
  // Atomic rename; kNotFound if `from` is missing.
  virtual Status Rename(const std::string& from, const std::string& to) = 0;
  // Removes a file or a directory tree; OK if it does not exist.
  virtual Status RemoveAll(const std::string& path) = 0;
  virtual bool Exists(const std::string& path) = 0;
  virtual Result<int64_t> FileSize(const std::string& path) = 0;
  // Names (not paths) of the entries of `dir`, sorted; kNotFound if `dir` is missing.
  virtual Result<std::vector<std::string>> ListDir(const std::string& dir) = 0;
  // fsyncs a directory so renames inside it are durable.
  virtual Status SyncDir(const std::string& dir) = 0;
};

class PosixFileSystem final : public FileSystem {
 public:
  Result<std::string> ReadFile(const std::string& path) override;
  Status WriteFileAtomic(const std::string& path, std::string_view data) override;
  Status AppendFile(const std::string& path, std::string_view data) override;
  Status CreateDirs(const std::string& path) override;
  Status Rename(const std::string& from, const std::string& to) override;
  Status RemoveAll(const std::string& path) override;
  bool Exists(const std::string& path) override;
  Result<int64_t> FileSize(const std::string& path) override;
  Result<std::vector<std::string>> ListDir(const std::string& dir) override;
  Status SyncDir(const std::string& dir) override;

  static std::shared_ptr<FileSystem> Default();
};

// Runs a callable when it goes out of scope unless Cancel() was called (scope guard).
template <typename F>
class Cleanup {
 public:
  explicit Cleanup(F f) : f_(std::move(f)) {}
  ~Cleanup() {
    if (active_) f_();
  }
  Cleanup(const Cleanup&) = delete;
  Cleanup& operator=(const Cleanup&) = delete;
  void Cancel() { active_ = false; }

 private:
  F f_;
  bool active_ = true;
};

// Joins path components with '/'.
std::string JoinPath(const std::string& a, const std::string& b);

// The whole of a text file given on a command line ("-": standard input); `what` names it in
// errors ("input file", "role policy"): kNotFound when it cannot be read, kInvalidArgument for
// a directory or a text larger than `max_bytes` (a bound, so that /dev/zero cannot exhaust
// memory).
Result<std::string> ReadTextArgument(const std::string& path, const std::string& what,
                                     int64_t max_bytes = 64 << 20);

// A file a command is to write (--out, --save), checked before any work: kInvalidArgument
// naming it when it is a directory or its directory does not exist. Empty: nothing to write.
Status CheckOutputPath(const std::string& path);
// Writes a file the user named: a regular or new file is replaced atomically; a symlink is
// followed (its target is replaced, the link stays); a FIFO or a device (/dev/stdout) is written
// to as it is, never replaced.
Status WriteOutputFile(const std::string& path, std::string_view data);

}  // namespace engage
