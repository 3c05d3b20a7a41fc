// Reads neurod.yaml: the global sections plus one section per module under `modules:`,
// all validated before anything starts (DESIGN §5).
#pragma once

#include <filesystem>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "config/global.hpp"
#include "config/schema.hpp"

namespace neurod::config {

// One per module, filled by the app from app::ModuleInfo.
struct SectionSpec {
  std::string name;
  std::function<std::shared_ptr<void>(const YAML::Node&, const std::string& key_prefix, Errors&)> parse;
  std::function<std::string(int indent)> reference;
};

struct LoadedConfig {
  std::string file;
  GlobalConfig global;
  std::map<std::string, std::shared_ptr<void>> modules;  // parsed config of every known module
  std::map<std::string, bool> enabled;                   // modules.<name>.enabled (default true)
};

// Throws ConfigError with every error, or with the single line "cannot read F: reason", or
// with a YAML syntax error and its line.
LoadedConfig load_file(const std::filesystem::path& path, const std::vector<SectionSpec>& modules);
LoadedConfig load_string(const std::string& yaml, const std::string& display_name,
                         const std::vector<SectionSpec>& modules);

// The whole commented reference (config/neurod.reference.yaml): global keys, then every
// module's section with its `enabled` switch. Parses back to the defaults.
std::string reference_document(const std::vector<SectionSpec>& modules);

}  // namespace neurod::config
