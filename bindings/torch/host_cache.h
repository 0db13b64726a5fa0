// Internal side of the host buffer cache (public API: torch_ctc/host_cache.h).
#pragma once

#include <ATen/core/Tensor.h>

#include "torch_ctc/host_cache.h"

namespace torch_ctc {

// An uninitialised CPU tensor of these sizes and strides whose storage comes
// from the host cache when it is large enough to be worth caching, and from
// torch's CPU allocator otherwise. It behaves like any CPU tensor (it can be
// resized, shared, serialised).
at::Tensor empty_cached_host(at::IntArrayRef sizes, at::IntArrayRef strides, at::ScalarType dtype);

// As empty_like(like) (same strides when `like` is dense, contiguous otherwise).
at::Tensor empty_cached_host_like(const at::Tensor& like);

}  // namespace torch_ctc
