// The console's built files (web/, built by Vite and packed by web/scripts/pack.mjs),
// embedded into the binary. Generated at build time; empty when neurod was configured
// with -DNEUROD_CONSOLE=OFF.
#pragma once

#include <cstddef>

namespace neurod::console {

struct Asset {
  const char* path;  // "/index.html", "/assets/index-HASH.js"
  const char* content_type;
  const char* etag;  // quoted, from the content's hash
  std::size_t offset, size;
  std::size_t gz_offset, gz_size;  // a gzip copy; gz_size 0: none
  bool immutable;                  // content-hashed name: cache for a year
};

struct EmbeddedAssets {
  const unsigned char* blob = nullptr;
  const Asset* assets = nullptr;
  std::size_t count = 0;
};

EmbeddedAssets embedded_assets();

}  // namespace neurod::console
