// Tiger optimizer step (bojone/tiger; notes/tiger.md): one fused, multi-tensor, in-place update
// on the CPU. See python/fastcore/reference/tiger.py for the algebraic form every backend uses:
//
//   m' = b1*m + b2*g                        theta' = theta - eta*(sign(m') + wd*theta)
//   shrink (non-finite policy): theta' = (theta - c)*s + c
//
// evaluated in the storage type (float or double), one rounding per operation, no FMA
// contraction (the build uses -ffp-contract=off), so every SIMD level gives the same bits.
#pragma once

#include <cstdint>

#include "common/simd.hpp"

namespace fastcore {
namespace tiger {

enum class Dtype : int { f32 = 0, f64 = 1 };
enum class RmsMode : int { none = 0, tensor = 1, row = 2 };
enum class Action : int { shrink = 0, skip = 1, ignore = 2 };

// One tensor of the list: contiguous arrays p (written), m (written), g (read) of n elements of
// one dtype, viewed as n / row_len rows of row_len elements (row RMS and lazy rows).
struct TensorArgs {
  void* p = nullptr;
  void* m = nullptr;
  const void* g = nullptr;
  std::int64_t n = 0;
  std::int64_t row_len = 1;
  Dtype dtype = Dtype::f32;
  RmsMode rms_mode = RmsMode::tensor;
  bool lazy_rows = false;
  double lr_mult = 1.0;
  double weight_decay = 0.0;
  double centre = 0.0;
  int found_inf = -1;  // -1: detect here; 0 / 1: the caller's answer
};

struct StepArgs {
  std::int64_t step = 0;   // micro-step counter t before this call (0-based)
  std::int64_t accum = 1;  // k
  double lr = 0.0;         // alpha * schedule(t); used only on the last micro-step of a cycle
  double beta = 0.965;
  double rms_floor = 0.0;
  double shrink_ratio = 0.99;
  Action action = Action::shrink;
  bool nan_only = false;      // detect NaN only (else NaN and +-Inf)
  bool global_scope = false;  // one flagged tensor flags all
  bool strict = false;        // the published behaviour (see tiger.cpp)
  bool lion = false;          // Lion: direction sign(beta*m + (1-beta)*g), m' = beta2*m + (1-beta2)*g
  double beta2 = 0.0;
  bool maximize = false;
  std::int64_t chunk = 0;     // elements per work item (0: the default); a multiple of kBlock
};

// Sum-of-squares partials are kept per block of kBlock elements and added in block order, so the
// RMS does not depend on the chunking nor on the thread count.
constexpr std::int64_t kBlock = 2048;
constexpr std::int64_t kDefaultChunk = 16 * kBlock;  // 32768 elements per work item

// Updates every tensor in place; flags_out[i] = 1 when tensor i was treated as non-finite.
// One compiled call; a deterministic pre-pass region (RMS partials, non-finite flags) when the
// step needs one, then one update region over the flat table of (tensor, range) work items.
void step(const TensorArgs* tensors, std::int64_t n_tensors, const StepArgs& args,
          std::uint8_t* flags_out);

// Per-ISA inner loops (tiger_kernels.simd.cpp).
FASTCORE_ISA_DECLARE(
  double sumsq_f32(const float* p, std::int64_t n);
  double sumsq_f64(const double* p, std::int64_t n);
  int nonfinite_f32(const float* g, std::int64_t n, int nan_only);
  int nonfinite_f64(const double* g, std::int64_t n, int nan_only);
  void momentum_f32(float* m, const float* g, std::int64_t n, float b1, float b2);
  void momentum_f64(double* m, const double* g, std::int64_t n, double b1, double b2);
  void update_f32(float* p, float* m, const float* g, std::int64_t n, float b1, float b2, float eta, float wd);
  void update_f64(double* p, double* m, const double* g, std::int64_t n, double b1, double b2, double eta, double wd);
  void update_lion_f32(float* p, float* m, const float* g, std::int64_t n, float b1, float b2, float c1,
                       float c2, float eta, float wd);
  void update_lion_f64(double* p, double* m, const double* g, std::int64_t n, double b1, double b2, double c1,
                       double c2, double eta, double wd);
  void shrink_f32(float* p, std::int64_t n, float s, float c);
  void shrink_f64(double* p, std::int64_t n, double s, double c);
  void scale_f32(float* m, std::int64_t n, float b);
  void scale_f64(double* m, std::int64_t n, double b);
)

}  // namespace tiger
}  // namespace fastcore
