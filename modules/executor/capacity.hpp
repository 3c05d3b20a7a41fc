// What this node can run: CPU cores, memory and NVIDIA GPUs, detected at start
// (sysconf, /proc/meminfo, the cgroup limit neurod itself runs under, nvidia-smi) and
// overridable in YAML (modules.executor.capacity).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace neurod::executor {

struct Gpu {
  std::string id;  // the index nvidia-smi and the engine use ("0", "1", …)
  std::string uuid;
  std::string model;  // "NVIDIA A100-SXM4-80GB"
  std::uint64_t memory = 0;
};

struct Capacity {
  double cpu = 0;
  std::uint64_t memory = 0;
  std::vector<Gpu> gpus;
  std::string source;  // "detected", "config" or a mix, for the log and /health
  nlohmann::json to_json() const;
};

// The GPUs nvidia-smi lists (empty when it is absent or fails), parsed from
// `nvidia-smi --query-gpu=index,uuid,name,memory.total --format=csv,noheader,nounits`.
std::vector<Gpu> detect_nvidia_gpus(const std::string& nvidia_smi = "nvidia-smi");
std::vector<Gpu> parse_nvidia_smi(const std::string& csv);
// CPU and memory; GPUs are detected separately (detect_nvidia_gpus), with the configured nvidia-smi.
Capacity detect_capacity();

}  // namespace neurod::executor
