#include "modules/secrets/module.hpp"

#include "core/log.hpp"
#include "db/database.hpp"
#include "modules/auth/module.hpp"

#include <fmt/format.h>
#include <fmt/ranges.h>

namespace neurod::secrets {

void Config::describe(config::Schema<Config>& s) {
  s.field("master_key_file", &Config::master_key_file,
          "The master key that encrypts every secret: 32 random bytes, mode 0600 (neurod refuses a file others may\n"
          "read). Empty: {data_dir}/secrets/master.key, made on first start. A relative path is under data_dir.\n"
          "Back it up apart from the database: without it no secret can be read.");
  s.field("master_key_env", &Config::master_key_env,
          "Instead of the file: the name of an environment variable that holds the master key in base64\n"
          "(`head -c 32 /dev/urandom | base64`). Empty: use master_key_file.");
}

KeySource key_source(const Config& config, const std::filesystem::path& data_dir) {
  if (!config.master_key_env.empty() && !config.master_key_file.empty())
    throw Error(errc::invalid_argument,
                "modules.secrets: set master_key_file or master_key_env, not both (the key comes from one place)");
  KeySource src;
  src.env = config.master_key_env;
  std::filesystem::path f = config.master_key_file.empty() ? std::filesystem::path("secrets") / "master.key"
                                                           : std::filesystem::path(config.master_key_file);
  src.file = f.is_absolute() ? f : data_dir / f;
  return src;
}

Module::Module(const Config& config, app::ModuleContext& ctx) : cluster_(ctx.global().cluster_name) {
  auto& authm = ctx.get<auth::Module>();
  if (config.master_key_file.empty() && config.master_key_env.empty()) ctx.module_dir("secrets");  // 0700
  auto source = key_source(config, ctx.global().data_dir);

  auto counts = ctx.db().read([](soci::session& s) { return repo::count_by_key(s); });
  std::int64_t stored = 0;
  for (const auto& [id, n] : counts) stored += n;
  if (source.env.empty() && stored > 0 && !std::filesystem::exists(source.file))
    throw Error(errc::internal,
                fmt::format("the database holds {} secret{} but the master key {} is missing: restore it from a "
                            "backup (or point modules.secrets.master_key_file at it); a new key could not decrypt "
                            "them",
                            stored, stored == 1 ? "" : "s", source.file.string()));

  keys_ = std::make_unique<KeyStore>(source, true);
  if (keys_->created())
    info(
        "secrets: created the master key {} (mode 0600); back it up apart from the database: without it no "
        "secret can be read",
        source.file.string());

  auto ring = keys_->keyring();
  std::vector<std::string> unknown;
  for (const auto& [id, n] : counts)
    if (!ring->find(id)) unknown.push_back(fmt::format("{} ({} value{})", id, n, n == 1 ? "" : "s"));
  if (!unknown.empty())
    throw Error(errc::internal,
                fmt::format("secrets in the database are encrypted with master key id {}, which {} not the key in "
                            "{}{}: is it the right key?",
                            fmt::join(unknown, ", "), unknown.size() == 1 ? "is" : "are",
                            source.env.empty() ? source.file.string() : "$" + source.env,
                            source.env.empty() ? " (nor in its .new/.old beside it)" : ""));
  if (source.env.empty() && std::filesystem::exists(sibling(source.file, ".new")))
    warn("secrets: {} exists: a key rotation did not finish; run `neurod secrets rotate-key` again to finish it",
         sibling(source.file, ".new").string());

  service_ = std::make_unique<Service>(ctx.db(), authm.authorizer(), *keys_);
  add_routes(ctx.router());
}

Module::~Module() = default;

app::Health Module::health() {
  app::Health h;
  h.details = {{"key_source", keys_->source().env.empty() ? "file" : "env"}};
  return h;
}

std::optional<std::string> Module::value(std::string_view secret_uri) { return service_->value(secret_uri); }

}  // namespace neurod::secrets
