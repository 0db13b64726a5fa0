// The torch_ctc._C extension module. Loading it loads libtorch_ctc, whose
// static initialisers register the torch_ctc operators with the dispatcher;
// the Python API then calls them as torch.ops.torch_ctc.*. The module itself
// exposes build facts and the workspace-size query.
#include <pybind11/pybind11.h>

#include <string>

#include "ctc/cpu_engine.h"
#include "ctc/workspace.h"
#include "torch_ctc/host_cache.h"

namespace py = pybind11;

namespace {

bool built_with_cuda() {
#ifdef TORCH_CTC_WITH_CUDA
  return true;
#else
  return false;
#endif
}

}  // namespace

PYBIND11_MODULE(_C, m) {
  m.doc() = "torch-ctc native module (registers torch.ops.torch_ctc)";
  m.def("built_with_cuda", &built_with_cuda, "Whether the CUDA kernels were compiled in.");
  m.def(
      "forward_workspace_elems",
      [](int64_t max_time, int64_t batch, int64_t target_slots, bool from_logits) {
        return ctc::forward_workspace_layout(max_time, batch, target_slots, from_logits).total_elems();
      },
      py::arg("max_time"), py::arg("batch"), py::arg("target_slots"), py::arg("from_logits") = false,
      "Elements (of the accumulate dtype) of the workspace that the forward pass keeps for backward.");
  m.def(
      "set_cpu_kernel",
      [](const std::string& name) {
        if (name == "auto") ctc::set_cpu_kernel(ctc::CpuKernel::kAuto);
        else if (name == "scalar") ctc::set_cpu_kernel(ctc::CpuKernel::kScalar);
        else throw py::value_error("torch_ctc: cpu kernel must be 'auto' or 'scalar', got '" + name + "'");
      },
      py::arg("name"), "Choose the CPU kernels: 'auto' (AVX2 when available) or 'scalar' (portable reference).");
  m.def(
      "active_cpu_kernel", [](const std::string& dtype) {
        const ctc::DType d = dtype == "float64" ? ctc::DType::kFloat64 : ctc::DType::kFloat32;
        return std::string(ctc::cpu_kernel_name(ctc::active_cpu_kernel(d)));
      },
      py::arg("dtype") = "float32", "The CPU kernel that problems of this accumulate dtype use now.");
  m.def("empty_host_cache", &ctc::empty_host_cache,
        "Return the CPU operators' cached workspace and gradient blocks to the system.");
  m.def(
      "host_cache_info",
      [] {
        const ctc::HostCacheInfo info = ctc::host_cache_info();
        py::dict out;
        out["cached_bytes"] = info.cached_bytes;
        out["limit_bytes"] = info.limit_bytes;
        out["hits"] = info.hits;
        out["misses"] = info.misses;
        return out;
      },
      "Bytes held for reuse, the limit (TORCH_CTC_HOST_CACHE_MB), and allocations served from it or not.");
  m.attr("__version__") = TORCH_CTC_VERSION;
}
