// Storage accounting keeps usage per source, so one source's rescan (storage's tree scan)
// never erases another's bytes (the registry's blobs).
#include "modules/storage/accounting.hpp"

#include <doctest/doctest.h>

using neurod::storage::Accounting;

TEST_CASE("accounting: a source's rescan replaces its own part only") {
  Accounting acct(nullptr);
  acct.reserve("alice", 100);                   // storage
  acct.reserve("alice", 1000, "registry");      // a pushed blob
  CHECK(acct.used("alice") == 1100);
  acct.set_used("alice", 40);                   // storage's tree scan counted 40
  CHECK(acct.used("alice") == 1040);
  acct.set_used("alice", 500, "registry");      // the registry recounted
  CHECK(acct.used("alice") == 540);
  acct.release("alice", 100, "registry");
  CHECK(acct.used("alice") == 440);
  acct.release("alice", 10000);                 // never below zero, per source
  CHECK(acct.used("alice") == 400);
  acct.adjust("alice", 60);
  CHECK(acct.used("alice") == 460);
  CHECK(acct.used("bob") == 0);
}
