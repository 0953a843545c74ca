// TOML configuration with a schema, variables and overrides (toml++).
#include "train/runs/config.h"

#include <toml++/toml.h>

#include <cstdlib>
#include <regex>
#include <sstream>

#include "data/decode.h"
#include "data/loader.h"
#include "engine/core/error.h"
#include "engine/io/user_files.h"

namespace train {

using engine::fail;

const std::vector<ConfigKey>& config_schema() {
  using T = ConfigType;
  static const std::vector<ConfigKey> keys = {
      {"model.weights", T::String, "",
       "CLIP checkpoint (safetensors), or demo:pretrained for the demo's model"},
      {"model.head", T::String, "\"\"",
       "zero-shot head .npy (classes, dim), e.g. from cftrain zeroshot-head"},
      {"model.classnames", T::String, "\"\"",
       "instead of model.head: class names (a file, one a line, or \"imagenet\" for the shipped "
       "1000), whose head is made at start and kept in the run directory"},
      {"model.templates", T::String, "\"\"",
       "prompt templates for model.classnames (a file, one a line with {}; \"\" or "
       "\"imagenet\": the shipped 80)"},
      {"data.train", T::String, "",
       "training ImageFolder root, a file list (.csv), or demo:finetune"},
      {"data.class_names", T::String, "\"\"", "optional class-name file for the training set"},
      {"data.holdout",
       T::Integer,
       "10240",
       "training images held out for validation (stratified, seeded)",
       {0, 1e9}},
      {"data.limit",
       T::Integer,
       "0",
       "use a seeded, class-stratified subset of N training images (0: all)",
       {0, 1e12}},
      {"data.image_size", T::Integer, "224", "input size of the CLIP transform", {8, 4096}},
      {"data.workers",
       T::Integer,
       "2",
       "decoding threads of the loader",
       {1, data::kMaxLoaderWorkers}},
      {"data.on_error", T::String, "\"fail\"",
       "unreadable training images (and the held-out validation ones): fail or skip"},
      {"data.max_pixels",
       T::Integer,
       std::to_string(data::kDefaultMaxPixels),
       "images with more pixels are refused as bad input (Pillow's limit)",
       {1, 4294967296.0}},
      {"train.mode", T::String, "\"ft_fd_mask\"", "ft, lp, ft_fd, ft_fd_mask, ft_kd or ft_kd_mask"},
      {"train.strategy", T::String, "\"ObjMaskSingleFill(0.3)\"",
       "masking strategy of the *_mask modes"},
      {"train.cam", T::String, "\"mmcam\"", "mmcam or gradcam"},
      {"train.w_task", T::Number, "1.0", "weight of the cross-entropy loss", {0, 1e6}},
      {"train.w_distill", T::Number, "30.0", "weight of the distillation loss", {0, 1e6}},
      {"train.kd_temperature", T::Number, "10.0", "temperature of the ft_kd modes", {0, 1e4, true}},
      {"train.lr", T::Number, "3e-5", "peak learning rate (one-cycle)", {0, 10, true}},
      {"train.weight_decay",
       T::Number,
       "0.1",
       "AdamW weight decay (the lp mode always uses 0)",
       {0, 1e3}},
      {"train.pct_start", T::Number, "0.02", "one-cycle warm-up fraction", {0, 1, true, true}},
      {"train.epochs", T::Integer, "10", "epochs", {1, 1e6}},
      {"train.batch", T::Integer, "128", "micro-batch size", {1, 1048576}},
      {"train.accum",
       T::Integer,
       "4",
       "micro-batches per optimizer step (global batch = batch x accum)",
       {1, 1048576}},
      {"train.clip", T::Number, "1.0", "global gradient-norm limit", {0, 1e12, true}},
      {"train.seed",
       T::Integer,
       "0",
       "seed of the data order, masks, fills and the validation split",
       {0, 9.2e18}},
      {"train.log_every", T::Integer, "10", "optimizer steps between progress lines", {0, 1e12}},
      {"train.checkpoint_every",
       T::Integer,
       "500",
       "optimizer steps between `last` checkpoints",
       {0, 1e12}},
      {"run.device", T::String, "\"auto\"",
       "auto (the first GPU when there is one), cpu, cuda or cuda:N"},
      {"run.precision", T::String, "\"fp32\"",
       "matrix products: fp32, tf32 or bf16 (bf16 inputs, fp32 accumulation; tf32 and bf16 on "
       "CUDA)"},
      {"run.dir", T::String, "\"runs/${train.mode}\"",
       "where checkpoints, metrics and the resolved config go"},
      {"eval.checkpoint", T::String, "\"\"",
       "checkpoint to evaluate (default: run.dir/best.safetensors)"},
      {"eval.batch", T::Integer, "256", "evaluation batch size", {1, 1048576}},
      {"eval.on_error", T::String, "\"fail\"",
       "unreadable images of eval sets and wise sweeps: fail (an accuracy over fewer images is "
       "never silent) or skip"},
      {"eval.datasets", T::TableList, "",
       "[[eval.datasets]] tables: name, kind, root (and wnids, class_names)"},
  };
  return keys;
}

bool ConfigRange::contains(double value) const {
  return (low_open ? value > low : value >= low) && (high_open ? value < high : value <= high);
}

std::string ConfigRange::str() const {
  auto number = [](double v) {
    std::ostringstream out;
    out << v;
    return out.str();
  };
  return (low_open ? "(" : "[") + number(low) + ", " + number(high) + (high_open ? ")" : "]");
}

namespace {

const ConfigKey* find_key(const std::string& key) {
  for (const ConfigKey& k : config_schema())
    if (k.key == key) return &k;
  return nullptr;
}

const char* type_name(ConfigType type) {
  switch (type) {
    case ConfigType::String:
      return "a string";
    case ConfigType::Integer:
      return "an integer";
    case ConfigType::Number:
      return "a number";
    case ConfigType::Boolean:
      return "true or false";
    case ConfigType::TableList:
      return "an array of tables";
  }
  return "?";
}

bool has_type(const toml::node& node, ConfigType type) {
  switch (type) {
    case ConfigType::String:
      return node.is_string();
    case ConfigType::Integer:
      return node.is_integer();
    case ConfigType::Number:
      return node.is_floating_point() || node.is_integer();
    case ConfigType::Boolean:
      return node.is_boolean();
    case ConfigType::TableList:
      return node.is_array_of_tables();
  }
  return false;
}

// Refuses an integer or number outside its key's range (NaN included), naming `where` it came from.
void check_range(const ConfigKey& spec, const toml::node& value, const std::string& where) {
  if (spec.type != ConfigType::Integer && spec.type != ConfigType::Number) return;
  if (value.is_integer()) {
    const int64_t v = *value.value<int64_t>();
    ENGINE_CHECK(spec.range.contains(static_cast<double>(v)), where, ": ", spec.key,
                 " must lie in ", spec.range.str(), ", got ", v);
  } else {
    const double v = *value.value<double>();
    ENGINE_CHECK(spec.range.contains(v), where, ": ", spec.key, " must lie in ", spec.range.str(),
                 ", got ", v);
  }
}

// Sets `key` (a.b) in `table` to a copy of `value`, creating the section; numbers given as
// integers become floating point where the schema wants a number.
void assign(toml::table& table, const ConfigKey& spec, const toml::node& value) {
  const size_t dot = spec.key.find('.');
  const std::string section = spec.key.substr(0, dot), name = spec.key.substr(dot + 1);
  if (!table.contains(section)) table.insert(section, toml::table{});
  toml::table& inner = *table[section].as_table();
  if (spec.type == ConfigType::Number && value.is_integer())
    inner.insert_or_assign(name, static_cast<double>(*value.value<int64_t>()));
  else
    inner.insert_or_assign(name, value);
}

toml::table parse_toml(const std::string& text, const std::string& source) {
  try {
    return toml::parse(text, source);
  } catch (const toml::parse_error& e) {
    const auto& where = e.source().begin;
    fail(source, ":", where.line, ":", where.column, ": ", e.description());
  }
}

}  // namespace

struct Config::Data {
  toml::table table;
};

Config::Config(std::unique_ptr<Data> data) : data_(std::move(data)) {}
Config::~Config() = default;
Config::Config(Config&&) noexcept = default;
Config& Config::operator=(Config&&) noexcept = default;

Config Config::load(const std::string& path, const std::vector<std::string>& overrides,
                    const std::map<std::string, std::string>& cli_vars) {
  auto data = std::make_unique<Data>();
  toml::table& resolved = data->table;
  for (const ConfigKey& k : config_schema())
    if (!k.default_value.empty())
      assign(resolved, k, *parse_toml("v = " + k.default_value, "defaults")["v"].node());

  std::map<std::string, std::string> vars;
  if (!path.empty()) {
    const toml::table file = parse_toml(engine::read_input_file(path), path);
    for (auto&& [section, content] : file) {
      const std::string name(section.str());
      if (name == "vars") {
        ENGINE_CHECK(content.is_table(), path, ": [vars] must be a table");
        for (auto&& [var, value] : *content.as_table()) {
          ENGINE_CHECK(value.is_string(), path, ": vars.", var.str(), " must be a string");
          vars[std::string(var.str())] = *value.value<std::string>();
        }
        continue;
      }
      ENGINE_CHECK(content.is_table(), path, ": unknown key '", name,
                   "' (settings live in sections: [model], ",
                   "[data], [train], [run], [eval], [vars])");
      for (auto&& [key_name, value] : *content.as_table()) {
        const std::string key = name + "." + std::string(key_name.str());
        const ConfigKey* spec = find_key(key);
        ENGINE_CHECK(spec != nullptr, path, ": unknown key '", key, "'");
        ENGINE_CHECK(has_type(value, spec->type), path, ": ", key, " must be ",
                     type_name(spec->type));
        check_range(*spec, value, path);
        assign(resolved, *spec, value);
      }
    }
  }

  for (const std::string& text : overrides) {
    const size_t eq = text.find('=');
    ENGINE_CHECK(eq != std::string::npos, "--set ", text, ": expected section.key=value");
    const std::string key = text.substr(0, eq), raw = text.substr(eq + 1);
    const ConfigKey* spec = find_key(key);
    ENGINE_CHECK(spec != nullptr, "--set: unknown key '", key, "'");
    ENGINE_CHECK(spec->type != ConfigType::TableList, "--set: ", key,
                 " cannot be set on the command line");
    // Strings may be given bare (--set run.dir=runs/x); everything else is a TOML value.
    const bool bare_string =
        spec->type == ConfigType::String && (raw.empty() || raw.front() != '"');
    toml::table parsed;
    if (bare_string) {
      parsed.insert("v", raw);
    } else {
      try {
        parsed = toml::parse("v = " + raw);
      } catch (const toml::parse_error&) {
        fail("--set ", key, ": '", raw, "' is not ", type_name(spec->type));
      }
    }
    ENGINE_CHECK(has_type(*parsed["v"].node(), spec->type), "--set ", key, ": '", raw, "' is not ",
                 type_name(spec->type));
    check_range(*spec, *parsed["v"].node(), "--set");
    assign(resolved, *spec, *parsed["v"].node());
  }

  for (const auto& [name, value] : cli_vars) vars[name] = value;
  // ${NAME}: a variable, another key of the configuration (section.key), or the environment.
  static const std::regex reference(R"(\$\{([A-Za-z_][A-Za-z0-9_.]*)\})");
  auto expand = [&](std::string text, const std::string& where) {
    for (int depth = 0; depth < 10; ++depth) {
      std::smatch m;
      if (!std::regex_search(text, m, reference)) return text;
      const std::string name = m[1];
      std::string value;
      if (auto it = vars.find(name); it != vars.end()) {
        value = it->second;
      } else if (name.find('.') != std::string::npos && resolved.at_path(name).is_string()) {
        value = *resolved.at_path(name).value<std::string>();
      } else if (const char* env = std::getenv(name.c_str())) {
        value = env;
      } else {
        fail("config: ${", name, "} in ", where, " is not defined (set it in [vars], with --var ",
             name, "=..., or in the environment)");
      }
      text = m.prefix().str() + value + m.suffix().str();
    }
    fail("config: ", where, " has variables nested too deeply");
  };
  for (auto&& [section, content] : resolved)
    for (auto&& [key, value] : *content.as_table()) {
      const std::string where = std::string(section.str()) + "." + std::string(key.str());
      if (value.is_string()) {
        value.as_string()->get() = expand(value.as_string()->get(), where);
      } else if (value.is_array_of_tables()) {
        for (auto& entry : *value.as_array())
          for (auto&& [field, field_value] : *entry.as_table())
            if (field_value.is_string())
              field_value.as_string()->get() =
                  expand(field_value.as_string()->get(), where + "." + std::string(field.str()));
      }
    }
  return Config(std::move(data));
}

namespace {
const toml::node& lookup(const toml::table& table, const std::string& key, ConfigType type) {
  const ConfigKey* spec = find_key(key);
  ENGINE_CHECK(spec != nullptr && spec->type == type, "config: no key '", key, "' of that type");
  const toml::node* node = table.at_path(key).node();
  ENGINE_CHECK(node != nullptr, "config: ", key, " is not set (", spec->help, ")");
  return *node;
}
}  // namespace

bool Config::has(const std::string& key) const {
  return data_->table.at_path(key).node() != nullptr;
}

std::string Config::string(const std::string& key) const {
  return *lookup(data_->table, key, ConfigType::String).value<std::string>();
}
int64_t Config::integer(const std::string& key) const {
  return *lookup(data_->table, key, ConfigType::Integer).value<int64_t>();
}
double Config::number(const std::string& key) const {
  return *lookup(data_->table, key, ConfigType::Number).value<double>();
}
bool Config::boolean(const std::string& key) const {
  return *lookup(data_->table, key, ConfigType::Boolean).value<bool>();
}

std::vector<std::map<std::string, std::string>> Config::tables(const std::string& key) const {
  std::vector<std::map<std::string, std::string>> out;
  const toml::node* node = data_->table.at_path(key).node();
  if (!node) return out;
  lookup(data_->table, key, ConfigType::TableList);
  for (const auto& entry : *node->as_array()) {
    std::map<std::string, std::string> fields;
    for (auto&& [field, value] : *entry.as_table()) {
      ENGINE_CHECK(value.is_string(), "config: ", key, ".", field.str(), " must be a string");
      fields[std::string(field.str())] = *value.value<std::string>();
    }
    out.push_back(std::move(fields));
  }
  return out;
}

std::string Config::to_toml() const {
  std::ostringstream out;
  out << data_->table << "\n";
  return out.str();
}

std::string Config::hash() const {
  // Settings that change how a run reports or where it writes, but not its results.
  toml::table results = data_->table;
  for (const char* key : {"train.log_every", "train.checkpoint_every", "data.workers", "run.dir"}) {
    const std::string k(key);
    if (auto* section = results[k.substr(0, k.find('.'))].as_table())
      section->erase(k.substr(k.find('.') + 1));
  }
  results.erase("eval");
  std::ostringstream text;
  text << results;
  uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (unsigned char c : text.str()) h = (h ^ c) * 1099511628211ull;
  std::ostringstream out;
  out << std::hex << h;
  return out.str();
}

}  // namespace train
