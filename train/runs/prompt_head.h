// A zero-shot head named in a configuration by its class names and templates (model.classnames,
// model.templates) instead of a head file: made with the checkpoint's text tower at the start of
// a run (models::make_zero_shot_head) and kept in the run directory as zero_shot_head.npy, with
// zero_shot_head.json recording what it was made from (the checkpoint's path, size and
// modification time, and the lists), so that a resumed run or a later eval reuses it and a
// changed input makes it anew.
#pragma once

#include <ostream>
#include <string>

#include "engine/core/device.h"
#include "train/runs/config.h"

namespace train {

// The path of the head the configuration's prompts give, made on `device` (with progress on
// `log`) unless `dir` already holds it for the same inputs; "" when model.classnames is empty.
// model.classnames / model.templates: "imagenet" (or, for templates, "") for the shipped
// ImageNet lists, else a file of one class name / template a line.
std::string prompt_head(const Config& config, const std::string& dir, engine::Device device,
                        std::ostream& log);

}  // namespace train
