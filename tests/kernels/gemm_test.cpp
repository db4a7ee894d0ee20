// GEMM kernels: the CPU reference against hand-computed values (always); cuBLASLt numerics and
// timing in CUDA builds only, skipped when no GPU is usable.
#include <gtest/gtest.h>

#include <stdexcept>
#include <vector>

#include "kernels/gemm_reference.hpp"
#include "kernels/gemm_shape.hpp"

#if defined(CLUSTERSIM_HAVE_CUDA) && CLUSTERSIM_HAVE_CUDA
#include "kernels/cublaslt_gemm.hpp"
#include "kernels/cuda_device.hpp"
#endif

namespace clustersim::kernels {
namespace {

TEST(GemmReference, MatchesHandComputedTwoByThreeTimesThreeByTwo) {
  // A = [1 2 3; 4 5 6], B = [7 8; 9 10; 11 12], so A B = [58 64; 139 154].
  // D = 2 A B + 0.5 C with C = [2 4; 6 8].
  const std::vector<float> a = {1, 2, 3, 4, 5, 6};
  const std::vector<float> b = {7, 8, 9, 10, 11, 12};
  const std::vector<float> c = {2, 4, 6, 8};
  const std::vector<float> d = gemm_reference(2, 2, 3, a, b, 2.0f, c, 0.5f);
  const std::vector<float> expected = {117, 130, 281, 312};
  EXPECT_EQ(d, expected);
}

TEST(GemmReference, EmptyCMeansZeros) {
  // A = [1 -1] (1 x 2), B = [3 5 7; 2 4 6] (2 x 3): A B = [1 1 1].
  const std::vector<float> a = {1, -1};
  const std::vector<float> b = {3, 5, 7, 2, 4, 6};
  const std::vector<float> d = gemm_reference(1, 3, 2, a, b, 1.0f, {}, 0.0f);
  EXPECT_EQ(d, (std::vector<float>{1, 1, 1}));
}

TEST(GemmReference, RejectsWrongSizes) {
  const std::vector<float> four(4, 1.0f);
  const std::vector<float> six(6, 1.0f);
  EXPECT_THROW(gemm_reference(2, 2, 3, four, six, 1.0f, {}, 0.0f), std::invalid_argument);
  EXPECT_THROW(gemm_reference(2, 2, 3, six, six, 1.0f, six, 1.0f), std::invalid_argument);
  EXPECT_THROW(gemm_reference(-1, 2, 3, six, six, 1.0f, {}, 0.0f), std::invalid_argument);
}

TEST(GemmShape, CountsFlopsAndBytes) {
  const GemmShape bf16{4096, 2048, 1024, GemmDtype::kBf16};
  EXPECT_DOUBLE_EQ(bf16.flops(), 2.0 * 4096 * 2048 * 1024);
  EXPECT_EQ(bf16.a_bytes(), 4096 * 1024 * 2);
  EXPECT_EQ(bf16.b_bytes(), 1024 * 2048 * 2);
  EXPECT_EQ(bf16.d_bytes(), 4096 * 2048 * 2);
  const GemmShape fp8{4096, 2048, 1024, GemmDtype::kFp8E4m3};
  EXPECT_EQ(fp8.a_bytes(), 4096 * 1024);
  EXPECT_EQ(fp8.d_bytes(), 4096 * 2048 * 2);  // bf16 output
  EXPECT_EQ(to_string(fp8), "4096x2048x1024 fp8_e4m3");
}

TEST(GemmShape, ValidatesSizes) {
  EXPECT_NO_THROW(validate_gemm_shape({33, 17, 9, GemmDtype::kBf16}));
  EXPECT_THROW(validate_gemm_shape({0, 16, 16, GemmDtype::kBf16}), std::invalid_argument);
  EXPECT_NO_THROW(validate_gemm_shape({64, 32, 16, GemmDtype::kFp8E4m3}));
  EXPECT_THROW(validate_gemm_shape({64, 32, 24, GemmDtype::kFp8E4m3}), std::invalid_argument);
}

#if defined(CLUSTERSIM_HAVE_CUDA) && CLUSTERSIM_HAVE_CUDA

// Every test here needs a GPU; without one (CI) it is skipped, not failed.
class CublasLtGemm : public ::testing::Test {
 protected:
  void SetUp() override {
    if (cuda_device_count() == 0) {
      GTEST_SKIP() << "no usable CUDA device: " << cuda_device_status();
    }
  }

  static void expect_matches_reference(const std::vector<GemmShape>& shapes) {
    for (const GemmShape& shape : shapes) {
      SCOPED_TRACE(to_string(shape));
      EXPECT_LE(verify_gemm_against_reference(shape), gemm_verification_tolerance(shape.dtype));
    }
  }
};

TEST_F(CublasLtGemm, Bf16MatchesReference) {
  if (!gemm_dtype_supported(GemmDtype::kBf16)) {
    GTEST_SKIP() << "bf16 GEMM needs compute capability 8.0";
  }
  expect_matches_reference({{64, 64, 64, GemmDtype::kBf16},
                            {128, 96, 256, GemmDtype::kBf16},
                            {33, 17, 9, GemmDtype::kBf16}});
}

TEST_F(CublasLtGemm, Fp16MatchesReference) {
  if (!gemm_dtype_supported(GemmDtype::kFp16)) {
    GTEST_SKIP() << "this library's kernels need compute capability 8.0";
  }
  expect_matches_reference({{64, 64, 64, GemmDtype::kFp16},
                            {96, 160, 128, GemmDtype::kFp16},
                            {31, 7, 45, GemmDtype::kFp16}});
}

TEST_F(CublasLtGemm, Fp8MatchesReference) {
  if (!gemm_dtype_supported(GemmDtype::kFp8E4m3)) {
    GTEST_SKIP() << "FP8 GEMM needs compute capability 8.9 (Ada) or 9.0 (Hopper)";
  }
  expect_matches_reference({{64, 64, 64, GemmDtype::kFp8E4m3},
                            {128, 80, 256, GemmDtype::kFp8E4m3},
                            {16, 48, 32, GemmDtype::kFp8E4m3}});
}

TEST_F(CublasLtGemm, TimingKeepsEverySampleAndRecordsTheAlgorithm) {
  GemmTimingOptions options;
  options.warmup_iterations = 2;
  options.iterations = 5;
  const GemmShape shape{1024, 1024, 1024, GemmDtype::kBf16};
  const GemmTiming timing = time_gemm(shape, options);
  ASSERT_EQ(timing.samples_s.size(), 5u);
  for (double sample_s : timing.samples_s) {
    EXPECT_GT(sample_s, 0);
  }
  EXPECT_GT(timing.median_s, 0);
  EXPECT_DOUBLE_EQ(timing.achieved_flops_per_s, shape.flops() / timing.median_s);
  EXPECT_GE(timing.tile_id, 0);
  EXPECT_GE(timing.stages_id, 0);
  EXPECT_GE(timing.split_k_count, 0);
  EXPECT_LE(timing.workspace_bytes, options.workspace_bytes);
  EXPECT_GE(timing.buffer_copies, 1);
  EXPECT_LE(timing.buffer_copies, 7);  // never more copies than launches
  EXPECT_GT(timing.l2_cache_bytes, 0);
}

// Argument checks come before any CUDA call, so these run without a GPU too.
TEST(CublasLtGemmArguments, RejectsBadOptionsAndShapes) {
  GemmTimingOptions options;
  options.iterations = 0;
  EXPECT_THROW(time_gemm({256, 256, 256, GemmDtype::kBf16}, options), std::invalid_argument);
  EXPECT_THROW(time_gemm({256, 256, 24, GemmDtype::kFp8E4m3}), std::invalid_argument);
  EXPECT_THROW(verify_gemm_against_reference({8192, 8192, 8192, GemmDtype::kBf16}),
               std::invalid_argument);
}

TEST(CudaDevice, CountIsNeverNegativeAndStatusIsSaid) {
  EXPECT_GE(cuda_device_count(), 0);
  EXPECT_FALSE(cuda_device_status().empty());
}

#endif  // CLUSTERSIM_HAVE_CUDA

}  // namespace
}  // namespace clustersim::kernels
