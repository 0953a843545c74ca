// WiSE-FT: the weight-space ensemble theta = (1 - alpha) * theta_zeroshot + alpha *
// theta_finetuned, head included (train/README.md, "Evaluation").
#pragma once

#include "models/classifier.h"

namespace train {

// A new classifier; the two must have the same architecture (the error names what differs).
models::Classifier wise_interpolate(const models::Classifier& zeroshot,
                                    const models::Classifier& finetuned, double alpha);

}  // namespace train
