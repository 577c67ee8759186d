// The golden wire vectors: the logical messages both clients must encode identically
// in meaning (test/vectors/README.md is the contract), and their canonical JSON form.
#pragma once

#include <string>
#include <vector>

#include "json_lite.h"
#include "wire.h"

namespace txkv::vectors {

struct Vector {
  std::string name;         // TS writes <name>.bin, C++ writes cpp_<name>.bin
  std::string description;
  std::vector<proto::Envelope> envelopes;
};

const std::vector<Vector>& catalog();
const Vector* findVector(const std::string& name);

// Canonical JSON of a frame's envelopes (README: bytes as lowercase hex, int64 as
// decimal strings, every field listed with its default).
jsonlite::Value envelopesToJson(const std::vector<proto::Envelope>& envelopes);
jsonlite::Value sidecarJson(const Vector& v);
std::string toHex(std::string_view bytes);

}  // namespace txkv::vectors
