// Computes a CTC loss and its gradient with torch-ctc's ctc::CTCLoss on random
// data, checks both against torch::nn::CTCLoss, and prints them. Exits with
// status 1 on a mismatch, so it doubles as an install test.
#include <torch/torch.h>
#include <torch_ctc/ctc_loss.h>

#include <cstdio>
#include <vector>

int main() {
  torch::manual_seed(0);
  const int64_t T = 50, N = 4, C = 20;

  // Random network outputs, and for each sample a target of 5..15 labels in
  // [1, C) (0 is the blank), padded to (N, 15).
  const torch::Tensor logits = torch::randn({T, N, C});
  const torch::Tensor targets = torch::randint(1, C, {N, 15}, torch::kLong);
  const torch::Tensor target_lengths = torch::randint(5, 16, {N}, torch::kLong);
  const torch::Tensor input_lengths = torch::tensor(std::vector<int64_t>{50, 45, 40, 35});

  // torch-ctc: the drop-in module, fed log-probabilities as with torch.
  ctc::CTCLoss criterion(ctc::CTCLossOptions().blank(0));
  torch::Tensor x = logits.clone().requires_grad_(true);
  torch::Tensor loss = criterion(x.log_softmax(2), targets, input_lengths, target_lengths);
  loss.backward();

  // The same through LibTorch's own implementation.
  torch::nn::CTCLoss reference(torch::nn::CTCLossOptions().blank(0));
  torch::Tensor x_ref = logits.clone().requires_grad_(true);
  torch::Tensor loss_ref = reference(x_ref.log_softmax(2), targets, input_lengths, target_lengths);
  loss_ref.backward();

  const double grad_error = (x.grad() - x_ref.grad()).abs().max().item<double>();
  std::printf("torch_ctc loss   %.6f\n", loss.item<double>());
  std::printf("torch     loss   %.6f\n", loss_ref.item<double>());
  std::printf("max |grad diff|  %.3g\n", grad_error);

  const bool ok = torch::allclose(loss, loss_ref, 1e-5, 1e-5) && torch::allclose(x.grad(), x_ref.grad(), 1e-4, 1e-6);
  std::printf("%s\n", ok ? "OK: torch_ctc matches torch::nn::CTCLoss" : "MISMATCH");
  return ok ? 0 : 1;
}
