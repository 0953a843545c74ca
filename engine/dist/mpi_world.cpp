// MPI's communicator: ranks, collectives and the abort that ends a whole job (see mpi_world.h).
#include "engine/dist/mpi_world.h"

#include <algorithm>
#include <cstdlib>
#include <iostream>
#include <string>

#include "engine/core/error.h"
#include "engine/ops/ops.h"
#ifdef ENGINE_HAVE_MPI
#include <mpi.h>
#endif
#ifdef ENGINE_HAVE_NCCL
#include "engine/dist/nccl_group.h"
#endif

namespace engine {

namespace {

// The job size the launcher announces (Open MPI, PMIx or MPICH), or 0 when there is none.
int announced_size() {
  for (const char* name : {"OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "PMI_SIZE"})
    if (const char* value = std::getenv(name)) return std::atoi(value);
  return 0;
}

}  // namespace

bool launched_by_mpi() { return announced_size() > 0; }

#ifdef ENGINE_HAVE_MPI

namespace {

bool g_initialised = false;

void check_mpi(int code, const char* call) {
  if (code == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(code, text, &length);
  fail(call, " failed: ", std::string(text, static_cast<size_t>(length)));
}

MPI_Datatype mpi_type(DType dtype) {
  if (dtype == DType::F32) return MPI_FLOAT;
  if (dtype == DType::F64) return MPI_DOUBLE;
  fail("all_reduce_sum: dtype ", dtype_name(dtype), " is not supported (f32 or f64)");
}

class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator() {
    check_mpi(MPI_Comm_rank(MPI_COMM_WORLD, &rank_), "MPI_Comm_rank");
    check_mpi(MPI_Comm_size(MPI_COMM_WORLD, &size_), "MPI_Comm_size");
    // The ranks that share this machine, numbered among themselves: one GPU each.
    MPI_Comm local;
    check_mpi(
        MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &local),
        "MPI_Comm_split_type");
    check_mpi(MPI_Comm_rank(local, &local_rank_), "MPI_Comm_rank");
    MPI_Comm_free(&local);
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  int local_rank() const override { return local_rank_; }
  std::string describe() const override {
    return "MPI, " + std::to_string(size_) + (size_ == 1 ? " rank" : " ranks");
  }
  bool is_distributed() const override { return true; }

  void all_reduce_sum(const std::vector<Tensor>& tensors) override {
    for (const Tensor& t : tensors) {
      ENGINE_CHECK(t.is_contiguous(), "all_reduce_sum: tensors must be contiguous");
      if (t.device().is_cuda()) {
#ifdef ENGINE_HAVE_NCCL
        nccl(t.device().index).all_reduce_sum(t);
        continue;
#else
        // No NCCL: through host memory.
        Tensor host = t.to(Device::cpu());
        reduce_host(host);
        Tensor target = t;
        copy_(target, host);
        continue;
#endif
      }
      reduce_host(t);
    }
  }

  void all_reduce_sum(std::vector<double>& values) override {
    check_mpi(MPI_Allreduce(MPI_IN_PLACE, values.data(), static_cast<int>(values.size()),
                            MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD),
              "MPI_Allreduce");
  }

  std::vector<double> all_gather(double value) override {
    std::vector<double> values(static_cast<size_t>(size_));
    check_mpi(MPI_Allgather(&value, 1, MPI_DOUBLE, values.data(), 1, MPI_DOUBLE, MPI_COMM_WORLD),
              "MPI_Allgather");
    return values;
  }

  void barrier() override { check_mpi(MPI_Barrier(MPI_COMM_WORLD), "MPI_Barrier"); }

  [[noreturn]] void abort(int code) override {
    std::cerr.flush();
    MPI_Abort(MPI_COMM_WORLD, code);
    std::exit(code);  // MPI_Abort does not return; this keeps [[noreturn]] honest
  }

 private:
  int rank_ = 0, size_ = 1, local_rank_ = 0;
#ifdef ENGINE_HAVE_NCCL
  std::unique_ptr<NcclGroup> nccl_;
  NcclGroup& nccl(int device) {
    if (!nccl_) nccl_ = std::make_unique<NcclGroup>(rank_, size_, device);
    return *nccl_;
  }
#endif

  // A CPU tensor's elements summed over the ranks, in place, in chunks MPI's int counts hold.
  void reduce_host(const Tensor& t) {
    const MPI_Datatype type = mpi_type(t.dtype());
    char* data = static_cast<char*>(t.raw_data());
    const int64_t item = static_cast<int64_t>(dtype_size(t.dtype()));
    constexpr int64_t kChunk = int64_t{1} << 30;
    for (int64_t begin = 0; begin < t.numel(); begin += kChunk) {
      const int count = static_cast<int>(std::min(kChunk, t.numel() - begin));
      check_mpi(
          MPI_Allreduce(MPI_IN_PLACE, data + begin * item, count, type, MPI_SUM, MPI_COMM_WORLD),
          "MPI_Allreduce");
    }
  }
};

}  // namespace

std::unique_ptr<Communicator> start_mpi_world(int* argc, char*** argv) {
  int provided = 0;
  check_mpi(MPI_Init_thread(argc, argv, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
  g_initialised = true;
  return std::make_unique<MpiCommunicator>();
}

void stop_mpi_world() {
  if (g_initialised) MPI_Finalize();
  g_initialised = false;
}

std::string distributed_backends() {
#ifdef ENGINE_HAVE_NCCL
  return "MPI + NCCL";
#else
  return "MPI";
#endif
}

#else  // no MPI in this build

std::unique_ptr<Communicator> start_mpi_world(int*, char***) {
  ENGINE_CHECK(announced_size() <= 1, "this cftrain was built without MPI, but mpirun started ",
               announced_size(), " copies of it: each would train alone into the same run ",
               "directory (install libopenmpi-dev and rebuild to run several ranks)");
  return nullptr;
}

void stop_mpi_world() {}

std::string distributed_backends() { return ""; }

#endif

}  // namespace engine
