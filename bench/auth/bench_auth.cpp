// The permission model's benchmark: a realistic GrantSet (users with personal
// projects, shared paths, denies, project roles held by users, nested roles), then
//   (a) the time to build the set,
//   (b) cold tree builds for every principal (tree_of on an empty cache),
//   (c) warm checks through GrantSet::tree_of(principal)->allows(uri, action), the
//       Authorizer's hot path, cache lookup included: throughput, then per-check latency.
// Every URI is generated before the clock starts. Run by bench/auth/run.sh.
//
//   neurod_bench_auth [--users N] [--roles N] [--grants N] [--checks N] [--distinct N]
//                     [--threads N] [--seed N]
#include "modules/auth/permissions.hpp"

#include <time.h>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <random>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

using namespace neurod::auth;
using Clock = std::chrono::steady_clock;

namespace {

struct Args {
  std::size_t users = 9000;
  std::size_t roles = 1000;
  std::size_t grants = 100000;
  std::size_t checks = 5000000;
  std::size_t distinct = 1000000;  // distinct pre-generated checks, cycled through
  std::size_t threads = 1;         // >1 adds a multi-threaded throughput run
  std::uint64_t seed = 42;
};

[[noreturn]] void usage(const char* argv0) {
  std::fprintf(stderr,
               "usage: %s [--users N] [--roles N] [--grants N] [--checks N] [--distinct N] [--threads N] "
               "[--seed N]\n",
               argv0);
  std::exit(2);
}

Args parse_args(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string_view k = argv[i];
    if (i + 1 >= argc) usage(argv[0]);
    char* end = nullptr;
    auto v = std::strtoull(argv[++i], &end, 10);
    if (end == nullptr || *end != '\0') usage(argv[0]);
    if (k == "--users")
      a.users = v;
    else if (k == "--roles")
      a.roles = v;
    else if (k == "--grants")
      a.grants = v;
    else if (k == "--checks")
      a.checks = v;
    else if (k == "--distinct")
      a.distinct = v;
    else if (k == "--threads")
      a.threads = v;
    else if (k == "--seed")
      a.seed = v;
    else
      usage(argv[0]);
  }
  if (a.users == 0 || a.roles < 3 || a.checks == 0 || a.distinct == 0 || a.threads == 0) usage(argv[0]);
  return a;
}

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

// This thread's CPU time: against the wall clock it shows whether the machine was busy
// with something else while we measured (the figures are then pessimistic).
double thread_cpu_seconds() {
  timespec ts{};
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<double>(ts.tv_sec) + static_cast<double>(ts.tv_nsec) * 1e-9;
}

std::string cpu_model() {
  std::ifstream in("/proc/cpuinfo");
  std::string line;
  while (std::getline(in, line)) {
    if (line.starts_with("model name")) {
      auto colon = line.find(':');
      if (colon != std::string::npos) return line.substr(colon + 2);
    }
  }
  return "unknown";
}

char buf[64];
std::string num(std::size_t n) {
  std::snprintf(buf, sizeof buf, "%zu", n);
  std::string s = buf, out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (i > 0 && (s.size() - i) % 3 == 0) out += ',';
    out += s[i];
  }
  return out;
}

// ---------------------------------------------------------------------------------------
// The population

struct Population {
  std::vector<std::string> names;  // users first, then roles
  std::size_t users = 0;
  GrantSet::Map map;
  std::size_t grants = 0;
  // What the check generator needs to aim at allowed as well as refused URIs.
  std::vector<std::vector<std::size_t>> projects_of_user;  // via held roles
  std::vector<std::vector<std::string>> shared_with_user;  // URIs shared with the user
  std::vector<std::string> projects;
};

const char* const kWords[] = {"data", "models", "ckpt", "logs", "datasets", "results", "tmp", "code", "eval", "raw"};

std::string project_name(std::size_t k) {
  std::snprintf(buf, sizeof buf, "proj%04zu", k);
  return buf;
}

Population make_population(const Args& a, std::mt19937_64& rng) {
  Population p;
  p.users = a.users;
  for (std::size_t i = 0; i < a.users; ++i) {
    std::snprintf(buf, sizeof buf, "user%05zu", i);
    p.names.emplace_back(buf);
  }
  // Project roles, three per project and nested: manager holds writer holds reader.
  const char* const kinds[] = {"reader", "writer", "manager"};
  std::size_t nprojects = a.roles / 3;
  for (std::size_t k = 0; k < nprojects; ++k) p.projects.push_back(project_name(k));
  std::vector<GrantSet::Grants> by(a.users + a.roles);
  for (std::size_t r = 0; r < a.roles; ++r) {
    std::size_t k = std::min(r / 3, nprojects - 1);
    std::string proj = "c/" + p.projects[k];
    p.names.push_back(proj + "/" + kinds[r % 3] + (r / 3 >= nprojects ? "-" + std::to_string(r) : ""));
    auto& g = by[a.users + r];
    switch (r % 3) {
      case 0:
        for (auto s : {"storage", "job", "image", "blob"}) g.push_back({std::string(s) + "://" + proj, Action::read});
        g.push_back({"secret://" + proj + "/shared", Action::list});
        break;
      case 1:
        g.push_back({"role://" + proj + "/reader", Action::read});
        for (auto s : {"storage", "job", "image", "disk"}) g.push_back({std::string(s) + "://" + proj, Action::write});
        break;
      default:
        g.push_back({"role://" + proj + "/writer", Action::read});
        for (auto s : {"storage", "job", "project", "secret"}) {
          g.push_back({std::string(s) + "://" + proj, Action::manage});
        }
        g.push_back({"storage://" + proj + "/restricted", Action::deny});
        break;
    }
  }

  p.projects_of_user.resize(a.users);
  p.shared_with_user.resize(a.users);
  std::uniform_int_distribution<std::size_t> any_user(0, a.users - 1), any_role(0, a.roles - 1), pct(0, 99),
      word(0, std::size(kWords) - 1), nroles(1, 3), id(0, 99999);
  for (std::size_t u = 0; u < a.users; ++u) {
    auto& g = by[u];
    const auto& me = p.names[u];
    for (auto s : {"storage", "job", "image", "secret"}) g.push_back({std::string(s) + "://c/" + me, Action::manage});
    for (std::size_t n = nroles(rng); n > 0; --n) {
      auto r = any_role(rng);
      g.push_back({"role://" + p.names[a.users + r], Action::read});
      p.projects_of_user[u].push_back(std::min(r / 3, nprojects - 1));
    }
  }
  for (const auto& g : by) p.grants += g.size();
  // The rest: shares of other users' paths, and some denies, to reach the total.
  while (p.grants < a.grants) {
    auto u = any_user(rng);
    auto other = p.names[any_user(rng)];
    auto roll = pct(rng);
    Grant g;
    if (roll < 10) {
      // A deny carving a hole out of a project the user reaches through a role.
      std::string proj = p.projects_of_user[u].empty() ? p.projects[0] : p.projects[p.projects_of_user[u].front()];
      g = {"storage://c/" + proj + "/" + kWords[word(rng)], Action::deny};
    } else if (roll < 55) {
      g = {"storage://c/" + other + "/" + kWords[word(rng)] + "/" + kWords[word(rng)],
           roll < 45 ? Action::read : Action::write};
    } else if (roll < 85) {
      g = {"job://c/" + other + "/job-" + std::to_string(id(rng)), Action::read};
    } else {
      g = {"image://c/" + other + "/img-" + std::to_string(id(rng) % 100), Action::read};
    }
    if (g.action != Action::deny) p.shared_with_user[u].push_back(g.uri);
    by[u].push_back(std::move(g));
    ++p.grants;
  }
  for (std::size_t i = 0; i < by.size(); ++i) {
    p.map[p.names[i]] = std::make_shared<const GrantSet::Grants>(std::move(by[i]));
  }
  return p;
}

// ---------------------------------------------------------------------------------------
// The checks

struct Check {
  std::uint32_t principal;
  std::uint32_t uri_off;
  std::uint32_t uri_len;
  Action action;
};

struct Checks {
  std::vector<Check> list;
  std::string arena;
  std::string_view uri(const Check& c) const { return {arena.data() + c.uri_off, c.uri_len}; }
};

Checks make_checks(const Population& p, std::size_t n, std::mt19937_64& rng) {
  Checks out;
  out.list.reserve(n);
  out.arena.reserve(n * 48);
  std::uniform_int_distribution<std::size_t> any_user(0, p.users - 1), any_principal(0, p.names.size() - 1), pct(0, 99),
      word(0, std::size(kWords) - 1), id(0, 99999), act(1, 4);
  const char* const own_schemes[] = {"storage", "job", "image", "secret"};
  const char* const project_schemes[] = {"storage", "job", "image", "blob", "disk", "secret"};
  std::string uri;
  // Appends lo..hi segments, never past 6 in all (resource URIs are 3 to 6 deep).
  auto tail = [&](std::size_t lo, std::size_t hi) {
    auto depth = static_cast<std::size_t>(std::count(uri.begin(), uri.end(), '/')) - 1;
    auto n = std::uniform_int_distribution<std::size_t>(lo, hi)(rng);
    for (; n > 0 && depth < 6; --n, ++depth) {
      uri += '/';
      uri += (pct(rng) < 50) ? std::string(kWords[word(rng)]) : "f-" + std::to_string(id(rng));
    }
  };
  for (std::size_t i = 0; i < n; ++i) {
    // Mostly users; a few checks on role principals (service accounts act as roles).
    std::size_t who = pct(rng) < 95 ? any_user(rng) : any_principal(rng);
    std::size_t u = who < p.users ? who : any_user(rng);  // whose paths to aim at
    auto roll = pct(rng);
    uri.clear();
    if (roll < 30) {
      uri = std::string(own_schemes[i % 4]) + "://c/" + p.names[who < p.users ? who : u];
      tail(1, 4);
    } else if (roll < 55 && !p.projects_of_user[u].empty()) {
      const auto& projs = p.projects_of_user[u];
      uri = std::string(project_schemes[i % 6]) + "://c/" + p.projects[projs[i % projs.size()]];
      tail(1, 4);
    } else if (roll < 70 && !p.shared_with_user[u].empty()) {
      const auto& shared = p.shared_with_user[u];
      uri = shared[id(rng) % shared.size()];
      // At the shared node, below it, or at an ancestor (implicit list).
      auto r = pct(rng);
      if (r < 60) {
        tail(0, 2);
      } else if (r < 80) {
        uri.resize(uri.rfind('/'));
      }
    } else if (roll < 90) {
      uri = std::string(own_schemes[i % 4]) + "://c/" + p.names[any_user(rng)];
      tail(1, 4);
    } else {
      uri = "storage://c/" + p.projects[id(rng) % p.projects.size()] + "/" + kWords[word(rng)];
      tail(0, 3);
    }
    auto action = static_cast<Action>(act(rng));
    out.list.push_back({static_cast<std::uint32_t>(who), static_cast<std::uint32_t>(out.arena.size()),
                        static_cast<std::uint32_t>(uri.size()), action});
    out.arena += uri;
  }
  return out;
}

// ---------------------------------------------------------------------------------------

std::size_t run_checks(const GrantSet& set, const Population& p, const Checks& c, std::size_t from, std::size_t n) {
  std::size_t allowed = 0;
  std::size_t d = c.list.size();
  for (std::size_t i = from; i < from + n; ++i) {
    const auto& ch = c.list[i % d];
    allowed += set.tree_of(p.names[ch.principal])->allows(c.uri(ch), ch.action);
  }
  return allowed;
}

}  // namespace

int main(int argc, char** argv) {
  auto args = parse_args(argc, argv);
  std::printf("neurod permission model benchmark\n");
  std::printf("  machine: %s, hardware_concurrency=%u\n", cpu_model().c_str(), std::thread::hardware_concurrency());
  std::printf("  args: --users %zu --roles %zu --grants %zu --checks %zu --distinct %zu --threads %zu --seed %llu\n",
              args.users, args.roles, args.grants, args.checks, args.distinct, args.threads,
              static_cast<unsigned long long>(args.seed));
#ifdef NDEBUG
  std::printf("  build: optimised (NDEBUG)\n");
#else
  std::printf("  build: WITHOUT NDEBUG, figures are not representative\n");
#endif

  std::mt19937_64 rng(args.seed);
  auto t0 = Clock::now();
  auto pop = make_population(args, rng);
  double gen_s = seconds_since(t0);

  // (a) Building the set: what a reload from the database costs once rows are in memory.
  t0 = Clock::now();
  GrantSet::Map copy = pop.map;
  auto set = std::make_shared<const GrantSet>(std::move(copy));
  double build_s = seconds_since(t0);
  std::printf("\n(a) build\n");
  std::printf("  population: %s principals (%s users, %s roles), %s grants (generated in %.3f s)\n",
              num(set->principal_count()).c_str(), num(pop.users).c_str(), num(args.roles).c_str(),
              num(set->grant_count()).c_str(), gen_s);
  std::printf("  GrantSet construction: %.3f ms\n", build_s * 1e3);
  // A grant change: a new set with one principal's grants replaced (copy-on-write).
  constexpr int kChanges = 20;
  t0 = Clock::now();
  for (int i = 0; i < kChanges; ++i) {
    const auto& name = pop.names[static_cast<std::size_t>(i) % pop.users];
    auto changed = set->with(name, pop.map.at(name));
    if (changed->grant_count() != set->grant_count()) std::printf("  WARNING: with() changed the grant count\n");
  }
  std::printf("  GrantSet::with (one principal's grants replaced): %.3f ms\n", seconds_since(t0) * 1e3 / kChanges);

  // (b) Cold trees: every principal's first check.
  std::size_t nodes = 0;
  t0 = Clock::now();
  for (const auto& name : pop.names) nodes += set->tree_of(name)->node_count();
  double cold_s = seconds_since(t0);
  std::printf("\n(b) cold tree builds (own grants + roles, transitively)\n");
  std::printf("  %s trees in %.3f s: %.2f us per principal, %.1f nodes per tree on average\n",
              num(pop.names.size()).c_str(), cold_s, cold_s * 1e6 / static_cast<double>(pop.names.size()),
              static_cast<double>(nodes) / static_cast<double>(pop.names.size()));

  // (c) Warm checks.
  auto checks = make_checks(pop, std::min(args.distinct, args.checks), rng);
  std::printf("\n(c) warm checks: tree_of(principal)->allows(uri, action), one thread\n");
  std::printf("  %s distinct pre-generated checks (%.1f MB of URIs, avg %.1f bytes), cycled\n",
              num(checks.list.size()).c_str(), static_cast<double>(checks.arena.size()) / 1e6,
              static_cast<double>(checks.arena.size()) / static_cast<double>(checks.list.size()));

  run_checks(*set, pop, checks, 0, checks.list.size());  // warm caches and branch predictors
  t0 = Clock::now();
  double cpu0 = thread_cpu_seconds();
  std::size_t allowed = run_checks(*set, pop, checks, 0, args.checks);
  double warm_cpu_s = thread_cpu_seconds() - cpu0;
  double warm_s = seconds_since(t0);
  std::printf("  throughput: %s checks in %.3f s = %.2f M checks/s (%.0f ns/check); %.1f%% allowed\n",
              num(args.checks).c_str(), warm_s, static_cast<double>(args.checks) / warm_s / 1e6,
              warm_s * 1e9 / static_cast<double>(args.checks),
              100.0 * static_cast<double>(allowed) / static_cast<double>(args.checks));
  std::printf("  this thread had the CPU %.0f%% of that time%s\n", 100.0 * warm_cpu_s / warm_s,
              warm_cpu_s < 0.9 * warm_s ? " (the machine was busy: figures are pessimistic)" : "");

  // Latency: each check timed on its own with two steady_clock reads; the clock's own
  // cost (the median of back-to-back read pairs) is subtracted from every sample.
  std::vector<std::int64_t> overhead(200000);
  for (auto& o : overhead) {
    auto a = Clock::now();
    auto b = Clock::now();
    o = std::chrono::duration_cast<std::chrono::nanoseconds>(b - a).count();
  }
  std::nth_element(overhead.begin(), overhead.begin() + static_cast<std::ptrdiff_t>(overhead.size() / 2),
                   overhead.end());
  std::int64_t clock_ns = overhead[overhead.size() / 2];

  std::vector<std::int64_t> lat(args.checks);
  std::size_t d = checks.list.size();
  std::size_t allowed2 = 0;
  for (std::size_t i = 0; i < args.checks; ++i) {
    const auto& ch = checks.list[i % d];
    const auto& name = pop.names[ch.principal];
    auto uri = checks.uri(ch);
    auto a = Clock::now();
    bool ok = set->tree_of(name)->allows(uri, ch.action);
    auto b = Clock::now();
    allowed2 += ok;
    lat[i] = std::max<std::int64_t>(0, std::chrono::duration_cast<std::chrono::nanoseconds>(b - a).count() - clock_ns);
  }
  std::sort(lat.begin(), lat.end());
  auto pctl = [&](double q) {
    auto idx = std::min(lat.size() - 1, static_cast<std::size_t>(q * static_cast<double>(lat.size())));
    return lat[idx];
  };
  std::printf("  latency per check (each timed alone, clock overhead %lld ns subtracted):\n",
              static_cast<long long>(clock_ns));
  std::printf("    p50 %lld ns   p90 %lld ns   p99 %lld ns   p99.9 %lld ns   max %lld ns\n",
              static_cast<long long>(pctl(0.5)), static_cast<long long>(pctl(0.9)), static_cast<long long>(pctl(0.99)),
              static_cast<long long>(pctl(0.999)), static_cast<long long>(lat.back()));
  if (allowed2 != allowed) std::printf("  WARNING: the two passes disagree (%zu vs %zu allowed)\n", allowed, allowed2);

  if (args.threads > 1) {
    std::vector<std::thread> threads;
    std::atomic<std::size_t> total{0};
    std::size_t per = args.checks / args.threads;
    t0 = Clock::now();
    for (std::size_t t = 0; t < args.threads; ++t) {
      threads.emplace_back([&, t] { total += run_checks(*set, pop, checks, t * per, per); });
    }
    for (auto& th : threads) th.join();
    double mt_s = seconds_since(t0);
    std::printf("\n(d) %zu threads sharing the set: %s checks in %.3f s = %.2f M checks/s\n", args.threads,
                num(per * args.threads).c_str(), mt_s, static_cast<double>(per * args.threads) / mt_s / 1e6);
  }

  bool pass = static_cast<double>(args.checks) / warm_s >= 1e6 && pctl(0.99) < 5000;
  std::printf("\ntarget (>= 1 M checks/s and p99 < 5 us on one core): %s\n", pass ? "met" : "MISSED");
  return 0;
}
