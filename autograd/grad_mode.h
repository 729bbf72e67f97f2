// Grad mode: while it is off (inside a NoGradGuard), ops record nothing on the tape. Per thread, so a
// data-loader thread never touches the training thread's mode.
#pragma once

namespace effnet::autograd {

bool grad_enabled();
void set_grad_enabled(bool enabled);

class NoGradGuard {
 public:
  NoGradGuard() : previous_(grad_enabled()) { set_grad_enabled(false); }
  ~NoGradGuard() { set_grad_enabled(previous_); }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

}  // namespace effnet::autograd
