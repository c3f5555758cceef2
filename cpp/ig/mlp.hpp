// Fused integrated gradients for the built-in models (notes §7d), one compiled call:
//
//   a1 = W1 x + b1, a1' = W1 x' + b1            (two first-layer products per example, once)
//   a1(α_k) = (1 − α_k) a1' + α_k a1           (the first layer is affine in α)
//   head: h_l = act(a_l), a_{l+1} = W_{l+1} h_l + b_{l+1}, logits a_L; F = logit / softmax /
//         log-softmax of the target; backward δ_L = ∂F/∂a_L, δ_l = (δ_{l+1} W_{l+1}) ⊙ act'(a_l)
//   δ̄1 = Σ_k w_k δ_1(α_k)   (double, ascending k)
//   IG = (x − x') ⊙ (δ̄1 W1)                   (one input-sized product per example)
//
// Linear models are the case L = 1 (the head is empty, δ_1 = ∂F/∂logits). Matrix products are
// per-element fma chains in ascending k (any tiling, any ISA: the same bits); examples are
// processed in fixed blocks of kExampleBlock (first-layer products in fixed column panels) by the
// thread pool, so results are bitwise
// independent of the thread count and of the SIMD level.
#pragma once

#include <cstdint>

#include "common/simd.hpp"

namespace fastcore {
namespace ig {

enum class Act : int { relu = 0, gelu = 1, gelu_tanh = 2, tanh = 3 };
enum class Output : int { logit = 0, softmax = 1, log_softmax = 2 };

constexpr int kMaxLayers = 16;
constexpr std::int64_t kExampleBlock = 8;  // examples per head work item (fixed partition)
constexpr std::int64_t kColumnPanel = 64;   // columns per work item of the input-sized products
constexpr std::int64_t kTileRows = 72;      // (step, example) rows per head tile (a multiple of 6)

struct MlpArgs {
  int n_layers = 0;
  std::int64_t dims[kMaxLayers + 1] = {};  // dims[0] = D (inputs), dims[L] = C (outputs)
  const void* W[kMaxLayers] = {};          // layer l: (dims[l+1], dims[l]) row-major
  const void* WT[kMaxLayers] = {};         // its transpose (dims[l], dims[l+1]) row-major
  const void* b[kMaxLayers] = {};          // (dims[l+1]), never null
  Act act = Act::relu;
  Output output = Output::logit;
  const void* x = nullptr;                 // (N, D)
  const void* xb = nullptr;                // baseline rows (stride 0 or D), or null: no baseline (a1' = a1)
  std::int64_t xb_row_stride = 0;
  std::int64_t N = 0;
  const std::int64_t* target = nullptr;    // (N,) in [0, C), or null: class 0
  const double* alphas = nullptr;          // (S,)
  const double* weights = nullptr;         // (S,)
  std::int64_t S = 0;
  bool multiply = true;                    // × (x − x'), else δ̄1 W1 only
  void* attr = nullptr;                    // (N, D) or null
  double* f_ends = nullptr;                // (N, 2): F(x'), F(x), or null
};

// Validates sizes (ValueError) and runs. T = float for f32, double for f64.
void mlp_ig(const MlpArgs& a, bool f64);

FASTCORE_ISA_DECLARE(
  void mlp_ig_f32(const MlpArgs& a);
  void mlp_ig_f64(const MlpArgs& a);
)

}  // namespace ig
}  // namespace fastcore
