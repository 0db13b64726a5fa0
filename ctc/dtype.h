// Storage types the engine reads and writes, and their conversions to the
// compute ("accumulate") type. Half types are computed in float32, float64 in
// float64. The conversions are host/device so the CUDA kernels use them as-is.
#pragma once

#include <cstdint>
#include <cstring>

#include "ctc/hd.h"

namespace ctc {

enum class DType : int32_t { kFloat32 = 0, kFloat64 = 1, kFloat16 = 2, kBFloat16 = 3 };

const char* dtype_name(DType dtype);

// Size in bytes of one element of `dtype`.
constexpr int64_t dtype_size(DType dtype) {
  return dtype == DType::kFloat64 ? 8 : dtype == DType::kFloat32 ? 4 : 2;
}

// The type the recurrences run in for a given input dtype.
constexpr DType accumulate_dtype(DType dtype) {
  return dtype == DType::kFloat64 ? DType::kFloat64 : DType::kFloat32;
}

// IEEE binary16, stored as its bit pattern (no arithmetic: convert to float).
struct half_t {
  uint16_t bits;
};

// bfloat16 (the upper half of a float32), stored as its bit pattern.
struct bfloat16_t {
  uint16_t bits;
};

CTC_HD float bits_to_float(uint32_t u) {
#if defined(__CUDA_ARCH__)
  return __uint_as_float(u);
#else
  float f;
  std::memcpy(&f, &u, sizeof f);
  return f;
#endif
}

CTC_HD uint32_t float_to_bits(float f) {
#if defined(__CUDA_ARCH__)
  return __float_as_uint(f);
#else
  uint32_t u;
  std::memcpy(&u, &f, sizeof u);
  return u;
#endif
}

CTC_HD float to_float(bfloat16_t x) { return bits_to_float(static_cast<uint32_t>(x.bits) << 16); }

// Round to nearest even; NaN stays a (quiet) NaN.
CTC_HD bfloat16_t to_bfloat16(float f) {
  uint32_t u = float_to_bits(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return bfloat16_t{static_cast<uint16_t>((u >> 16) | 0x40u)};
  u += 0x7fffu + ((u >> 16) & 1u);
  return bfloat16_t{static_cast<uint16_t>(u >> 16)};
}

CTC_HD float to_float(half_t x) {
  const uint32_t sign = static_cast<uint32_t>(x.bits & 0x8000u) << 16;
  const uint32_t exponent = (x.bits >> 10) & 0x1fu;
  const uint32_t mantissa = x.bits & 0x3ffu;
  if (exponent == 0x1f) return bits_to_float(sign | 0x7f800000u | (mantissa << 13));  // inf / NaN
  if (exponent != 0) return bits_to_float(sign | ((exponent + 112u) << 23) | (mantissa << 13));
  // Zero or subnormal: value = mantissa * 2^-24, exact in float.
  const float magnitude = static_cast<float>(mantissa) * 5.9604644775390625e-8f;
  return sign ? -magnitude : magnitude;
}

// Round to nearest even, with overflow to inf, subnormals and NaN handled.
CTC_HD half_t to_half(float f) {
  const uint32_t u = float_to_bits(f);
  const uint16_t sign = static_cast<uint16_t>((u >> 16) & 0x8000u);
  const uint32_t abs = u & 0x7fffffffu;
  if (abs > 0x7f800000u) return half_t{static_cast<uint16_t>(sign | 0x7e00u)};  // NaN
  if (abs >= 0x477ff000u) return half_t{static_cast<uint16_t>(sign | 0x7c00u)};  // rounds to inf
  if (abs < 0x38800000u) {
    // Result is subnormal or zero: scale so the integer part is the mantissa.
    const float scaled = bits_to_float(abs) * 16777216.0f;  // * 2^24
    uint32_t m = static_cast<uint32_t>(scaled);
    const float rest = scaled - static_cast<float>(m);
    if (rest > 0.5f || (rest == 0.5f && (m & 1u))) ++m;
    return half_t{static_cast<uint16_t>(sign | m)};
  }
  uint32_t v = abs - (112u << 23);  // rebias the exponent
  v += 0xfffu + ((v >> 13) & 1u);
  return half_t{static_cast<uint16_t>(sign | (v >> 13))};
}

// load<Acc>(storage) and store(storage&, acc): the engine's only way to touch inputs and outputs.
template <typename Acc>
CTC_HD Acc load(float x) { return static_cast<Acc>(x); }
template <typename Acc>
CTC_HD Acc load(double x) { return static_cast<Acc>(x); }
template <typename Acc>
CTC_HD Acc load(half_t x) { return static_cast<Acc>(to_float(x)); }
template <typename Acc>
CTC_HD Acc load(bfloat16_t x) { return static_cast<Acc>(to_float(x)); }

CTC_HD void store(float& dst, float v) { dst = v; }
CTC_HD void store(double& dst, double v) { dst = v; }
CTC_HD void store(half_t& dst, float v) { dst = to_half(v); }
CTC_HD void store(bfloat16_t& dst, float v) { dst = to_bfloat16(v); }

// Calls fn(In{}, Acc{}) with the storage and accumulate types of `dtype`;
// every backend dispatches through this one table.
template <typename Fn>
void dispatch_dtype(DType dtype, Fn&& fn) {
  switch (dtype) {
    case DType::kFloat32: return fn(float{}, float{});
    case DType::kFloat64: return fn(double{}, double{});
    case DType::kFloat16: return fn(half_t{}, float{});
    case DType::kBFloat16: return fn(bfloat16_t{}, float{});
  }
}

}  // namespace ctc
