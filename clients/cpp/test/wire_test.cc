// Encode/decode round trips and the Verifier on malformed input.
#include <gtest/gtest.h>

#include <cstring>
#include <memory>
#include <random>

#include "vectors_catalog.h"
#include "wire.h"

namespace txkv::proto {

TEST(Wire, EveryCatalogMessageRoundTrips) {
  for (const auto& v : vectors::catalog()) {
    std::string bin = encodeFrame(v.envelopes);
    auto back = decodeFrame(bin.data(), bin.size());
    ASSERT_TRUE(back.ok()) << v.name << ": " << back.error().describe();
    EXPECT_EQ(*back, v.envelopes) << v.name;
    EXPECT_EQ(bin.substr(4, 4), "TXKV") << "file identifier";
  }
}

TEST(Wire, TruncatedFramesFailVerification) {
  for (const auto& v : vectors::catalog()) {
    std::string bin = encodeFrame(v.envelopes);
    for (size_t n = 0; n < bin.size(); ++n) {
      // A copy of exactly n bytes, so that reading past it is a real overrun.
      std::unique_ptr<char[]> cut(new char[n == 0 ? 1 : n]);
      std::memcpy(cut.get(), bin.data(), n);
      auto r = decodeFrame(cut.get(), n);
      if (r.ok()) {
        // Only trailing padding/terminators were cut: the decoded message must be intact.
        EXPECT_EQ(*r, v.envelopes) << v.name << " truncated to " << n;
      } else {
        EXPECT_EQ(r.error().code(), ErrorCode::kProtocolError);
      }
    }
  }
}

TEST(Wire, CorruptedFramesNeverCrash) {
  std::mt19937 rng(20261125);
  size_t rejected = 0, total = 0;
  for (const auto& v : vectors::catalog()) {
    std::string bin = encodeFrame(v.envelopes);
    for (int round = 0; round < 300; ++round) {
      std::string bad = bin;
      int flips = 1 + static_cast<int>(rng() % 4);
      for (int f = 0; f < flips; ++f) bad[rng() % bad.size()] = static_cast<char>(rng());
      auto r = decodeFrame(bad.data(), bad.size());
      ++total;
      if (!r.ok()) ++rejected;
    }
  }
  EXPECT_GT(rejected, 0u) << "of " << total;
}

TEST(Wire, GarbageAndWrongIdentifierAreProtocolErrors) {
  std::string junk = "hello, this is not a frame";
  auto r = decodeFrame(junk.data(), junk.size());
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.error().code(), ErrorCode::kProtocolError);
  std::string bin = encodeFrame({{1, GetReadVersionRequest{}}});
  bin[4] = 'X';
  EXPECT_FALSE(decodeFrame(bin.data(), bin.size()).ok());
}

}  // namespace txkv::proto
