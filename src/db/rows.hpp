// Reading columns of a soci::row without caring how each backend reports the type
// (SQLite's declared BIGINT, PostgreSQL's int8 or numeric, COUNT's type) or whether
// the value is NULL: NULL reads as 0 or "" unless asked for an optional.
#pragma once

#include <soci/soci.h>

#include <cstdint>
#include <optional>
#include <string>

namespace neurod::db {

inline double as_double(const soci::row& r, std::size_t i) {
  if (r.get_indicator(i) == soci::i_null) return 0;
  switch (r.get_properties(i).get_data_type()) {
    case soci::dt_integer: return r.get<int>(i);
    case soci::dt_long_long: return static_cast<double>(r.get<long long>(i));
    case soci::dt_unsigned_long_long: return static_cast<double>(r.get<unsigned long long>(i));
    case soci::dt_double: return r.get<double>(i);
    case soci::dt_string: return std::stod(r.get<std::string>(i));
    default: return 0;
  }
}

inline std::int64_t as_int64(const soci::row& r, std::size_t i) {
  if (r.get_indicator(i) == soci::i_null) return 0;
  switch (r.get_properties(i).get_data_type()) {
    case soci::dt_integer: return r.get<int>(i);
    case soci::dt_long_long: return r.get<long long>(i);
    case soci::dt_unsigned_long_long: return static_cast<std::int64_t>(r.get<unsigned long long>(i));
    case soci::dt_string: return std::stoll(r.get<std::string>(i));
    default: return static_cast<std::int64_t>(as_double(r, i));
  }
}

inline std::optional<std::int64_t> as_opt_int64(const soci::row& r, std::size_t i) {
  if (r.get_indicator(i) == soci::i_null) return std::nullopt;
  return as_int64(r, i);
}

inline std::optional<double> as_opt_double(const soci::row& r, std::size_t i) {
  if (r.get_indicator(i) == soci::i_null) return std::nullopt;
  return as_double(r, i);
}

inline std::string as_string(const soci::row& r, std::size_t i) {
  if (r.get_indicator(i) == soci::i_null) return {};
  return r.get<std::string>(i);
}

}  // namespace neurod::db
