// Packed documents under reset_attention_mask: a sequence's attention ratio r = sum(l^2) / S^2.
#include "models/cost/document_packing.hpp"

#include <gtest/gtest.h>

namespace clustersim {
namespace {

TEST(DocumentPacking, OneLengthThatDividesTheSequenceIsExact) {
  const DocumentLengths d{{512}, {1}, "test"};
  const PackedAttention p = packed_attention(d, 4096);
  EXPECT_DOUBLE_EQ(p.mean, 512.0 / 4096);  // 8 documents of 512^2 over 4096^2
  EXPECT_DOUBLE_EQ(p.cv, 0.0);
}

TEST(DocumentPacking, DocumentsLongerThanTheSequenceCostAFullCausalAttention) {
  const DocumentLengths d{{8192, 16384}, {1, 1}, "test"};
  const PackedAttention p = packed_attention(d, 4096);
  EXPECT_DOUBLE_EQ(p.mean, 1.0);
  EXPECT_DOUBLE_EQ(p.cv, 0.0);
}

TEST(DocumentPacking, MixedLengthsSpreadAndTheLastDocumentIsCut) {
  // Half 256-token, half 3,000-token documents into 4,096: r varies between sequences.
  const DocumentLengths d{{256, 3000}, {1, 1}, "test"};
  const PackedAttention p = packed_attention(d, 4096);
  EXPECT_GT(p.mean, 256.0 / 4096);
  EXPECT_LT(p.mean, 1.0);
  EXPECT_GT(p.cv, 0.05);
  FleetRandom random(3);
  for (int i = 0; i < 100; ++i) {
    const double r = draw_packed_attention_ratio(d, 4096, random);
    EXPECT_GE(r, 256.0 / 4096 - 1e-12);  // at best all short documents
    EXPECT_LE(r, 1.0);
  }
  // The same seed, the same statistics.
  EXPECT_EQ(packed_attention(d, 4096).mean, p.mean);
}

}  // namespace
}  // namespace clustersim
