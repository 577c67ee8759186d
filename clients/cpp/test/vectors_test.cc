// Golden frames (test/vectors/README.md): C++ decodes what the TypeScript client wrote
// (<name>.bin + <name>.json) and checks its own committed cpp_<name>.bin + .json.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "vectors_catalog.h"

namespace txkv::vectors {
namespace {

namespace fs = std::filesystem;

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

const fs::path kDir{TXKV_VECTORS_DIR};

// Decodes <base>.bin, compares with the envelopes of <base>.json; returns them for more checks.
jsonlite::Value checkPair(const fs::path& bin) {
  fs::path json = bin;
  json.replace_extension(".json");
  EXPECT_TRUE(fs::exists(json)) << json << " (sidecar) is missing";
  if (!fs::exists(json)) return {};
  std::string bytes = slurp(bin);
  auto frame = proto::decodeFrame(bytes.data(), bytes.size());
  EXPECT_TRUE(frame.ok()) << bin << ": " << (frame.ok() ? "" : frame.error().describe());
  if (!frame.ok()) return {};
  jsonlite::Value side = jsonlite::parse(slurp(json));
  const jsonlite::Value* expected = side.find("envelopes");
  EXPECT_NE(expected, nullptr) << json << " has no \"envelopes\"";
  if (!expected) return {};
  jsonlite::Value got = envelopesToJson(*frame);
  EXPECT_EQ(got, *expected) << bin << " decodes to\n" << jsonlite::dump(got) << "\nbut " << json << " says\n"
                            << jsonlite::dump(*expected);
  return got;
}

TEST(GoldenVectors, CppVectorsAreCommittedAndMatchTheCatalog) {
  for (const auto& v : catalog()) {
    fs::path bin = kDir / ("cpp_" + v.name + ".bin");
    ASSERT_TRUE(fs::exists(bin)) << bin << " missing: run txkv_write_vectors test/vectors";
    jsonlite::Value got = checkPair(bin);
    EXPECT_EQ(got, envelopesToJson(v.envelopes)) << v.name << ": the committed file is stale (rerun txkv_write_vectors)";
    fs::path json = kDir / ("cpp_" + v.name + ".json");
    EXPECT_EQ(jsonlite::parse(slurp(json)), sidecarJson(v)) << json << " is stale";
  }
}

TEST(GoldenVectors, TypeScriptVectorsDecodeAsTheirSidecarsSay) {
  if (!fs::exists(kDir)) GTEST_SKIP() << kDir << " does not exist";
  std::set<std::string> seen;
  for (const auto& entry : fs::directory_iterator(kDir)) {
    const fs::path& p = entry.path();
    if (p.extension() != ".bin" || p.filename().string().rfind("cpp_", 0) == 0) continue;
    std::string name = p.stem().string();
    seen.insert(name);
    SCOPED_TRACE(name);
    jsonlite::Value got = checkPair(p);
    if (const Vector* v = findVector(name)) {
      EXPECT_EQ(got, envelopesToJson(v->envelopes))
          << name << ".bin does not hold the message README.md specifies for it";
    }
  }
  if (seen.empty()) {
    GTEST_SKIP() << "no TypeScript-written vectors (<name>.bin) in " << kDir << " yet";
  }
  for (const auto& v : catalog()) {
    EXPECT_TRUE(seen.count(v.name)) << "the TypeScript side did not write " << v.name << ".bin";
  }
}

}  // namespace
}  // namespace txkv::vectors
