// Data parallelism in the training loop (mpirun -np N cftrain train): every rank trains on its
// share of each global batch (computing its CAMs, masks and fills on that share, as the paper's
// code does on each GPU), then the ranks average their gradients before clipping and the
// optimizer step, so all of them hold the same weights at every step. The running sums of the
// progress line and of the checkpoints are summed over the ranks too, so they are the same
// everywhere.
#pragma once

#include <string>
#include <vector>

#include "engine/dist/communicator.h"
#include "train/loop/checkpoints.h"

namespace train {

// Averages the parameters' gradients over the ranks, in place. A parameter with a gradient on
// some rank but not on this one takes zeros here (every rank reduces the same tensors); one
// without a gradient on every rank keeps none, as in one process.
void average_gradients(const std::vector<Tensor>& params, engine::Communicator& comm);

// The step's running sums (each rank's over its share) as the whole global batch's: losses
// averaged over the ranks (each rank's is a mean over its equal share), counts summed.
EpochSums global_sums(const EpochSums& local, engine::Communicator& comm);

// Refuses to go on when the ranks do not hold the same weights (a fingerprint of every
// parameter, exact in double, compared with rank 0's), naming the rank that differs and `when`
// ("at the start: every rank must load the same checkpoint", "at a checkpoint").
void check_same_weights(const std::vector<Tensor>& params, engine::Communicator& comm,
                        const std::string& when);

}  // namespace train
