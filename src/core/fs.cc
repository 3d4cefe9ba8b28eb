#include "engage/core/fs.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

namespace engage {
namespace {

namespace stdfs = std::filesystem;

Status ErrnoStatus(const std::string& what, const std::string& path, int err) {
  std::string msg = fmt::format("{} '{}': {}", what, path, std::strerror(err));
  if (err == ENOENT) return NotFoundError(std::move(msg));
  if (err == EACCES || err == EPERM) return PermissionDeniedError(std::move(msg));
  if (err == ENOSPC || err == EDQUOT) return ResourceExhaustedError(std::move(msg));
  return InternalError(std::move(msg));
}

Status WriteAll(int fd, std::string_view data, const std::string& path) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::write(fd, data.data() + off, data.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("cannot write", path, errno);
    }
    off += static_cast<size_t>(n);
  }
  return Status::Ok();
}

std::string ParentDir(const std::string& path) {
  auto p = stdfs::path(path).parent_path().string();
  return p.empty() ? "." : p;
}

}  // namespace

std::string JoinPath(const std::string& a, const std::string& b) {
  if (a.empty()) return b;
  if (a.back() == '/') return a + b;
  return a + "/" + b;
}

Result<std::string> PosixFileSystem::ReadFile(const std::string& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("cannot open", path, errno);
  Cleanup close_fd([fd] { ::close(fd); });
  std::string out;
  char buf[1 << 16];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof buf);
    if (n < 0) {
      if (errno == EINTR) continue;
      return ErrnoStatus("cannot read", path, errno);
    }
    if (n == 0) break;
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

Status PosixFileSystem::WriteFileAtomic(const std::string& path, std::string_view data) {
  static std::atomic<int64_t> counter{0};
  std::string tmp = fmt::format("{}.tmp.{}.{}", path, ::getpid(), counter++);
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoStatus("cannot create", tmp, errno);
  Cleanup remove_tmp([&tmp] { ::unlink(tmp.c_str()); });
  Status s = WriteAll(fd, data, tmp);
  if (s.ok() && ::fsync(fd) != 0) s = ErrnoStatus("cannot fsync", tmp, errno);
  if (::close(fd) != 0 && s.ok()) s = ErrnoStatus("cannot close", tmp, errno);
  ENGAGE_RETURN_IF_ERROR(s);
  if (::rename(tmp.c_str(), path.c_str()) != 0) return ErrnoStatus("cannot rename", tmp, errno);
  remove_tmp.Cancel();
  return SyncDir(ParentDir(path));
}

Status PosixFileSystem::AppendFile(const std::string& path, std::string_view data) {
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) return ErrnoStatus("cannot open", path, errno);
  Cleanup close_fd([fd] { ::close(fd); });
  ENGAGE_RETURN_IF_ERROR(WriteAll(fd, data, path));
  if (::fsync(fd) != 0) return ErrnoStatus("cannot fsync", path, errno);
  return Status::Ok();
}

Status PosixFileSystem::CreateDirs(const std::string& path) {
  std::error_code ec;
  stdfs::create_directories(path, ec);
  if (ec) return ErrnoStatus("cannot create directory", path, ec.value());
  return Status::Ok();
}

Status PosixFileSystem::Rename(const std::string& from, const std::string& to) {
  if (::rename(from.c_str(), to.c_str()) != 0) return ErrnoStatus("cannot rename", from, errno);
  return Status::Ok();
}

Status PosixFileSystem::RemoveAll(const std::string& path) {
  std::error_code ec;
  stdfs::remove_all(path, ec);
  if (ec && ec.value() != ENOENT) return ErrnoStatus("cannot remove", path, ec.value());
  return Status::Ok();
}

bool PosixFileSystem::Exists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

Result<int64_t> PosixFileSystem::FileSize(const std::string& path) {
  struct stat st;
  if (::stat(path.c_str(), &st) != 0) return ErrnoStatus("cannot stat", path, errno);
  return static_cast<int64_t>(st.st_size);
}

Result<std::vector<std::string>> PosixFileSystem::ListDir(const std::string& dir) {
  std::error_code ec;
  std::vector<std::string> names;
  for (auto it = stdfs::directory_iterator(dir, ec); !ec && it != stdfs::directory_iterator();
       it.increment(ec)) {
    names.push_back(it->path().filename().string());
  }
  if (ec) return ErrnoStatus("cannot list", dir, ec.value());
  std::sort(names.begin(), names.end());
  return names;
}

Status PosixFileSystem::SyncDir(const std::string& dir) {
  int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return ErrnoStatus("cannot open directory", dir, errno);
  int rc = ::fsync(fd);
  int err = errno;
  ::close(fd);
  if (rc != 0) return ErrnoStatus("cannot fsync directory", dir, err);
  return Status::Ok();
}

std::shared_ptr<FileSystem> PosixFileSystem::Default() {
  static std::shared_ptr<FileSystem> fs = std::make_shared<PosixFileSystem>();
  return fs;
}

Result<std::string> ReadTextArgument(const std::string& path, const std::string& what,
                                     int64_t max_bytes) {
  std::error_code ec;
  if (path != "-" && std::filesystem::is_directory(path, ec)) {
    return InvalidArgumentError(fmt::format("{} '{}' is a directory", what, path));
  }
  std::ifstream file;
  if (path != "-") {
    file.open(path, std::ios::binary);
    if (!file) {
      return NotFoundError(
          fmt::format("cannot read {} '{}': {}", what, path, std::strerror(errno)));
    }
  }
  std::istream& in = path == "-" ? std::cin : file;
  std::string text;
  char buf[1 << 16];
  while (in.read(buf, sizeof buf) || in.gcount() > 0) {
    text.append(buf, static_cast<size_t>(in.gcount()));
    if (static_cast<int64_t>(text.size()) > max_bytes) {
      return InvalidArgumentError(fmt::format("{} '{}' is larger than {} bytes", what,
                                              path == "-" ? "(stdin)" : path, max_bytes));
    }
  }
  return text;
}

Status CheckOutputPath(const std::string& path) {
  if (path.empty()) return Status::Ok();
  std::error_code ec;
  if (stdfs::is_directory(path, ec)) {
    return InvalidArgumentError(fmt::format("'{}' is a directory: name a file to write", path));
  }
  stdfs::path parent = stdfs::absolute(path, ec).parent_path();
  if (!stdfs::is_directory(parent, ec)) {
    return InvalidArgumentError(
        fmt::format("cannot write '{}': directory '{}' does not exist", path, parent.string()));
  }
  return Status::Ok();
}

Status WriteOutputFile(const std::string& path, std::string_view data) {
  ENGAGE_RETURN_IF_ERROR(CheckOutputPath(path));
  std::error_code ec;
  std::string target = path;
  if (stdfs::is_symlink(stdfs::symlink_status(path, ec))) {
    target = stdfs::weakly_canonical(path, ec).string();
    if (ec) return ErrnoStatus("cannot resolve", path, ec.value());
  }
  auto status = stdfs::status(target, ec);
  if (stdfs::exists(status) && !stdfs::is_regular_file(status)) {
    int fd = ::open(target.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) return ErrnoStatus("cannot open", path, errno);
    Cleanup close_fd([fd] { ::close(fd); });
    return WriteAll(fd, data, path);
  }
  return PosixFileSystem().WriteFileAtomic(target, data);
}

}  // namespace engage
