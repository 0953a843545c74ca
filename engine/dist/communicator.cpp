// The single-process communicator and the choice of the process's communicator (see
// communicator.h).
#include "engine/dist/communicator.h"

#include <cstdlib>

#include "engine/dist/mpi_world.h"

namespace engine {

namespace {

class SingleProcess final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  int local_rank() const override { return 0; }
  std::string describe() const override { return "one process"; }
  bool is_distributed() const override { return false; }
  void all_reduce_sum(const std::vector<Tensor>&) override {}
  void all_reduce_sum(std::vector<double>&) override {}
  std::vector<double> all_gather(double value) override { return {value}; }
  void barrier() override {}
  [[noreturn]] void abort(int code) override { std::exit(code); }
};

std::unique_ptr<Communicator>& the_world() {
  static std::unique_ptr<Communicator> world;
  return world;
}

}  // namespace

void init_world(int* argc, char*** argv) {
  if (the_world()) return;
  the_world() = launched_by_mpi() ? start_mpi_world(argc, argv) : nullptr;
  if (!the_world()) the_world() = std::make_unique<SingleProcess>();
}

void finalize_world() { stop_mpi_world(); }

Communicator& single_process() {
  static SingleProcess alone;
  return alone;
}

Communicator& world() {
  if (!the_world()) the_world() = std::make_unique<SingleProcess>();
  return *the_world();
}

}  // namespace engine
