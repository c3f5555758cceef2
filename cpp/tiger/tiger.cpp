// Tiger step driver: the flat work table, the pre-pass and the update region (see tiger.hpp).
//
// Work items: every tensor is cut into items of `chunk` elements (whole rows for row-RMS and
// lazy-row tensors); the cut depends only on the tensor's own size, never on the list or on the
// thread count, so a multi-tensor call gives the same bits as a loop of single-tensor calls and
// 1 thread the same bits as N.
//
// Pass 1 (only when needed): per item, sum-of-squares partials of theta per kBlock block (added
// later in block order, so chunking does not matter either), per-row sums of squares for row-RMS
// tensors, and the non-finite flag of g. Pass 2: per item, the update.
//
// Semantics of a flagged (non-finite) tensor:
//  * default: the micro-batch's gradient is dropped. m keeps the cycle's decay when k > 1 and this
//    is the first micro-step (m <- beta*m), else m is unchanged. On the last micro-step of a cycle
//    theta is shrunk ("shrink") or left alone ("skip"); earlier micro-steps never touch theta.
//  * strict (the published tiger.py): NaN only, per tensor; m unchanged (b1 = 1, g = 0) and theta
//    shrunk on every micro-step, flagged or not the theta update theta - eta*(...) with eta = 0 is
//    also evaluated (and written) on non-final micro-steps, as tf.assign does.
#include "tiger/tiger.hpp"

#include <cmath>
#include <vector>

#include "common/errors.hpp"
#include "common/parallel.hpp"

namespace fastcore {
namespace tiger {

namespace {

struct Item {
  std::int64_t tensor;
  std::int64_t begin, end;  // element range
};

inline bool by_rows(const TensorArgs& t) { return t.rms_mode == RmsMode::row || t.lazy_rows; }

template <class T>
struct Kernels;

template <>
struct Kernels<float> {
  static double sumsq(const float* p, std::int64_t n) { return FASTCORE_ISA_DISPATCH(sumsq_f32)(p, n); }
  static int nonfinite(const float* g, std::int64_t n, int nan_only) {
    return FASTCORE_ISA_DISPATCH(nonfinite_f32)(g, n, nan_only);
  }
  static void momentum(float* m, const float* g, std::int64_t n, float b1, float b2) {
    FASTCORE_ISA_DISPATCH(momentum_f32)(m, g, n, b1, b2);
  }
  static void update(float* p, float* m, const float* g, std::int64_t n, float b1, float b2, float eta, float wd) {
    FASTCORE_ISA_DISPATCH(update_f32)(p, m, g, n, b1, b2, eta, wd);
  }
  static void update_lion(float* p, float* m, const float* g, std::int64_t n, float b1, float b2, float c1,
                          float c2, float eta, float wd) {
    FASTCORE_ISA_DISPATCH(update_lion_f32)(p, m, g, n, b1, b2, c1, c2, eta, wd);
  }
  static void shrink(float* p, std::int64_t n, float s, float c) { FASTCORE_ISA_DISPATCH(shrink_f32)(p, n, s, c); }
  static void scale(float* m, std::int64_t n, float b) { FASTCORE_ISA_DISPATCH(scale_f32)(m, n, b); }
};

template <>
struct Kernels<double> {
  static double sumsq(const double* p, std::int64_t n) { return FASTCORE_ISA_DISPATCH(sumsq_f64)(p, n); }
  static int nonfinite(const double* g, std::int64_t n, int nan_only) {
    return FASTCORE_ISA_DISPATCH(nonfinite_f64)(g, n, nan_only);
  }
  static void momentum(double* m, const double* g, std::int64_t n, double b1, double b2) {
    FASTCORE_ISA_DISPATCH(momentum_f64)(m, g, n, b1, b2);
  }
  static void update(double* p, double* m, const double* g, std::int64_t n, double b1, double b2, double eta,
                     double wd) {
    FASTCORE_ISA_DISPATCH(update_f64)(p, m, g, n, b1, b2, eta, wd);
  }
  static void update_lion(double* p, double* m, const double* g, std::int64_t n, double b1, double b2,
                          double c1, double c2, double eta, double wd) {
    FASTCORE_ISA_DISPATCH(update_lion_f64)(p, m, g, n, b1, b2, c1, c2, eta, wd);
  }
  static void shrink(double* p, std::int64_t n, double s, double c) { FASTCORE_ISA_DISPATCH(shrink_f64)(p, n, s, c); }
  static void scale(double* m, std::int64_t n, double b) { FASTCORE_ISA_DISPATCH(scale_f64)(m, n, b); }
};

// Everything pass 2 needs about one tensor, decided after pass 1.
struct Plan {
  bool flagged = false;
  double eta = 0.0;            // tensor / none modes
  const double* eta_rows = nullptr;  // row mode: one eta per row
};

struct Scalars {
  bool first, final_step;
  double b1, b2;
};

// Pass 1 for one item.
template <class T>
void prepass_item(const TensorArgs& t, const Item& it, bool want_rms, bool detect, int nan_only,
                  double* block_sumsq, double* row_sumsq, std::uint8_t* flag) {
  const T* p = static_cast<const T*>(t.p);
  const T* g = static_cast<const T*>(t.g);
  if (want_rms && t.rms_mode != RmsMode::none && by_rows(t)) {
    // Row-aligned items: per-row sums (tensor mode adds them in row order afterwards).
    const std::int64_t L = t.row_len;
    for (std::int64_t r = it.begin / L; r < it.end / L; ++r) row_sumsq[r] = Kernels<T>::sumsq(p + r * L, L);
  } else if (want_rms && t.rms_mode == RmsMode::tensor) {
    for (std::int64_t b = it.begin; b < it.end; b += kBlock) {
      const std::int64_t e = b + kBlock < it.end ? b + kBlock : it.end;
      block_sumsq[b / kBlock] = Kernels<T>::sumsq(p + b, e - b);
    }
  }
  if (detect) *flag = static_cast<std::uint8_t>(Kernels<T>::nonfinite(g + it.begin, it.end - it.begin, nan_only));
}

// Pass 2 for one item.
template <class T>
void update_item(const TensorArgs& t, const Item& it, const Plan& plan, const StepArgs& a, const Scalars& sc) {
  T* p = static_cast<T*>(t.p) + it.begin;
  T* m = static_cast<T*>(t.m) + it.begin;
  const T* g = static_cast<const T*>(t.g) + it.begin;
  const std::int64_t n = it.end - it.begin;
  // Maximising = descending on -g; b2*(-g) == -(b2*g) exactly, so negating b2 is the same.
  const T b2 = static_cast<T>(a.maximize ? -sc.b2 : sc.b2);
  if (plan.flagged) {
    if (a.strict) {  // tiger.py: b1 = 1, g = 0 -> m unchanged; theta shrunk on every micro-step
      Kernels<T>::shrink(p, n, static_cast<T>(a.shrink_ratio), static_cast<T>(t.centre));
      return;
    }
    if (a.accum > 1 && sc.first) Kernels<T>::scale(m, n, static_cast<T>(a.beta));
    if (sc.final_step && a.action == Action::shrink)
      Kernels<T>::shrink(p, n, static_cast<T>(a.shrink_ratio), static_cast<T>(t.centre));
    return;
  }
  const T b1 = static_cast<T>(sc.b1);
  if (!sc.final_step && !a.strict) {  // hidden accumulation: theta neither read nor written
    Kernels<T>::momentum(m, g, n, b1, b2);
    return;
  }
  const T wd = static_cast<T>(t.weight_decay);
  auto run = [&](std::int64_t off, std::int64_t len, T eta) {
    if (a.lion) {
      const T c2 = static_cast<T>(a.maximize ? -(1.0 - a.beta2) : (1.0 - a.beta2));
      Kernels<T>::update_lion(p + off, m + off, g + off, len, b1, b2, static_cast<T>(a.beta2), c2, eta, wd);
    } else {
      Kernels<T>::update(p + off, m + off, g + off, len, b1, b2, eta, wd);
    }
  };
  if (!by_rows(t)) {
    run(0, n, static_cast<T>(plan.eta));
    return;
  }
  const std::int64_t L = t.row_len;
  const std::int64_t r0 = it.begin / L;
  for (std::int64_t r = 0; r < n / L; ++r) {
    if (t.lazy_rows) {  // a row whose gradient is all zero keeps m and theta bit-unchanged
      bool zero = true;
      for (std::int64_t j = 0; j < L && zero; ++j) zero = g[r * L + j] == T(0);
      if (zero) continue;
    }
    const double eta = plan.eta_rows ? plan.eta_rows[r0 + r] : plan.eta;
    run(r * L, L, static_cast<T>(eta));
  }
}

}  // namespace

void step(const TensorArgs* tensors, std::int64_t n_tensors, const StepArgs& a, std::uint8_t* flags_out) {
  FASTCORE_CHECK(n_tensors >= 0, "tiger: negative tensor count");
  FASTCORE_CHECK(a.accum >= 1, "tiger: grad_accum_steps must be >= 1");
  FASTCORE_CHECK(a.step >= 0, "tiger: step must be >= 0");
  const std::int64_t chunk = a.chunk > 0 ? a.chunk : kDefaultChunk;
  FASTCORE_CHECK(chunk % kBlock == 0, "tiger: chunk must be a multiple of ", kBlock);

  Scalars sc;
  sc.first = a.step % a.accum == 0;
  sc.final_step = (a.step + 1) % a.accum == 0;
  sc.b1 = sc.first ? a.beta : 1.0;
  sc.b2 = (1.0 - a.beta) / static_cast<double>(a.accum);
  if (a.lion) sc.b2 = 1.0 - a.beta;  // Lion (k = 1): c = beta*m + (1 - beta)*g

  // The work table and per-tensor offsets into the block / row partial arrays.
  const bool want_rms = sc.final_step || a.strict;
  const bool detecting = a.action != Action::ignore || a.strict;
  std::vector<Item> items;
  std::vector<std::int64_t> block_off(static_cast<std::size_t>(n_tensors) + 1, 0);
  std::vector<std::int64_t> row_off(static_cast<std::size_t>(n_tensors) + 1, 0);
  std::vector<std::int64_t> item_off(static_cast<std::size_t>(n_tensors) + 1, 0);
  bool need_prepass = false;
  for (std::int64_t i = 0; i < n_tensors; ++i) {
    const TensorArgs& t = tensors[i];
    FASTCORE_CHECK(t.n >= 0 && t.row_len >= 1 && t.n % t.row_len == 0, "tiger: tensor ", i, " has bad sizes");
    const auto u = static_cast<std::size_t>(i);
    item_off[u] = static_cast<std::int64_t>(items.size());
    if (t.n > 0) {
      if (by_rows(t)) {
        const std::int64_t rows_per_item = t.row_len >= chunk ? 1 : chunk / t.row_len;
        const std::int64_t step_elems = checked_mul(rows_per_item, t.row_len, "tiger item");
        for (std::int64_t b = 0; b < t.n; b += step_elems)
          items.push_back({i, b, b + step_elems < t.n ? b + step_elems : t.n});
      } else {
        for (std::int64_t b = 0; b < t.n; b += chunk) items.push_back({i, b, b + chunk < t.n ? b + chunk : t.n});
      }
    }
    const bool rms_here = want_rms && t.rms_mode != RmsMode::none && t.n > 0;
    const bool detect_here = detecting && (t.found_inf < 0 || a.strict) && t.n > 0;
    need_prepass = need_prepass || rms_here || detect_here;
    block_off[u + 1] = block_off[u] + (rms_here && !by_rows(t) ? (t.n + kBlock - 1) / kBlock : 0);
    row_off[u + 1] = row_off[u] + (rms_here && by_rows(t) ? t.n / t.row_len : 0);
  }
  item_off[static_cast<std::size_t>(n_tensors)] = static_cast<std::int64_t>(items.size());
  const auto n_items = static_cast<std::int64_t>(items.size());

  std::vector<double> block_sumsq(static_cast<std::size_t>(block_off.back()));
  std::vector<double> row_sumsq(static_cast<std::size_t>(row_off.back()));
  std::vector<std::uint8_t> item_flag(static_cast<std::size_t>(n_items), 0);
  if (need_prepass) {
    parallel_for_chunks(n_items, [&](std::int64_t c) {
      const Item& it = items[static_cast<std::size_t>(c)];
      const auto u = static_cast<std::size_t>(it.tensor);
      const TensorArgs& t = tensors[it.tensor];
      const bool rms_here = want_rms && t.rms_mode != RmsMode::none;
      const bool detect_here = detecting && (t.found_inf < 0 || a.strict);
      double* bs = block_sumsq.data() + block_off[u];
      double* rs = row_sumsq.data() + row_off[u];
      std::uint8_t* f = item_flag.data() + c;
      if (t.dtype == Dtype::f32)
        prepass_item<float>(t, it, rms_here, detect_here, a.nan_only || a.strict, bs, rs, f);
      else
        prepass_item<double>(t, it, rms_here, detect_here, a.nan_only || a.strict, bs, rs, f);
    });
  }

  // Per-tensor decisions, in tensor order (serial; O(items + blocks + rows)).
  std::vector<Plan> plans(static_cast<std::size_t>(n_tensors));
  std::vector<double> eta_rows(static_cast<std::size_t>(row_off.back()));
  bool any_flag = false;
  for (std::int64_t i = 0; i < n_tensors; ++i) {
    const auto u = static_cast<std::size_t>(i);
    const TensorArgs& t = tensors[i];
    bool flagged = false;
    if (a.strict || (detecting && t.found_inf < 0)) {
      for (std::int64_t c = item_off[u]; c < item_off[u + 1]; ++c) flagged = flagged || item_flag[static_cast<std::size_t>(c)];
    } else if (detecting) {
      flagged = t.found_inf > 0;
    }
    plans[u].flagged = flagged;
    any_flag = any_flag || flagged;
    // eta = (lr * lr_mult) * max(RMS, rms_floor); lr is 0 on non-final micro-steps (strict mode
    // evaluates the update there too, and 0 * RMS is NaN for an infinite RMS, as in tiger.py).
    const double lr_t = (sc.final_step ? a.lr : 0.0) * t.lr_mult;
    auto floored = [&](double rms) { return rms < a.rms_floor ? a.rms_floor : rms; };
    if (t.rms_mode == RmsMode::none || t.n == 0 || !want_rms) {
      plans[u].eta = lr_t;
    } else if (t.rms_mode == RmsMode::tensor) {
      double s = 0.0;
      for (std::int64_t b = block_off[u]; b < block_off[u + 1]; ++b) s += block_sumsq[static_cast<std::size_t>(b)];
      for (std::int64_t r = row_off[u]; r < row_off[u + 1]; ++r) s += row_sumsq[static_cast<std::size_t>(r)];
      plans[u].eta = lr_t * floored(std::sqrt(s / static_cast<double>(t.n)));
    } else {
      const double L = static_cast<double>(t.row_len);
      for (std::int64_t r = row_off[u]; r < row_off[u + 1]; ++r) {
        const auto ru = static_cast<std::size_t>(r);
        eta_rows[ru] = lr_t * floored(std::sqrt(row_sumsq[ru] / L));
      }
      plans[u].eta_rows = eta_rows.data() + row_off[u];
    }
  }
  if (a.global_scope && any_flag && !a.strict)
    for (auto& pl : plans) pl.flagged = true;
  for (std::int64_t i = 0; i < n_tensors; ++i) flags_out[i] = plans[static_cast<std::size_t>(i)].flagged ? 1 : 0;

  parallel_for_chunks(n_items, [&](std::int64_t c) {
    const Item& it = items[static_cast<std::size_t>(c)];
    const TensorArgs& t = tensors[it.tensor];
    const Plan& plan = plans[static_cast<std::size_t>(it.tensor)];
    if (t.dtype == Dtype::f32)
      update_item<float>(t, it, plan, a, sc);
    else
      update_item<double>(t, it, plan, a, sc);
  });
}

}  // namespace tiger
}  // namespace fastcore
