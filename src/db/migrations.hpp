// Per-module migrations, embedded at build time from
// migrations/<module>/NNNN_description.{sqlite,postgresql}.sql.
#pragma once

#include "db/database.hpp"

#include <string>
#include <vector>

namespace neurod::db {

struct Migration {
  std::string module;
  int version = 0;
  std::string name;  // "0001_instance"
  std::string sql;   // may hold several statements separated by ';'
};

// Everything embedded in this binary for the dialect, sorted by (module, version).
std::vector<Migration> embedded_migrations(Dialect dialect);

struct MigrationStatus {
  std::vector<Migration> pending;  // in the order they will be applied
  std::vector<std::string> applied;  // "module:NNNN" already in the database
};

class Migrator {
 public:
  Migrator(Database& db, std::vector<Migration> known);
  // Creates schema_migrations when missing. Throws Error(conflict) if the database
  // holds a migration of one of `modules` newer than this binary knows ("the database
  // was migrated by a newer neurod: module X is at version N, this binary knows M").
  MigrationStatus status(const std::vector<std::string>& modules);
  // Applies each pending migration in its own transaction, recording it in
  // schema_migrations. Returns the names applied.
  std::vector<std::string> migrate(const std::vector<std::string>& modules);

 private:
  Database& db_;
  std::vector<Migration> known_;
};

}  // namespace neurod::db
