// The torch_ctc._C extension module. Loading it loads libtorch_ctc, whose
// static initialisers register the torch_ctc operators with the dispatcher;
// the Python API then calls them as torch.ops.torch_ctc.*. The module itself
// exposes build facts and the workspace-size query.
#include <pybind11/pybind11.h>

#include "ctc/workspace.h"

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
  m.attr("__version__") = TORCH_CTC_VERSION;
}
