// NCCL's all-reduce for the communicator's CUDA tensors (see nccl_group.h).
#include "engine/dist/nccl_group.h"

#include <mpi.h>
#include <nccl.h>

#include "engine/cuda/cuda_check.h"

namespace engine {

namespace {

void check_nccl(ncclResult_t result, const char* call) {
  ENGINE_CHECK(result == ncclSuccess, call, " failed: ", ncclGetErrorString(result));
}

}  // namespace

NcclGroup::NcclGroup(int rank, int size, int device) : device_(device) {
  ncclUniqueId id;
  if (rank == 0) check_nccl(ncclGetUniqueId(&id), "ncclGetUniqueId");
  ENGINE_CHECK(MPI_Bcast(&id, sizeof(id), MPI_BYTE, 0, MPI_COMM_WORLD) == MPI_SUCCESS,
               "NCCL: broadcasting the group's id over MPI failed");
  CUDA_CHECK(cudaSetDevice(device));
  ncclComm_t comm;
  check_nccl(ncclCommInitRank(&comm, size, id, rank), "ncclCommInitRank");
  comm_ = comm;
}

NcclGroup::~NcclGroup() {
  if (comm_) ncclCommDestroy(static_cast<ncclComm_t>(comm_));
}

void NcclGroup::all_reduce_sum(const Tensor& t) {
  ENGINE_CHECK(t.device() == Device::cuda(device_), "NCCL all_reduce_sum: a tensor on ",
               t.device().str(), ", the group's GPU is cuda:", device_);
  ENGINE_CHECK(t.dtype() == DType::F32 || t.dtype() == DType::F64, "NCCL all_reduce_sum: dtype ",
               dtype_name(t.dtype()), " is not supported");
  CUDA_CHECK(cudaSetDevice(device_));
  void* data = t.raw_data();
  check_nccl(ncclAllReduce(data, data, static_cast<size_t>(t.numel()),
                           t.dtype() == DType::F32 ? ncclFloat32 : ncclFloat64, ncclSum,
                           static_cast<ncclComm_t>(comm_), /*default stream*/ nullptr),
             "ncclAllReduce");
}

}  // namespace engine
