// The secret files helper both runners share: where and how secret files are written,
// when they go, and which mount targets are refused.
#include "modules/executor/secret_files.hpp"
#include "unit/executor/runner_support.hpp"
#include "support/temp_dir.hpp"

#include <doctest/doctest.h>
#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>

namespace {

namespace fs = std::filesystem;
using neurod::executor::LaunchSpec;
using neurod::executor::SecretFiles;
using neurod::executor::check_targets;

unsigned mode_of(const fs::path& p) {
  struct stat st {};
  REQUIRE(::lstat(p.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream out;
  out << in.rdbuf();
  return out.str();
}

LaunchSpec with_targets(std::vector<std::string> mounts, std::vector<std::string> secrets) {
  LaunchSpec s;
  for (auto& m : mounts) s.mounts.push_back({"/host", m, true});
  for (auto& t : secrets) s.secret_files.push_back({t, "v"});
  return s;
}

}  // namespace

TEST_CASE("secret files: written 0444 in 0700 directories under secrets_dir/node/job, removed on request") {
  neurod::test::TempDir tmp;
  auto dir = tmp / "secrets";
  {
    SecretFiles files(dir, "node-x");
    CHECK(files.root() == dir / "node-x");
    CHECK(files.materialise("job-a", {}).empty());
    CHECK_FALSE(fs::exists(dir));  // nothing is made for a job without secret files

    auto mounts = files.materialise("job-a", {{"/etc/key", "s3cr3t\n"}, {"/var/run/x/token", std::string("a\0b", 3)}});
    REQUIRE(mounts.size() == 2);
    CHECK(mounts[0].target == "/etc/key");
    CHECK(mounts[0].read_only);
    CHECK(mounts[1].target == "/var/run/x/token");
    CHECK(fs::path(mounts[0].source).parent_path() == dir / "node-x" / "job-a");
    CHECK(slurp(mounts[0].source) == "s3cr3t\n");
    CHECK(slurp(mounts[1].source) == std::string("a\0b", 3));
    CHECK(mode_of(mounts[0].source) == 0444);
    CHECK(mode_of(mounts[1].source) == 0444);
    CHECK(mode_of(dir) == 0700);
    CHECK(mode_of(dir / "node-x") == 0700);
    CHECK(mode_of(dir / "node-x" / "job-a") == 0700);
    // The file names say nothing about the secret.
    CHECK(fs::path(mounts[0].source).filename() == "0");

    // A new attempt replaces what the last one left.
    auto again = files.materialise("job-a", {{"/k", "new"}});
    REQUIRE(again.size() == 1);
    CHECK(slurp(again[0].source) == "new");
    CHECK_FALSE(fs::exists(mounts[1].source));

    files.materialise("job-b", {{"/k", "b"}});
    files.materialise("job-c", {{"/k", "c"}});
    files.remove("job-a");
    CHECK_FALSE(fs::exists(dir / "node-x" / "job-a"));
    files.remove("job-a");  // twice is fine
    files.remove("../node-x");  // never outside the node's directory
    CHECK(fs::exists(dir / "node-x"));

    auto removed = files.remove_except({"job-b"});
    CHECK(removed == std::vector<std::string>{"job-c"});
    CHECK(fs::exists(dir / "node-x" / "job-b"));
    CHECK_FALSE(fs::exists(dir / "node-x" / "job-c"));
    files.remove("job-b");
  }
  // The node's directory goes with the helper once it is empty.
  CHECK_FALSE(fs::exists(dir / "node-x"));
}

TEST_CASE("secret files: another node's files are not touched, and jobs left running keep theirs") {
  neurod::test::TempDir tmp;
  SecretFiles one(tmp / "s", "node-1");
  SecretFiles two(tmp / "s", "node-2");
  one.materialise("job-1", {{"/k", "1"}});
  two.materialise("job-2", {{"/k", "2"}});
  CHECK(one.remove_except({}) == std::vector<std::string>{"job-1"});
  CHECK(fs::exists(tmp / "s" / "node-2" / "job-2" / "0"));
  {
    SecretFiles three(tmp / "s", "node-3");
    three.materialise("job-3", {{"/k", "3"}});
  }
  CHECK(fs::exists(tmp / "s" / "node-3" / "job-3" / "0"));
}

TEST_CASE("secret files: an existing shared secrets_dir keeps its mode") {
  neurod::test::TempDir tmp;
  fs::create_directories(tmp / "shared");
  fs::permissions(tmp / "shared", fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                                      fs::perms::others_read | fs::perms::others_exec);
  SecretFiles files(tmp / "shared", "node-1");
  files.materialise("job-1", {{"/k", "1"}});
  CHECK(mode_of(tmp / "shared") == 0755);
  CHECK(mode_of(tmp / "shared" / "node-1") == 0700);
  files.remove("job-1");
}

TEST_CASE("secret files: mount and secret file targets are checked") {
  CHECK_FALSE(check_targets(with_targets({"/data", "/data/sub", "/out"}, {"/etc/key", "/var/secrets/key"})));
  CHECK(check_targets(with_targets({"data"}, {}))->find("absolute") != std::string::npos);
  CHECK(check_targets(with_targets({}, {"/"}))->find("invalid secret file target") != std::string::npos);
  CHECK(check_targets(with_targets({}, {"/etc/../key"})));
  CHECK(check_targets(with_targets({"/data/"}, {"/data"}))->find("two volumes are mounted at /data") !=
        std::string::npos);
  auto in_volume = check_targets(with_targets({"/data"}, {"/data//key"}));
  REQUIRE(in_volume);
  CHECK(*in_volume == "the secret file /data/key is inside the volume at /data: put it elsewhere");
  CHECK(check_targets(with_targets({"/etc/key/sub"}, {"/etc/key"}))->find("inside the secret file /etc/key") !=
        std::string::npos);
  CHECK(check_targets(with_targets({}, {"/a/b", "/a/b/c"})));
}

TEST_CASE("secret files: secrets_dir on tmpfs is fine, elsewhere it is named") {
  if (!neurod::executor::not_in_memory("/dev/shm")) {
    CHECK_FALSE(neurod::executor::not_in_memory("/dev/shm/neurod-secrets-missing/node"));
  } else {
    MESSAGE("/dev/shm is not a tmpfs here: " << *neurod::executor::not_in_memory("/dev/shm"));
  }
  auto proc = neurod::executor::not_in_memory("/proc/self");
  REQUIRE(proc);
  CHECK(proc->find("is not on tmpfs") != std::string::npos);
}
