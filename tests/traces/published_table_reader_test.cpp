#include <gtest/gtest.h>

#include "models/inputs/input_error.hpp"
#include "traces/measurement_import.hpp"
#include "traces/published_table_reader.hpp"

namespace clustersim {
namespace {

const std::string kHead =
    "# source_id: paper\n# gpu: H100\n# statistic: mean\n# url: https://example.org/paper\n";

std::string error_of(const std::string& text) {
  try {
    read_published_table(text, "p.csv");
  } catch (const InputErrors& e) {
    return e.what();
  }
  return "no error";
}

TEST(PublishedTable, CollectivesAndGemmFromAFile) {
  // Azure/AI-benchmarking-guide ND H100 v5 figures.
  RecordSet set = import_measurement_file(std::string(CLUSTERSIM_TEST_DATA_DIR) +
                                          "/published/azure_nd_h100_v5.csv");
  ASSERT_EQ(set.sources.size(), 1u);
  EXPECT_EQ(set.sources[0].id, "azure-nd-h100-v5");
  EXPECT_EQ(set.sources[0].timer, "published");
  EXPECT_EQ(set.sources[0].gpus_per_node, 8);
  ASSERT_EQ(set.records.size(), 5u);
  // 1 GiB at 466.35 GB/s busbw on 8 ranks: t = size * 1.75 / busbw.
  EXPECT_NEAR(set.records[2].samples_s[0], 1073741824.0 * 1.75 / 466.35e9, 1e-15);
  EXPECT_TRUE(std::get<CollectiveRecord>(set.records[2].shape).in_place);
  // 4096^3 FP8 at 1216.9 TFLOP/s: t = 2 m n k / flops.
  EXPECT_NEAR(set.records[3].samples_s[0], 2.0 * 4096.0 * 4096 * 4096 / 1216.9e12, 1e-15);
  EXPECT_EQ(std::get<GemmRecord>(set.records[3].shape).dtype, Dtype::kFp8);
  EXPECT_EQ(set.records[3].label, "line 17");
}

TEST(PublishedTable, AttentionFlopsFollowFlashAttention) {
  RecordSet set = read_published_table(
      kHead +
          "op,pass,batch,heads,kv_heads,seq_q,seq_kv,head_dim,causal,dtype,tflops\n"
          "attention,forward,2,16,16,8192,8192,128,false,bf16,500\n"
          "attention,forward,2,16,16,8192,8192,128,true,bf16,500\n"
          "attention,backward,2,16,16,8192,8192,128,true,bf16,500\n"
          "attention,forward_backward,2,16,,8192,,128,false,bf16,500\n",
      "p.csv");
  ASSERT_EQ(set.records.size(), 4u);
  double forward = 4.0 * 2 * 16 * 8192.0 * 8192 * 128;
  EXPECT_NEAR(set.records[0].samples_s[0], forward / 500e12, 1e-15);
  EXPECT_NEAR(set.records[1].samples_s[0], forward / 2 / 500e12, 1e-15);
  EXPECT_NEAR(set.records[2].samples_s[0], 2.5 * forward / 2 / 500e12, 1e-15);
  EXPECT_NEAR(set.records[3].samples_s[0], 3.5 * forward / 500e12, 1e-15);
  EXPECT_EQ(std::get<AttentionRecord>(set.records[3].shape).kv_heads, 16);
}

TEST(PublishedTable, MoeOverlapAndTimes) {
  RecordSet set = read_published_table(
      kHead +
          "op,ranks,nodes,bytes_per_rank,imbalance,GBps,time_us\n"
          "moe_dispatch,8,1,1000000000,1.0,153,\n"
          "moe_combine,16,2,1000000,,,250\n"
          "op,variant,m,n,k,ranks,gemm_alone_us,comm_alone_us,sequential_us,overlapped_us\n"
          "ag_gemm,fused,4096,49152,12288,8,5746,11200,16946,5903\n",
      "p.csv");
  ASSERT_EQ(set.records.size(), 3u);
  EXPECT_NEAR(set.records[0].samples_s[0], 1e9 / 153e9, 1e-15);
  EXPECT_NEAR(set.records[1].samples_s[0], 250e-6, 1e-15);
  const auto& o = std::get<OverlapRecord>(set.records[2].shape);
  EXPECT_NEAR(o.comm_alone_s, 11200e-6, 1e-15);
  EXPECT_NEAR(set.records[2].samples_s[0], 5903e-6, 1e-15);
}

TEST(PublishedTable, ServeIterationsAreUniformBatches) {
  RecordSet set = read_published_table(
      kHead + "op,model,tensor_parallel_size,phase,batch,input_len,dtype,time_ms\n"
              "serve_iteration,opt-13b,2,prefill,4,512,fp16,80.5\n"
              "serve_iteration,opt-13b,1,decode,32,1000,fp16,40\n",
      "p.csv");
  ASSERT_EQ(set.records.size(), 2u);
  const auto& p = std::get<ServeIterationRecord>(set.records[0].shape);
  EXPECT_EQ(p.model, "opt-13b");
  EXPECT_EQ(p.tensor_parallel_size, 2);
  EXPECT_EQ(p.phase, ServePhase::kPrefill);
  EXPECT_EQ(p.tokens, 2048);
  EXPECT_EQ(p.tokens_squared, 4.0 * 512 * 512);
  EXPECT_NEAR(set.records[0].samples_s[0], 80.5e-3, 1e-15);
  EXPECT_EQ(std::get<ServeIterationRecord>(set.records[1].shape).phase, ServePhase::kDecode);
  EXPECT_NE(error_of(kHead + "op,model,tensor_parallel_size,phase,batch,input_len,dtype,time_us\n"
                             "serve_iteration,opt-13b,2,verify,4,512,fp16,80\n")
                .find("line 6: column \"phase\": unknown phase \"verify\""),
            std::string::npos);
}

TEST(PublishedTable, ErrorsNameLineAndColumn) {
  EXPECT_NE(error_of(kHead + "op,m,n,k,dtype,tflops\ngemm,1,2,x,bf16,5\n")
                .find("p.csv:line 6: column \"k\": expected a whole number >= 1, got \"x\""),
            std::string::npos);
  EXPECT_NE(error_of(kHead + "op,m,n,k,dtype,tflop\n").find("line 5: unknown column \"tflop\" (did you mean \"tflops\"?)"),
            std::string::npos);
  EXPECT_NE(error_of(kHead + "op,m,n,k,dtype,tflops,time_us\ngemm,1,2,3,bf16,5,7\n")
                .find("line 6: fill exactly one of tflops, time_us (2 given)"),
            std::string::npos);
  EXPECT_NE(error_of(kHead + "op,m,n,k,dtype,tflops\ngemm,1,2,3\n")
                .find("line 6: row has 4 values, the header on line 5 names 6 columns"),
            std::string::npos);
  EXPECT_NE(error_of("# source_id: x\n# gpu: y\nop,m\n").find("line 3: source key \"statistic\" is required"),
            std::string::npos);
  EXPECT_NE(error_of("# source_id: x\n# gpus: y\n").find("line 2: unknown source key \"gpus\" (did you mean \"gpu\"?)"),
            std::string::npos);
  EXPECT_NE(error_of(kHead + "op,ranks,size_bytes,busbw_GBps\nall_reduce,8,1024,1\ngemm,8,1024,1\n")
                .find("line 7: column \"op\": \"gemm\" does not belong in this table"),
            std::string::npos);
  EXPECT_NE(error_of(kHead + "op,ranks,size_bytes,tflops\nall_reduce,8,1024,1\n")
                .find("line 5: column \"tflops\" does not apply to op \"all_reduce\""),
            std::string::npos);
}

}  // namespace
}  // namespace clustersim
