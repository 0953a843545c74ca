// The MPI side of the communicator (see communicator.h): how a process knows mpirun started it,
// and MPI's communicator, which hands CUDA tensors to NCCL when the build has it.
#pragma once

#include <memory>

#include "engine/dist/communicator.h"

namespace engine {

// Whether an MPI launcher started this process (its environment names a rank and a job size).
bool launched_by_mpi();

// MPI_Init, then the MPI communicator over MPI_COMM_WORLD. In a build without MPI it refuses a
// job of several ranks (each would train alone into the same run directory) and returns nullptr
// for a job of one.
std::unique_ptr<Communicator> start_mpi_world(int* argc, char*** argv);

// MPI_Finalize, when start_mpi_world initialised MPI.
void stop_mpi_world();

}  // namespace engine
