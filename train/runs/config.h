// Configuration of `cftrain train` and `cftrain eval`: TOML files (train/configs/), every key
// known with its type and default (the paper's reference settings, train/README.md "Optimisation"),
// variables written ${NAME} (from the file's [vars] table, --var NAME=VALUE or the environment),
// command-line overrides `--set section.key=value`. Unknown keys, wrong types, values outside a
// key's range and undefined variables are errors naming the key. The resolved configuration is
// written to the run directory.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace train {

enum class ConfigType { String, Integer, Number, Boolean, TableList };

// The values an integer or number setting may take: [low, high], with either end open on
// request. NaN lies in no range.
struct ConfigRange {
  double low = -1e300, high = 1e300;
  bool low_open = false, high_open = false;
  bool contains(double value) const;
  std::string str() const;  // "[1, 256]", "(0, 1)"
};

struct ConfigKey {
  std::string key;  // "section.name"
  ConfigType type;
  std::string default_value;  // as written in TOML; empty = none
  std::string help;
  ConfigRange range = {};  // integers and numbers
};

// Every key a configuration may hold.
const std::vector<ConfigKey>& config_schema();

class Config {
 public:
  // Defaults, then `path` (unless empty), then the overrides; variables expanded last.
  static Config load(const std::string& path, const std::vector<std::string>& overrides = {},
                     const std::map<std::string, std::string>& vars = {});
  ~Config();
  Config(Config&&) noexcept;
  Config& operator=(Config&&) noexcept;

  bool has(const std::string& key) const;  // set in a file, an override or by default
  std::string string(const std::string& key) const;
  int64_t integer(const std::string& key) const;
  double number(const std::string& key) const;
  bool boolean(const std::string& key) const;
  // An array of tables (e.g. eval.datasets), each as string -> string.
  std::vector<std::map<std::string, std::string>> tables(const std::string& key) const;

  std::string to_toml() const;  // the resolved configuration
  // Of the settings that affect a run's results (not logging, checkpoint frequency, workers,
  // run.dir or eval.*), hex; a resumed run must have the same.
  std::string hash() const;

 private:
  struct Data;
  explicit Config(std::unique_ptr<Data> data);
  std::unique_ptr<Data> data_;
};

}  // namespace train
