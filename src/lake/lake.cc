#include "engage/lake/lake.h"

#include <fcntl.h>
#include <fmt/format.h>
#include <spdlog/spdlog.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <set>

namespace engage::lake {

Json TableInfo::ToJson() const {
  Json cols = Json::array();
  for (const auto& c : spec->columns) {
    Json col{
        {"name", c.name}, {"type", std::string(ColumnTypeName(c.type))}, {"required", c.required}};
    cols.push_back(col);
  }
  cols.push_back({{"name", "dt"}, {"type", "date"}, {"required", true}, {"partition", true}});
  return Json{{"table", spec->name},
              {"columns", cols},
              {"time_column", spec->time_column},
              {"primary_key", spec->primary_key},
              {"retention_days", spec->retention_days},
              {"require_partition_filter", spec->require_partition_filter},
              {"partitions", partitions},
              {"files", files},
              {"rows", rows},
              {"bytes", bytes},
              {"min_dt", min_dt.empty() ? Json(nullptr) : Json(min_dt)},
              {"max_dt", max_dt.empty() ? Json(nullptr) : Json(max_dt)}};
}

Status Lake::Init(const HomePaths& home, bool force) {
  PosixFileSystem fs;
  if (fs.Exists(home.config()) && !force) {
    return AlreadyExistsError(fmt::format(
        "'{}' is already an Engage home (engage.toml exists); use --force to rewrite the config",
        home.root));
  }
  for (const auto& d : {home.root, home.lake(), home.quarantine(), home.staging(), home.tmp()}) {
    ENGAGE_RETURN_IF_ERROR(fs.CreateDirs(d));
  }
  ENGAGE_RETURN_IF_ERROR(fs.WriteFileAtomic(home.config(), DefaultConfigToml()));
  return Catalog::Open(home.meta_db()).status();
}

Lake::Lake(HomePaths home, Config config, Catalog catalog, LakeOptions opts)
    : home_(std::move(home)),
      config_(std::move(config)),
      catalog_(std::move(catalog)),
      fs_(opts.fs ? opts.fs : PosixFileSystem::Default()),
      clock_(opts.clock ? opts.clock : &SystemClock::Default()),
      opts_(std::move(opts)) {}

Lake::~Lake() {
  if (lock_fd_ >= 0) ::close(lock_fd_);  // releases the flock
}

Result<std::unique_ptr<Lake>> Lake::Open(const HomePaths& home, LakeOptions opts) {
  ENGAGE_ASSIGN_OR_RETURN(Config config, Config::Load(home.config()));
  ENGAGE_ASSIGN_OR_RETURN(Catalog catalog, Catalog::Open(home.meta_db()));
  std::unique_ptr<Lake> lake(new Lake(home, std::move(config), std::move(catalog), opts));
  for (const auto& d : {home.lake(), home.quarantine(), home.staging(), home.tmp()}) {
    ENGAGE_RETURN_IF_ERROR(lake->fs_->CreateDirs(d));
  }
  if (opts.writer) {
    ENGAGE_RETURN_IF_ERROR(lake->Lock());
    ENGAGE_RETURN_IF_ERROR(lake->Recover());
  }
  return lake;
}

Status Lake::Lock() {
  std::string path = home_.root + "/.lock";
  lock_fd_ = ::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
  if (lock_fd_ < 0) {
    return PermissionDeniedError(fmt::format("cannot open '{}': {}", path, std::strerror(errno)));
  }
  if (::flock(lock_fd_, LOCK_EX | LOCK_NB) != 0) {
    if (errno != EWOULDBLOCK) {
      return InternalError(fmt::format("cannot lock '{}': {}", path, std::strerror(errno)));
    }
    std::fprintf(stderr, "waiting for another engage writer on %s ...\n", home_.root.c_str());
    while (::flock(lock_fd_, LOCK_EX) != 0) {
      if (errno != EINTR) {
        return InternalError(fmt::format("cannot lock '{}': {}", path, std::strerror(errno)));
      }
    }
  }
  return Status::Ok();
}

Status Lake::Recover() {
  recovery_ = {};
  // 1. Staging directories belong to writers that did not finish (we hold the writer lock).
  ENGAGE_ASSIGN_OR_RETURN(auto staged, fs_->ListDir(home_.staging()));
  for (const auto& name : staged) {
    ENGAGE_RETURN_IF_ERROR(fs_->RemoveAll(home_.staging() + "/" + name));
    ++recovery_.staging_dirs_removed;
  }
  // 2. Trash past its grace period.
  int64_t before_us = clock_->NowMicros() - opts_.trash_grace_seconds * 1000000;
  ENGAGE_ASSIGN_OR_RETURN(auto expired, catalog_.TakeTrash(FormatIsoUtc(before_us)));
  for (const auto& rel : expired) {
    ENGAGE_RETURN_IF_ERROR(fs_->RemoveAll(AbsPath(rel)));
    ++recovery_.trash_files_removed;
  }
  // 3. Files under table directories that the catalog does not know (a writer died between
  //    moving files in and publishing them) — except trash still in its grace period.
  ENGAGE_ASSIGN_OR_RETURN(auto known_list, catalog_.AllPaths());
  std::set<std::string> known(known_list.begin(), known_list.end());
  ENGAGE_ASSIGN_OR_RETURN(auto trash, catalog_.TrashPaths());
  known.insert(trash.begin(), trash.end());
  for (const auto& [name, spec] : config_.tables) {
    std::string tdir = home_.lake() + "/" + name;
    if (!fs_->Exists(tdir)) continue;
    ENGAGE_ASSIGN_OR_RETURN(auto parts, fs_->ListDir(tdir));
    for (const auto& part : parts) {
      ENGAGE_ASSIGN_OR_RETURN(auto files, fs_->ListDir(tdir + "/" + part));
      int64_t kept = 0;
      for (const auto& f : files) {
        std::string rel = name + "/" + part + "/" + f;
        if (known.count(rel)) {
          ++kept;
          continue;
        }
        ENGAGE_RETURN_IF_ERROR(fs_->RemoveAll(AbsPath(rel)));
        ++recovery_.orphan_files_removed;
      }
      if (kept == 0) (void)fs_->RemoveAll(tdir + "/" + part);
    }
  }
  // 4. Quarantine files of ingests that never committed.
  if (fs_->Exists(home_.quarantine())) {
    ENGAGE_ASSIGN_OR_RETURN(auto tables, fs_->ListDir(home_.quarantine()));
    for (const auto& t : tables) {
      std::string qdir = home_.quarantine() + "/" + t;
      ENGAGE_ASSIGN_OR_RETURN(auto files, fs_->ListDir(qdir));
      for (const auto& f : files) {
        std::string id = f.size() > 6 && f.ends_with(".jsonl") ? f.substr(0, f.size() - 6) : f;
        ENGAGE_ASSIGN_OR_RETURN(auto rec, catalog_.FindIngest(id));
        if (rec) continue;
        ENGAGE_RETURN_IF_ERROR(fs_->RemoveAll(qdir + "/" + f));
        ++recovery_.orphan_quarantine_removed;
      }
    }
  }
  int64_t total = recovery_.staging_dirs_removed + recovery_.orphan_files_removed +
                  recovery_.orphan_quarantine_removed;
  if (total > 0) {
    spdlog::warn(
        "recovered from an interrupted run: removed {} staging dir(s), {} unpublished file(s), "
        "{} orphan quarantine file(s)",
        recovery_.staging_dirs_removed, recovery_.orphan_files_removed,
        recovery_.orphan_quarantine_removed);
    ENGAGE_RETURN_IF_ERROR(
        catalog_.LogEvent("recovery", "",
                          Json{{"staging_dirs_removed", recovery_.staging_dirs_removed},
                               {"orphan_files_removed", recovery_.orphan_files_removed},
                               {"orphan_quarantine_removed", recovery_.orphan_quarantine_removed}},
                          NowIso()));
  }
  return Status::Ok();
}

Result<TableInfo> Lake::Table(const std::string& name) {
  ENGAGE_ASSIGN_OR_RETURN(const TableSpec* spec, config_.Table(name));
  TableInfo info;
  info.spec = spec;
  ENGAGE_ASSIGN_OR_RETURN(auto parts, catalog_.Partitions(name));
  for (const auto& p : parts) {
    ++info.partitions;
    info.files += p.files;
    info.rows += p.rows;
    info.bytes += p.bytes;
  }
  if (!parts.empty()) {
    info.min_dt = parts.front().dt;
    info.max_dt = parts.back().dt;
  }
  return info;
}

Result<std::vector<TableInfo>> Lake::Tables() {
  std::vector<TableInfo> out;
  for (const auto& [name, spec] : config_.tables) {
    ENGAGE_ASSIGN_OR_RETURN(TableInfo info, Table(name));
    out.push_back(std::move(info));
  }
  return out;
}

}  // namespace engage::lake
