#include "modules/executor/capacity.hpp"

#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <sstream>

namespace neurod::executor {

nlohmann::json Capacity::to_json() const {
  auto gpus_json = nlohmann::json::array();
  for (const auto& g : gpus) gpus_json.push_back({{"id", g.id}, {"uuid", g.uuid}, {"model", g.model}, {"memory", g.memory}});
  return {{"cpu", cpu}, {"memory", memory}, {"gpus", gpus_json}, {"source", source}};
}

namespace {

std::string trim(std::string s) {
  while (!s.empty() && (s.back() == ' ' || s.back() == '\r' || s.back() == '\n')) s.pop_back();
  std::size_t i = 0;
  while (i < s.size() && s[i] == ' ') ++i;
  return s.substr(i);
}

std::uint64_t read_u64(const char* path) {
  std::ifstream in(path);
  std::uint64_t v = 0;
  if (!(in >> v)) return 0;
  return v;
}

std::uint64_t meminfo_total() {
  std::ifstream in("/proc/meminfo");
  std::string key;
  std::uint64_t kib = 0;
  std::string unit;
  while (in >> key >> kib >> unit)
    if (key == "MemTotal:") return kib * 1024;
  return 0;
}

// The memory limit of the cgroup neurod runs in (a container or a systemd slice), which
// is what its jobs can use too when they are made under it.
std::uint64_t cgroup_memory_limit() {
  if (auto v2 = std::ifstream("/sys/fs/cgroup/memory.max")) {
    std::string s;
    v2 >> s;
    if (s != "max" && !s.empty()) return std::strtoull(s.c_str(), nullptr, 10);
    return 0;
  }
  auto v1 = read_u64("/sys/fs/cgroup/memory/memory.limit_in_bytes");
  return v1 >= (1ull << 60) ? 0 : v1;
}

}  // namespace

std::vector<Gpu> parse_nvidia_smi(const std::string& csv) {
  std::vector<Gpu> out;
  std::istringstream in(csv);
  std::string line;
  while (std::getline(in, line)) {
    std::vector<std::string> cols;
    std::stringstream ls(line);
    std::string col;
    while (std::getline(ls, col, ',')) cols.push_back(trim(col));
    if (cols.size() < 4 || cols[0].empty()) continue;
    Gpu g;
    g.id = cols[0];
    g.uuid = cols[1];
    g.model = cols[2];
    g.memory = std::strtoull(cols[3].c_str(), nullptr, 10) * 1024 * 1024;  // MiB
    out.push_back(std::move(g));
  }
  return out;
}

std::vector<Gpu> detect_nvidia_gpus(const std::string& nvidia_smi) {
  std::string cmd = nvidia_smi + " --query-gpu=index,uuid,name,memory.total --format=csv,noheader,nounits 2>/dev/null";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (!p) return {};
  std::string out;
  char buf[4096];
  while (auto n = std::fread(buf, 1, sizeof buf, p)) out.append(buf, n);
  int rc = ::pclose(p);
  if (rc != 0) return {};
  return parse_nvidia_smi(out);
}

Capacity detect_capacity() {
  Capacity c;
  long cores = ::sysconf(_SC_NPROCESSORS_ONLN);
  c.cpu = cores > 0 ? static_cast<double>(cores) : 1.0;
  c.memory = meminfo_total();
  if (auto limit = cgroup_memory_limit(); limit > 0 && (c.memory == 0 || limit < c.memory)) c.memory = limit;
  c.source = "detected";
  return c;
}

}  // namespace neurod::executor
