#include "cli/output.hpp"
#include "cli/storage_path.hpp"

#include <doctest/doctest.h>

using namespace neurod::cli;

TEST_CASE("storage URIs: relative, absolute and with a cluster") {
  auto r = StorageUri::parse("storage:data/x.txt");
  CHECK(r.relative);
  CHECK_FALSE(r.cluster);
  CHECK(r.segments == std::vector<std::string>{"data", "x.txt"});
  CHECK_FALSE(r.trailing_slash);
  auto rr = r.resolved("alice");
  CHECK(rr.project == "alice");
  CHECK(storage_target(rr) == "/api/v1/storage/alice/data/x.txt");
  CHECK(rr.display() == "storage:data/x.txt");

  auto a = StorageUri::parse("storage:/ml/data/");
  CHECK_FALSE(a.relative);
  CHECK(a.project == "ml");
  CHECK(a.segments == std::vector<std::string>{"data"});
  CHECK(a.trailing_slash);
  CHECK(a.display() == "storage:/ml/data");
  CHECK(a.absolute_path() == "/ml/data");

  auto c = StorageUri::parse("storage://e2e/bob/d/e");
  REQUIRE(c.cluster);
  CHECK(*c.cluster == "e2e");
  CHECK(c.project == "bob");
  CHECK(c.path() == "d/e");
  CHECK(c.display() == "storage://e2e/bob/d/e");
}

TEST_CASE("storage URIs: the project's root, dots and bad forms") {
  auto root = StorageUri::parse("storage:");
  CHECK(root.relative);
  CHECK(root.is_root());
  CHECK(root.trailing_slash);
  CHECK(storage_target(root.resolved("alice"), "LISTSTATUS") == "/api/v1/storage/alice?op=LISTSTATUS");
  CHECK(StorageUri::parse("storage:/alice").is_root());
  CHECK(StorageUri::parse("storage:a/./b//c/../d").path() == "a/b/d");
  CHECK_THROWS_AS(StorageUri::parse("storage:.."), CliError);
  CHECK_THROWS_AS(StorageUri::parse("storage:/alice/.."), CliError);
  CHECK_THROWS_AS(StorageUri::parse("storage:/"), CliError);
  CHECK_THROWS_AS(StorageUri::parse("storage://"), CliError);
  CHECK_THROWS_AS(StorageUri::parse("data/x"), CliError);
  CHECK(is_storage_uri("storage:x"));
  CHECK_FALSE(is_storage_uri("./storage:x"));
}

TEST_CASE("storage URIs: segments are percent-encoded, ops and parameters in the query") {
  auto u = StorageUri::parse("storage:/alice/my data/ü?#%.txt");
  CHECK(storage_target(u) == "/api/v1/storage/alice/my%20data/%C3%BC%3F%23%25.txt");
  CHECK(storage_target(u.parent(), "MKDIRS", {{"parents", "false"}}) ==
        "/api/v1/storage/alice/my%20data?op=MKDIRS&parents=false");
  CHECK(u.child("a/b").path() == "my data/ü?#%.txt/a/b");
  CHECK(u.name() == "ü?#%.txt");
}

TEST_CASE("path filter: the last matching pattern wins, base names and relative paths match") {
  PathFilter f;
  CHECK(f.included("anything", false));
  f.exclude("*.tmp");
  f.exclude("cache/");
  f.include("keep.tmp");
  CHECK_FALSE(f.included("a.tmp", false));
  CHECK_FALSE(f.included("deep/dir/b.tmp", false));
  CHECK(f.included("deep/dir/keep.tmp", false));
  CHECK(f.included("a.txt", false));
  CHECK_FALSE(f.included("x/cache", true));
  CHECK(f.included("x/cache", false));  // a file named cache: the pattern is for directories
  PathFilter g;
  g.exclude("*");
  g.include("*.py");
  CHECK(g.included("src/main.py", false));
  CHECK_FALSE(g.included("src/main.c", false));
  PathFilter h;
  h.include("*.py");
  h.exclude("*");
  CHECK_FALSE(h.included("main.py", false));
  PathFilter rel;
  rel.exclude("data/raw/*");
  CHECK_FALSE(rel.included("data/raw/x.bin", false));
  CHECK(rel.included("data/clean/x.bin", false));
}

TEST_CASE("cp landing: into a directory, onto a name, and refusals") {
  // Existing directory or a trailing slash: into it.
  CHECK(landing(false, false, false, DstKind::directory, false, "d").into);
  CHECK(landing(true, false, true, DstKind::missing, false, "d/").into);
  // A missing destination without a slash: the copy takes that name.
  CHECK_FALSE(landing(true, false, false, DstKind::missing, false, "d").into);
  CHECK_FALSE(landing(false, false, false, DstKind::file, false, "f").into);
  // Several sources need a directory.
  CHECK(landing(false, true, false, DstKind::missing, false, "d").into);
  CHECK(landing(false, true, false, DstKind::file, false, "f").error == "target f is not a directory");
  CHECK(landing(false, false, true, DstKind::file, false, "f/").error == "target f/ is not a directory");
  // A directory cannot replace a file.
  CHECK_FALSE(landing(true, false, false, DstKind::file, false, "f").error.empty());
  // -T: always the name itself.
  CHECK_FALSE(landing(true, false, false, DstKind::directory, true, "d").into);
  CHECK_FALSE(landing(false, true, false, DstKind::directory, true, "d").error.empty());
}

TEST_CASE("copy plan: files in order, excluded subtrees left out, mkdir only for empty leaves") {
  std::vector<TreeEntry> tree{
      {"", true},
      {"a", true},
      {"a/x.txt", false, 10},
      {"a/empty", true},
      {"b", true},
      {"b/c", true},
      {"b/c/d", true},
      {"cache", true},
      {"cache/big.bin", false, 1000},
      {"cache/sub", true},
      {"cache/sub/y", false, 5},
      {"e.tmp", false, 7},
      {"z.txt", false, 0},
  };
  PathFilter none;
  auto all = plan_copy(tree, none);
  REQUIRE(all.files.size() == 5);
  CHECK(all.files[0].rel == "a/x.txt");
  CHECK(all.files[4].rel == "z.txt");
  CHECK(all.bytes == 1022);
  CHECK(all.mkdirs == std::vector<std::string>{"a/empty", "b/c/d"});

  PathFilter f;
  f.exclude("cache");
  f.exclude("*.tmp");
  auto some = plan_copy(tree, f);
  REQUIRE(some.files.size() == 2);
  CHECK(some.files[0].rel == "a/x.txt");
  CHECK(some.files[1].rel == "z.txt");
  CHECK(some.bytes == 10);
  CHECK(some.mkdirs == std::vector<std::string>{"a/empty", "b/c/d"});

  // An empty source directory: the root itself is made.
  auto empty = plan_copy({{"", true}}, none);
  CHECK(empty.files.empty());
  CHECK(empty.mkdirs == std::vector<std::string>{""});
  // Everything excluded: still the root.
  PathFilter everything;
  everything.exclude("*");
  CHECK(plan_copy(tree, everything).mkdirs == std::vector<std::string>{""});
}

TEST_CASE("ls and progress formatting") {
  CHECK(format_ls_size(0, true) == "0");
  CHECK(format_ls_size(1023, true) == "1023");
  CHECK(format_ls_size(1536, true) == "1.5K");
  CHECK(format_ls_size(5u << 20, true) == "5.0M");
  CHECK(format_ls_size(123u << 20, true) == "123M");
  CHECK(format_ls_size(1536, false) == "1536");
  CHECK(type_letter("DIRECTORY") == 'd');
  CHECK(type_letter("FILE") == '-');
  CHECK(type_letter("SYMLINK") == 'l');
  CHECK(format_eta(0) == "0:00");
  CHECK(format_eta(61.2) == "1:02");
  CHECK(format_eta(3725) == "1:02:05");
  CHECK(format_eta(-1) == "--:--");
  CHECK(format_rate(0) == "0 B/s");
  CHECK(join_rel("", "a") == "a");
  CHECK(join_rel("a", "b") == "a/b");
}
