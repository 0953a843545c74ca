// Module parameter bookkeeping.
#include "nn/module.h"

#include <set>

namespace nn {

using namespace engine;

Tensor& Module::register_parameter(const std::string& name, Tensor value) {
  ENGINE_CHECK(value.defined(), "register_parameter: '", name, "' is undefined");
  for (const auto& [existing, tensor] : params_)
    ENGINE_CHECK(existing != name, "register_parameter: '", name, "' is registered twice");
  value = value.detach();
  value.requires_grad_(true);
  params_.emplace_back(name, value);
  return params_.back().second;
}

void Module::collect(const std::string& prefix,
                     std::vector<std::pair<std::string, Tensor>>& out) const {
  for (const auto& [name, tensor] : params_) out.emplace_back(prefix + name, tensor);
  for (const auto& [name, child] : children_) child->collect(prefix + name + ".", out);
}

std::vector<std::pair<std::string, Tensor>> Module::named_parameters() const {
  std::vector<std::pair<std::string, Tensor>> out;
  collect("", out);
  return out;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for (auto& [name, tensor] : named_parameters()) out.push_back(tensor);
  return out;
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [name, child] : children_) child->train(on);
}

void Module::zero_grad() {
  for (Tensor& p : parameters()) p.set_grad(Tensor());
}

namespace {
// Makes `param` hold `value` (its memory when contiguous), keeping the handle; drops the grad.
void take_over(Tensor& param, const Tensor& value) {
  const Tensor converted = contiguous(value.detach());
  TensorImpl& impl = param.impl();
  impl.storage = converted.storage();
  impl.strides = converted.strides();
  impl.offset = converted.offset();
  impl.dtype = converted.dtype();
  impl.grad.reset();
}
}  // namespace

void Module::convert_parameters(const std::function<Tensor(const Tensor&)>& convert) {
  for (Tensor& p : parameters()) {
    take_over(p, convert(p.detach()));
  }
}

void Module::to(Device device) {
  convert_parameters([device](const Tensor& p) { return p.to(device); });
}

void Module::to(DType dtype) {
  ENGINE_CHECK(is_floating(dtype), "Module::to: parameters must stay floating-point, not ",
               dtype_name(dtype));
  convert_parameters([dtype](const Tensor& p) { return p.to(dtype); });
}

std::map<std::string, Tensor> Module::state_dict() const {
  std::map<std::string, Tensor> out;
  for (auto& [name, tensor] : named_parameters()) out[name] = tensor;
  return out;
}

void Module::check_state(const std::map<std::string, Tensor>& state, const char* caller) const {
  std::set<std::string> known;
  std::string missing, mismatched;
  for (const auto& [name, tensor] : named_parameters()) {
    known.insert(name);
    auto it = state.find(name);
    if (it == state.end()) {
      missing += (missing.empty() ? "" : ", ") + name;
    } else if (it->second.shape() != tensor.shape()) {
      mismatched += (mismatched.empty() ? "" : ", ") + name + " (expected " +
                    shape_str(tensor.shape()) + ", got " + shape_str(it->second.shape()) + ")";
    }
  }
  std::string unexpected;
  for (const auto& [name, tensor] : state)
    if (!known.count(name)) unexpected += (unexpected.empty() ? "" : ", ") + name;
  ENGINE_CHECK(missing.empty() && unexpected.empty() && mismatched.empty(), caller, ":",
               missing.empty() ? "" : " missing: " + missing + ";",
               unexpected.empty() ? "" : " unexpected: " + unexpected + ";",
               mismatched.empty() ? "" : " shape mismatch: " + mismatched + ";");
}

void Module::load_state_dict(const std::map<std::string, Tensor>& state) {
  check_state(state, "load_state_dict");
  NoGradGuard no_grad;
  for (auto [name, tensor] : named_parameters()) copy_(tensor, state.at(name).to(tensor.dtype()));
}

void Module::adopt_state_dict(std::map<std::string, Tensor>&& state) {
  check_state(state, "adopt_state_dict");
  for (auto [name, tensor] : named_parameters()) {
    auto it = state.find(name);
    take_over(tensor, it->second.to(tensor.dtype()).to(tensor.device()));
    state.erase(it);
  }
}

}  // namespace nn
