// Module: the base of every layer and model. Holds named parameters and child modules, so
// named_parameters() yields hierarchical names like "transformer.resblocks.3.ln_1.weight";
// a train/eval flag; zero_grad; state_dict/load_state_dict with strict name and shape checks;
// and moving all parameters to a device in place.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "engine/ops/ops.h"

namespace nn {

using engine::Tensor;

class Module {
 public:
  virtual ~Module() = default;

  std::vector<std::pair<std::string, Tensor>> named_parameters() const;
  std::vector<Tensor> parameters() const;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> named_children() const {
    return children_;
  }

  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }

  // Drops every parameter's gradient (the next backward starts from nothing).
  void zero_grad();
  // Moves / converts every parameter in place (handles held elsewhere see the change); the
  // gradients are dropped.
  void to(engine::Device device);
  void to(engine::DType dtype);

  std::map<std::string, Tensor> state_dict() const;
  // Copies values into the parameters. Missing or unexpected names and shape mismatches are
  // errors listing every offending name.
  void load_state_dict(const std::map<std::string, Tensor>& state);
  // Like load_state_dict, but the parameters take over the given tensors' memory (converted
  // to the parameter's dtype and device only where they differ) and each entry leaves `state`
  // as it is taken, so a large checkpoint is never held twice.
  void adopt_state_dict(std::map<std::string, Tensor>&& state);

 protected:
  // Registers a parameter (made a leaf that requires grad) and returns the stored handle.
  Tensor& register_parameter(const std::string& name, Tensor value);
  template <typename M>
  std::shared_ptr<M> register_module(const std::string& name, std::shared_ptr<M> module) {
    children_.emplace_back(name, module);
    return module;
  }

 private:
  // Replaces every parameter's data by convert(parameter), keeping the handles.
  void convert_parameters(const std::function<Tensor(const Tensor&)>& convert);
  // Throws listing missing, unexpected and mis-shaped names when `state` does not fit.
  void check_state(const std::map<std::string, Tensor>& state, const char* caller) const;
  void collect(const std::string& prefix, std::vector<std::pair<std::string, Tensor>>& out) const;

  std::vector<std::pair<std::string, Tensor>> params_;
  std::vector<std::pair<std::string, std::shared_ptr<Module>>> children_;
  bool training_ = true;
};

}  // namespace nn
