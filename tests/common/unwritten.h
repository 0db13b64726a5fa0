// A NaN bit pattern that no computation produces (computed NaNs are the quiet
// default ones), for filling output buffers before a call so that an element
// the call never wrote is found afterwards. Shared by the fuzzer and the
// CUDA simulator suite.
#pragma once

#include <cstdint>
#include <cstring>

namespace ctc::test {

template <typename T>
T unwritten() {
  T v;
  if constexpr (sizeof(T) == 8) {
    const uint64_t bits = 0x7ff4a5a5a5a5a5a5ull;
    std::memcpy(&v, &bits, 8);
  } else if constexpr (sizeof(T) == 4) {
    const uint32_t bits = 0x7fa5a5a5u;
    std::memcpy(&v, &bits, 4);
  } else {
    static_assert(sizeof(T) == 2, "a 2-, 4- or 8-byte element");
    const uint16_t bits = 0x7d5a;
    std::memcpy(&v, &bits, 2);
  }
  return v;
}

// True when `v` still holds the pattern.
template <typename T>
bool is_unwritten(const T& v) {
  const T marker = unwritten<T>();
  return std::memcmp(&v, &marker, sizeof(T)) == 0;
}

}  // namespace ctc::test
