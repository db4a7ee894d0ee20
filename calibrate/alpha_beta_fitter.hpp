#pragma once
// Piecewise alpha-beta fit of collective time against message size: t = alpha + S / beta per
// segment, segments found by exact dynamic programming over breakpoints between measured
// sizes, the number of segments chosen by the Bayesian information criterion. Errors are
// relative (sizes span nine decades) and absolute (the fit minimises the MAPE it is judged by,
// so a few wild points do not drag it); alpha and 1/beta are kept >= 0.
#include <vector>

#include "models/cost/cost_forms.hpp"
#include "models/cost/profile.hpp"

namespace clustersim::calibrate {

struct SizeTimePoint {
  double size_bytes = 0;
  double time_s = 0;
};

struct AlphaBetaFit {
  std::vector<AlphaBetaSegment> segments;
  FitError error;             // over the points kept
  std::vector<std::size_t> excluded;  // indices of points left out as not monotone (below)
};

// A collective cannot take much longer on a smaller message than on a larger one in steady
// state; a point more than this many times slower than some larger message is a warm-up or
// measurement artefact and is left out of the fit (and reported).
inline constexpr double kNonMonotoneFactor = 2.0;
std::vector<std::size_t> non_monotone_points(const std::vector<SizeTimePoint>& points);

inline constexpr int kMaxAlphaBetaSegments = 4;
inline constexpr int kMinPointsPerSegment = 3;

// Segments only (no error statistics); points in any order.
std::vector<AlphaBetaSegment> fit_alpha_beta_segments(std::vector<SizeTimePoint> points);

// Segments plus in-sample and leave-one-out error (each left-out point refits everything,
// breakpoints and segment count included).
AlphaBetaFit fit_piecewise_alpha_beta(const std::vector<SizeTimePoint>& points);

}  // namespace clustersim::calibrate
