// The SimGrid adapter against closed forms: alpha-beta transfers and max-min sharing under CM02.
#include <gtest/gtest.h>

#include "sim/platform/simgrid_adapter.hpp"

namespace clustersim::sim {
namespace {

// SimGrid allows one engine per process, so this binary holds one session for all checks.
TEST(SimgridAdapter, TransfersMatchAlphaBetaAndMaxMinSharing) {
  SimgridSession session;
  EXPECT_EQ(session.config_string("network/model"), "CM02");
  EXPECT_EQ(session.config_double("network/TCP-gamma"), 0.0);
  constexpr double bw = 50e9, lat = 1e-6, bytes = 256e6;
  session.build_star_platform({4, bw, lat});

  // One flow crosses the source's up link and the destination's down link: alpha = 2 lat.
  std::vector<double> alone = session.run_transfers({{0, 1, bytes, 0.0}});
  ASSERT_EQ(alone.size(), 1u);
  EXPECT_NEAR(alone[0], 2 * lat + bytes / bw, 1e-12);

  // Two flows into host 3 share its down link fairly; a third, disjoint flow runs at full speed.
  const double t0 = alone[0];
  std::vector<double> shared =
      session.run_transfers({{0, 3, bytes, t0}, {1, 3, bytes, t0}, {2, 0, bytes, t0}});
  EXPECT_NEAR(shared[0] - t0, 2 * lat + 2 * bytes / bw, 1e-9);
  EXPECT_NEAR(shared[1] - t0, 2 * lat + 2 * bytes / bw, 1e-9);
  EXPECT_NEAR(shared[2] - t0, 2 * lat + bytes / bw, 1e-9);
}

}  // namespace
}  // namespace clustersim::sim
