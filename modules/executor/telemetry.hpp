// Telemetry of the node's NVIDIA GPUs: utilisation and memory of every GPU, from one
// `nvidia-smi --query-gpu=index,utilization.gpu,memory.used,memory.total` run (the monitoring
// module runs it once per sample for all GPUs, not per job). The CPU and memory of jobs
// come from the runners (Runner::usage, cgroups.hpp).
#pragma once

#include "core/units.hpp"

#include <cstdint>
#include <string>
#include <vector>

namespace neurod::executor {

struct GpuUsage {
  std::string id;                  // the index, as in LaunchSpec::gpu_ids
  double utilization = 0;          // percent of the last sample period a kernel ran (0–100)
  std::uint64_t memory_used = 0;   // bytes
  std::uint64_t memory_total = 0;  // bytes
};

// Parses `index, utilization.gpu, memory.used, memory.total` lines (MiB, no units);
// lines that do not parse ("[N/A]") are left out.
std::vector<GpuUsage> parse_nvidia_smi_usage(const std::string& csv);
// Runs nvidia-smi (a path or a name on PATH) with that query; empty when it is missing,
// fails, or takes longer than `timeout` (it is killed then).
std::vector<GpuUsage> query_gpu_usage(const std::string& nvidia_smi, Duration timeout = std::chrono::seconds(5));

}  // namespace neurod::executor
