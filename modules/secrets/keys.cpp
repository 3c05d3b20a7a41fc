#include "modules/secrets/keys.hpp"

#include "core/errors.hpp"

#include <fmt/format.h>

#include <cstdlib>

namespace neurod::secrets {

namespace {

bool same_file(const struct stat& a, const struct stat& b) {
  return a.st_ino == b.st_ino && a.st_dev == b.st_dev && a.st_size == b.st_size &&
         a.st_mtim.tv_sec == b.st_mtim.tv_sec && a.st_mtim.tv_nsec == b.st_mtim.tv_nsec;
}

}  // namespace

Keyring KeyStore::load(const KeySource& source) {
  Keyring ring;
  if (!source.env.empty()) {
    const char* v = std::getenv(source.env.c_str());
    if (!v || !*v)
      throw Error(errc::internal,
                  fmt::format("modules.secrets.master_key_env names ${}, which is not set", source.env));
    auto key = Key::from_base64(v);
    if (!key)
      throw Error(errc::internal,
                  fmt::format("${} must hold a secrets master key: 32 random bytes in base64 (e.g. the output of "
                              "`head -c 32 /dev/urandom | base64`)",
                              source.env));
    ring.set_current(std::move(*key));
    return ring;
  }
  auto current = read_key_file(source.file);
  if (!current)
    throw Error(errc::internal, fmt::format("the secrets master key {} does not exist", source.file.string()));
  ring.set_current(std::move(*current));
  // A rotation's other key: the new one until it is in place, the previous one after.
  for (auto suffix : {".new", ".old"})
    if (auto k = read_key_file(sibling(source.file, suffix))) ring.add(std::move(*k));
  return ring;
}

KeyStore::KeyStore(KeySource source, bool create) : source_(std::move(source)) {
  if (source_.env.empty() && create && !read_key_file(source_.file)) {
    write_key_file(source_.file, Key::generate());
    created_ = true;
  }
  reload();
}

std::shared_ptr<const Keyring> KeyStore::reload() {
  std::lock_guard lock(mu_);
  if (source_.env.empty()) ::stat(source_.file.c_str(), &seen_);
  keyring_ = std::make_shared<const Keyring>(load(source_));
  return keyring_;
}

std::shared_ptr<const Keyring> KeyStore::keyring() {
  if (source_.env.empty()) {
    struct stat now {};
    bool changed = false;
    {
      std::lock_guard lock(mu_);
      changed = ::stat(source_.file.c_str(), &now) == 0 && !same_file(now, seen_);
    }
    if (changed) return reload();
  }
  std::lock_guard lock(mu_);
  return keyring_;
}

}  // namespace neurod::secrets
