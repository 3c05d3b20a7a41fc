// Where the master keys come from (README.md "Master key"): a 0600 file (default
// <data_dir>/secrets/master.key, made on first start) with, during and after a rotation,
// master.key.new and master.key.old beside it; or an environment variable holding the
// key in base64.
#pragma once

#include "modules/secrets/crypto.hpp"

#include <sys/stat.h>

#include <filesystem>
#include <memory>
#include <mutex>
#include <string>

namespace neurod::secrets {

struct KeySource {
  std::filesystem::path file;  // used when env is empty
  std::string env;             // the name of an environment variable holding the key in base64
};

class KeyStore {
 public:
  // Loads the keyring. With create, a missing key file is made (a fresh random key, 0600).
  // Throws Error(internal) saying what is wrong (mode, length, unset variable…).
  KeyStore(KeySource source, bool create);

  const KeySource& source() const { return source_; }
  // Whether the key file was made by this constructor.
  bool created() const { return created_; }

  // The keyring now. In file mode, a master.key that changed on disk since the last load
  // (`neurod secrets rotate-key` ran beside this process) is read again first.
  std::shared_ptr<const Keyring> keyring();
  // Reads the files again (after meeting an unknown key id).
  std::shared_ptr<const Keyring> reload();

  // Loads what `source` names, without creating anything.
  static Keyring load(const KeySource& source);

 private:
  KeySource source_;
  bool created_ = false;
  std::mutex mu_;
  std::shared_ptr<const Keyring> keyring_;
  struct stat seen_ {};
};

}  // namespace neurod::secrets
