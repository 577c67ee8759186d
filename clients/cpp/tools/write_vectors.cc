// Writes the C++-encoded golden frames: <dir>/cpp_<name>.bin and cpp_<name>.json for
// every vector of the catalog (test/vectors/README.md). The TS suite decodes them.
//   txkv_write_vectors test/vectors
#include <fstream>
#include <iostream>

#include "vectors_catalog.h"

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: txkv_write_vectors <dir>\n";
    return 2;
  }
  std::string dir = argv[1];
  for (const auto& v : txkv::vectors::catalog()) {
    std::string bin = txkv::proto::encodeFrame(v.envelopes);
    std::string base = dir + "/cpp_" + v.name;
    std::ofstream(base + ".bin", std::ios::binary) << bin;
    std::ofstream(base + ".json") << jsonlite::dump(txkv::vectors::sidecarJson(v)) << "\n";
    std::cout << base << ".bin (" << bin.size() << " bytes)\n";
  }
  return 0;
}
