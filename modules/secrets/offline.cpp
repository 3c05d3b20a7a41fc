// `neurod secrets rotate-key`: a new master key, every value re-encrypted under it in one
// transaction, then the key file replaced. Each step leaves a state that neurod can read
// and that running the command again finishes (README.md "Rotating the master key").
#include "modules/secrets/module.hpp"

#include "app/offline_cli.hpp"
#include "db/database.hpp"

#include <fmt/format.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <iostream>

namespace neurod::secrets {

namespace {

struct Rotated {
  std::int64_t reencrypted = 0;
  std::int64_t already = 0;
};

// Re-encrypts every value not yet under `next`, in one transaction: all or nothing.
Rotated reencrypt(db::Database& db, const Keyring& ring, const Key& next, const std::string& cluster) {
  return db.write([&](soci::session& s) {
    Rotated out;
    repo::for_each(s, [&](const repo::Row& row) {
      if (row.sealed.key_id == next.id()) {
        ++out.already;
        return;
      }
      auto ad = secret_uri(cluster, row.meta.project, row.meta.name);
      const Key* key = ring.find(row.sealed.key_id);
      if (!key)
        throw Error(errc::internal,
                    fmt::format("the secret '{}' in project '{}' is encrypted with master key id {}, which is not "
                                "loaded; nothing was changed",
                                row.meta.name, row.meta.project, row.sealed.key_id));
      auto plain = open(*key, row.sealed, ad);
      if (!plain)
        throw Error(errc::internal,
                    fmt::format("the secret '{}' in project '{}' fails authentication (tampered with?); nothing was "
                                "changed. Delete it (neuro secret rm) and run this again",
                                row.meta.name, row.meta.project));
      auto sealed = seal(next, *plain, ad);
      wipe(*plain);
      repo::update_sealed(s, row.meta.project, row.meta.name, sealed);
      ++out.reencrypted;
    });
    return out;
  });
}

void rename_or_throw(const std::filesystem::path& from, const std::filesystem::path& to) {
  if (std::rename(from.c_str(), to.c_str()) != 0)
    throw Error(errc::internal,
                fmt::format("cannot rename {} to {}: {}", from.string(), to.string(), std::strerror(errno)));
}

int rotate_file(const KeySource& src, db::Database& db, const std::string& cluster) {
  auto ring = KeyStore::load(src);  // master.key, and .new/.old when present
  auto new_path = sibling(src.file, ".new"), old_path = sibling(src.file, ".old");
  auto pending = read_key_file(new_path);
  Key next = pending ? *pending : Key::generate();
  if (pending) {
    std::cerr << "finishing the rotation to " << new_path.string() << " (key id " << next.id() << ")\n";
  } else {
    // 1. The new key is on disk before any value depends on it.
    write_key_file(new_path, next);
    ring.add(next);
  }
  // 2. One transaction: every value under the new key, or none.
  auto done = reencrypt(db, ring, next, cluster);
  // 3. Only now the files: the previous key to master.key.old (kept: it reads backups of the
  //    database taken before today), then master.key.new over master.key. master.key exists
  //    at every moment.
  const Key& previous = ring.current();
  if (previous.id() != next.id()) write_key_file(old_path, previous);
  rename_or_throw(new_path, src.file);
  std::cout << fmt::format(
      "re-encrypted {} secret{} under the new master key {} ({}){}.\nThe previous key is in {}: keep it as long as "
      "you may restore a database backup taken before now, then delete it.\n",
      done.reencrypted, done.reencrypted == 1 ? "" : "s", next.id(), src.file.string(),
      done.already ? fmt::format(" ({} already were)", done.already) : "", old_path.string());
  return 0;
}

int rotate_env(const KeySource& src, db::Database& db, const std::string& cluster, bool new_key_stdin) {
  if (!new_key_stdin) {
    std::cerr << "neurod secrets rotate-key: the master key comes from $" << src.env
              << ", which this command cannot change. Make a new key (head -c 32 /dev/urandom | base64), pass it with "
                 "--new-key-stdin, then set $"
              << src.env << " to it and restart neurod.\n";
    return 2;
  }
  auto ring = KeyStore::load(src);
  std::string line;
  std::getline(std::cin, line);
  auto next = Key::from_base64(line);
  wipe(line);
  if (!next) throw Error(errc::invalid_argument, "stdin: expected a new master key: 32 bytes in base64");
  auto done = reencrypt(db, ring, *next, cluster);
  std::cout << fmt::format(
      "re-encrypted {} secret{} under the new master key {}. Now set ${} to the new key and restart neurod: until "
      "then it cannot read them.\n",
      done.reencrypted, done.reencrypted == 1 ? "" : "s", next->id(), src.env);
  return 0;
}

int secrets_command(const std::vector<std::string>& args, app::OfflineContext& ctx) {
  CLI::App cli{"Manage the secrets' master key (offline)", "neurod secrets"};
  cli.require_subcommand(1);
  bool new_key_stdin = false;
  auto* rotate = cli.add_subcommand(
      "rotate-key",
      "Make a new master key and re-encrypt every secret under it in one transaction; the previous key is kept as "
      "master.key.old. Safe to run again after a crash: it finishes what was started.");
  rotate->add_flag("--new-key-stdin", new_key_stdin,
                   "With master_key_env: read the new key (base64) from stdin instead of making one");
  if (auto rc = app::parse_offline_args(cli, args)) return *rc;
  const auto config = app::offline_config<Config>(ctx);
  auto src = key_source(config, ctx.global().data_dir);
  if (src.env.empty() && !read_key_file(src.file))
    throw Error(errc::invalid_argument,
                fmt::format("there is no master key at {} yet: start neurod once to make one", src.file.string()));
  if (!src.env.empty()) return rotate_env(src, ctx.db(), ctx.global().cluster_name, new_key_stdin);
  if (new_key_stdin)
    throw Error(errc::invalid_argument, "--new-key-stdin is for master_key_env; the file's key is made here");
  return rotate_file(src, ctx.db(), ctx.global().cluster_name);
}

}  // namespace

std::vector<app::OfflineCommand> Module::offline_commands() {
  return {{"secrets", "Manage the secrets' master key: rotate-key (offline)", secrets_command}};
}

}  // namespace neurod::secrets
