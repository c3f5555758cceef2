// Size checks and ISA dispatch of the fused model kernel (mlp.hpp).
#include "common/errors.hpp"
#include "ig/mlp.hpp"

namespace fastcore {
namespace ig {

void mlp_ig(const MlpArgs& a, bool f64) {
  FASTCORE_CHECK(a.n_layers >= 1 && a.n_layers <= kMaxLayers, "ig.mlp: 1 to ", kMaxLayers, " layers");
  for (int l = 0; l <= a.n_layers; ++l) FASTCORE_CHECK(a.dims[l] >= 1 || l == 0, "ig.mlp: empty layer ", l);
  FASTCORE_CHECK(a.N >= 0 && a.S >= 0, "ig.mlp: negative sizes");
  FASTCORE_CHECK(a.xb_row_stride == 0 || a.xb_row_stride == a.dims[0], "ig.mlp: bad baseline stride");
  FASTCORE_CHECK(a.S == 0 || (a.alphas && a.weights), "ig.mlp: missing quadrature");
  if (a.target) {
    for (std::int64_t i = 0; i < a.N; ++i)
      FASTCORE_CHECK(a.target[i] >= 0 && a.target[i] < a.dims[a.n_layers], "ig.mlp: target out of range");
  }
  if (a.N == 0) return;
  if (f64) {
    FASTCORE_ISA_DISPATCH(mlp_ig_f64)(a);
  } else {
    FASTCORE_ISA_DISPATCH(mlp_ig_f32)(a);
  }
}

}  // namespace ig
}  // namespace fastcore
