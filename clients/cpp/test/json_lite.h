// A small JSON reader/writer for the golden-vector sidecars (test/vectors/*.json).
// Integers only (no fractions), UTF-8 strings with \uXXXX escapes; objects keep order
// but compare as sets of members.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace jsonlite {

struct Value {
  enum class Type { kNull, kBool, kInt, kString, kArray, kObject };
  Type type = Type::kNull;
  bool b = false;
  int64_t i = 0;
  std::string s;
  std::vector<Value> arr;
  std::vector<std::pair<std::string, Value>> obj;

  static Value null() { return {}; }
  static Value boolean(bool v) { Value x; x.type = Type::kBool; x.b = v; return x; }
  static Value integer(int64_t v) { Value x; x.type = Type::kInt; x.i = v; return x; }
  static Value string(std::string v) { Value x; x.type = Type::kString; x.s = std::move(v); return x; }
  static Value array() { Value x; x.type = Type::kArray; return x; }
  static Value object() { Value x; x.type = Type::kObject; return x; }

  Value& add(std::string key, Value v) { obj.emplace_back(std::move(key), std::move(v)); return *this; }
  Value& push(Value v) { arr.push_back(std::move(v)); return *this; }
  const Value* find(const std::string& key) const;

  bool operator==(const Value& o) const;
};

Value parse(const std::string& text);  // throws std::runtime_error with the offset
std::string dump(const Value& v, int indent = 2);

}  // namespace jsonlite
