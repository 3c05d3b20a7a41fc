// Secret files of jobs (`secret:KEY:/path` volumes), shared by both runners.
//
// A secret file is written under <secrets_dir>/<node_id>/<job_id>/ (directories 0700, the
// files 0444) and bind-mounted read-only at its target. secrets_dir is meant to be a
// tmpfs (/dev/shm/neurod-secrets by default), so values never reach a disk. The 0700
// directories guard the values on the host; 0444 lets a non-root user inside the job
// read the mounted file. The node id keeps two neurods sharing a host (or the tests'
// many servers) out of each other's files. A runner removes a job's files when its
// attempt ends, in remove(), and in adopt() for jobs nobody expects any more.
//
// Nothing here logs or puts a value into an error message.
#pragma once

#include "modules/executor/executor.hpp"

#include <filesystem>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace neurod::executor {

// The problems of a spec's mount and secret file targets, for people; nullopt when none.
// Targets are absolute, without "." or ".." segments, not "/", and distinct; a secret file
// is neither inside another target (the mount point would be made in a host directory)
// nor has another target inside it.
std::optional<std::string> check_targets(const LaunchSpec& spec);

// Why `dir` (or its nearest existing parent) keeps data on a disk: nullopt when it is on
// tmpfs or ramfs, else a sentence naming its file system.
std::optional<std::string> not_in_memory(const std::filesystem::path& dir);

class SecretFiles {
 public:
  // Files live under <secrets_dir>/<node_id> ("local" when node_id is empty). Nothing is
  // created before the first materialise().
  SecretFiles(const std::filesystem::path& secrets_dir, const std::string& node_id);
  // Removes this node's directory when it is empty (jobs that outlive neurod keep theirs).
  ~SecretFiles();
  SecretFiles(const SecretFiles&) = delete;
  SecretFiles& operator=(const SecretFiles&) = delete;

  const std::filesystem::path& root() const { return root_; }
  std::filesystem::path dir_of(const std::string& job_id) const { return root_ / job_id; }

  // Writes the job's files, replacing what an earlier attempt left, and returns their
  // read-only mounts (host file → target). Throws Error (internal) naming the path that
  // failed, never the value. Nothing is written for an empty list.
  std::vector<Mount> materialise(const std::string& job_id, const std::vector<SecretFile>& files);
  // Removes the job's files; a no-op when it has none.
  void remove(const std::string& job_id) noexcept;
  // Removes the files of every job not in `keep`; returns the job ids it removed.
  std::vector<std::string> remove_except(const std::set<std::string>& keep) noexcept;

 private:
  std::filesystem::path root_;
};

}  // namespace neurod::executor
