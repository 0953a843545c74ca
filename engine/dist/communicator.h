// Data parallelism's plumbing: the processes that train together (ranks 0..size-1, started by
// `mpirun -np N cftrain ...`) and the collective operations the training loop and evaluation
// need. One communicator per process, made by init_world() from how the process was launched:
// MPI between processes when built with MPI and started by mpirun with more than one rank,
// NCCL between GPUs for CUDA tensors when built with NCCL, and otherwise a single process for
// which every collective is the identity.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "engine/core/tensor.h"

namespace engine {

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // This process's rank among those on its machine (which GPU it takes).
  virtual int local_rank() const = 0;
  virtual std::string describe() const = 0;  // "MPI, 2 ranks", "one process"
  // Whether collectives go through MPI (or NCCL): true under mpirun even for a job of one rank,
  // which then exercises the same path as a larger job; false for a single process.
  virtual bool is_distributed() const = 0;

  // Sums each tensor over all processes, in place: every process ends with the same sums. The
  // tensors are contiguous, f32 or f64, on this process's device (CPU tensors through MPI, CUDA
  // tensors through NCCL when built with it, else through host copies); every process passes
  // tensors of the same shapes in the same order.
  virtual void all_reduce_sum(const std::vector<Tensor>& tensors) = 0;
  // Sums host values over all processes, in place.
  virtual void all_reduce_sum(std::vector<double>& values) = 0;
  // Every process's `value`, in rank order.
  virtual std::vector<double> all_gather(double value) = 0;
  virtual void barrier() = 0;
  // Ends every process of the job with `code` (a failure on one rank must not leave the others
  // waiting forever in a collective).
  [[noreturn]] virtual void abort(int code) = 0;

  bool is_main() const { return rank() == 0; }
};

// Starts the process's communicator from how it was launched (MPI_Init under mpirun when built
// with MPI); a no-op the second time. Call before any other use, with main's arguments.
void init_world(int* argc, char*** argv);
// Ends it (MPI_Finalize); call once at the end of main.
void finalize_world();
// The process's communicator: after init_world, or a single process when it was not called.
Communicator& world();
// A communicator of this process alone (every collective is the identity), whatever the world.
Communicator& single_process();

// Whether this build can run several ranks: "MPI", "MPI + NCCL" or "" (single process only).
std::string distributed_backends();

}  // namespace engine
