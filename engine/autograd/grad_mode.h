// Grad mode: whether ops record autograd history. NoGradGuard turns it off for a scope
// (evaluation, optimizer updates, the teacher's forward).
#pragma once

namespace engine {

bool is_grad_enabled();
void set_grad_enabled(bool enabled);

class NoGradGuard {
 public:
  NoGradGuard();
  ~NoGradGuard();
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

}  // namespace engine
