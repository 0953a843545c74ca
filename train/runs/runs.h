// `cftrain train` and `cftrain eval` from a configuration (train/runs/config.h): builds the
// zero-shot teacher and the student, the training data (an ImageFolder or file list with a
// stratified validation hold-out, or the demo's generated images), runs the trainer in the run
// directory, and evaluates checkpoints on the configured datasets.
#pragma once

#include <ostream>
#include <string>

#include "models/classifier.h"
#include "train/eval/eval_sets.h"
#include "train/loop/run_directory.h"
#include "train/report/run_report.h"
#include "train/runs/config.h"

namespace train {

// For `cftrain report`: the method's pictures of the run in options.run_dir (its final
// checkpoint, `last`, on its first validation images; runs on the demo's data), or a note
// saying why there are none.
void add_method_pictures(RunReportOptions& options);

// The head that model.classnames and model.templates give, made on `device` by rank 0 and kept
// in `dir` (prompt_head.h), then read by every rank; "" when the configuration names none.
std::string configured_prompt_head(const Config& config, const std::string& dir,
                                   engine::Device device, std::ostream& log);

// The zero-shot model of model.weights with `prompt_head` (configured_prompt_head) or else
// model.head; "demo:pretrained": the demo's model.
models::Classifier load_zero_shot(const Config& config, const std::string& prompt_head,
                                  std::ostream& log);

// The device of run.device, with run.precision set for it (tf32 and bf16 need CUDA); logged.
engine::Device configure_device(const Config& config, std::ostream& log);

// Trains as configured in run.dir, holding its lock from before anything there is read or
// written: a fresh run refuses an earlier run's files, `Resume` continues from `last`
// (with the same configuration), `Overwrite` removes the earlier run first.
void train_from_config(const Config& config, RunStart start, std::ostream& log);

// The evaluation settings of `config` (eval.batch, data.workers, data.on_error) for a model of
// `image_size` px inputs; progress and warnings go to `log` (none when null).
EvalOptions eval_options(const Config& config, int image_size, std::ostream* log);

// Evaluates `checkpoint` (default eval.checkpoint, else run.dir/best.safetensors; the zero-shot
// model when the path is model.weights, with model.head or the head of model.classnames, kept
// beside the results) on eval.datasets; prints the table and writes eval.json and eval.csv (and
// eval.html) next to the checkpoint or into `out_dir`.
void eval_from_config(const Config& config, const std::string& checkpoint,
                      const std::string& out_dir, std::ostream& log);

}  // namespace train
