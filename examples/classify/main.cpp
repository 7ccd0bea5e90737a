// classify: ImageNet classification with an SKNet checkpoint, e.g. timm's skresnext50_32x4d.
//
//   classify --weights W.safetensors [--labels FILE] [--arch sknet26|sknet50|sknet101]
//            [--threads N] [--top K] IMAGE...
//
// 1. Checks that every image opens and has a known header (PNG, JPEG, ... via stb_image), so a
//    missing or non-image file stops the run before the weights are loaded.
// 2. Checks the checkpoint against the architecture (names and shapes, timm's parameter names;
//    the class count comes from fc.weight) and names the --arch that fits when another one does,
//    then builds the fast network with sknet::prepare_from_state_dict (strict).
// 3. Per image, in order: decodes it to RGB, applies timm's eval transform (preprocess.hpp:
//    shorter side to 256 with PIL's bicubic, center crop 224, ImageNet normalisation), runs the
//    network and prints "PATH (WxH)" and the top K classes as "  rank. probability  name (index)"
//    with softmax probabilities. An image whose data turns out damaged stops the run there.
// Errors are one line on stderr: exit 2 for usage, 1 for everything else (files named).
#include <sknet/io/safetensors.hpp>
#include <sknet/models/prepared_sknet.hpp>
#include <sknet/sknet.hpp>

#define STB_IMAGE_IMPLEMENTATION
#include "preprocess.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <numeric>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <vector>

#ifndef CLASSIFY_SOURCE_DIR
#define CLASSIFY_SOURCE_DIR "."
#endif

namespace {

namespace fs = std::filesystem;

constexpr int kPaths = 2;  // timm's SKNets have M = 2 paths (3x3 and dilated 3x3)

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

const char* const kDefaultLabels = CLASSIFY_SOURCE_DIR "/examples/classify/imagenet_classes.txt";

const char* const kUsage =
    "usage: classify --weights W.safetensors [--labels FILE] [--arch sknet26|sknet50|sknet101]\n"
    "                [--threads N] [--top K] IMAGE...\n"
    "  --weights  SKNet checkpoint with timm's parameter names (e.g. skresnext50_32x4d), M = 2\n"
    "  --labels   class names, one per line in class-index order (default for 1000 classes:\n"
    "             " CLASSIFY_SOURCE_DIR "/examples/classify/imagenet_classes.txt)\n"
    "  --arch     depth of the network: sknet26, sknet50 (default, = timm's skresnext50_32x4d), sknet101\n"
    "  --threads  inference threads (default: all hardware threads)\n"
    "  --top      classes printed per image (default 5)\n"
    "IMAGE: PNG, JPEG, BMP, GIF, TGA, PSD, HDR or PNM; preprocessed like timm's eval transform\n"
    "(shorter side 256 with PIL bicubic, center crop 224, ImageNet mean/std).\n";

struct Options {
  std::string weights, labels, arch = "sknet50";
  int threads = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  int top = 5;
  std::vector<std::string> images;
};

int parse_int(const std::string& key, const std::string& v, int min_value) {
  std::size_t used = 0;
  long x = 0;
  try {
    x = std::stol(v, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (v.empty() || used != v.size()) throw UsageError("option '" + key + "': expected an integer, got '" + v + "'");
  if (x < min_value || x > 1000000)
    throw UsageError("option '" + key + "': expected an integer in " + std::to_string(min_value) + "..1000000, got " +
                     v);
  return static_cast<int>(x);
}

Options parse_args(int argc, char** argv) {
  Options o;
  bool options_done = false;
  for (int i = 1; i < argc; ++i) {
    const std::string key = argv[i];
    if (options_done || key.empty() || key[0] != '-' || key == "-") {
      o.images.push_back(key);
      continue;
    }
    if (key == "--") {
      options_done = true;
      continue;
    }
    if (key == "-h" || key == "--help") {
      std::cout << kUsage;
      std::exit(0);
    }
    if (key != "--weights" && key != "--labels" && key != "--arch" && key != "--threads" && key != "--top")
      throw UsageError("unknown option '" + key + "'");
    if (i + 1 >= argc) throw UsageError("option '" + key + "' needs a value");
    const std::string v = argv[++i];
    if (key == "--weights") o.weights = v;
    else if (key == "--labels") o.labels = v;
    else if (key == "--arch") o.arch = v;
    else if (key == "--threads") o.threads = parse_int(key, v, 1);
    else o.top = parse_int(key, v, 1);
  }
  if (o.weights.empty()) throw UsageError("missing required option '--weights'");
  if (o.arch != "sknet26" && o.arch != "sknet50" && o.arch != "sknet101")
    throw UsageError("option '--arch': expected sknet26, sknet50 or sknet101, got '" + o.arch + "'");
  if (o.images.empty()) throw UsageError("no image given");
  return o;
}

// ---- the checkpoint -----------------------------------------------------------------------

sknet::SKNetConfig arch_config(const std::string& arch, sknet::Index classes) {
  sknet::SKNetConfig c;  // SKNet-50 widths: SK[2, 32, 16], L = 32, ResNeXt 32x4d
  c.layers = sknet::sknet_depths(arch);
  c.paths = kPaths;
  c.num_classes = classes;
  return c;
}

/// Every parameter name and shape of the network of `config`, read off its plan one layer at a time
/// (so the whole network is never held).
std::map<std::string, std::vector<sknet::Index>> expected_parameters(const sknet::SKNetConfig& config) {
  sknet::SKNet<float, kPaths>::validate_config(config);
  return sknet::expected_parameters(sknet::sknet_plan(config, kPaths));
}

struct Mismatch {
  std::vector<std::string> missing, unexpected, reshaped;
  bool ok() const { return missing.empty() && unexpected.empty() && reshaped.empty(); }
};

Mismatch compare(const sknet::StateDict<float>& dict, const std::map<std::string, std::vector<sknet::Index>>& want) {
  Mismatch m;
  for (const auto& [name, shape] : want) {
    const auto it = dict.find(name);
    if (it == dict.end()) m.missing.push_back(name);
    else if (it->second.shape != shape)
      m.reshaped.push_back(name + " " + sknet::shape_string(it->second.shape) + " (expected " +
                           sknet::shape_string(shape) + ")");
  }
  for (const auto& entry : dict)
    if (!want.count(entry.first) && !sknet::ignored_state_key(entry.first)) m.unexpected.push_back(entry.first);
  return m;
}

std::string first_few(const std::vector<std::string>& names, std::size_t count = 3) {
  std::string s;
  for (std::size_t i = 0; i < names.size() && i < count; ++i) s += (i ? ", " : "") + names[i];
  if (names.size() > count) s += ", ...";
  return s;
}

/// The class count of the checkpoint (rows of fc.weight), then a names-and-shapes check against
/// `arch`; on a mismatch throws FormatError naming the file, what differs and the --arch that fits.
sknet::SKNetConfig check_checkpoint(const sknet::StateDict<float>& dict, const std::string& path,
                                    const std::string& arch) {
  const auto fc = dict.find("fc.weight");
  if (fc == dict.end() || fc->second.shape.size() != 2 || fc->second.shape[0] < 1) {
    std::vector<std::string> keys;
    for (const auto& entry : dict) keys.push_back(entry.first);
    throw sknet::FormatError(path + ": not an SKNet checkpoint: expected a 2-D 'fc.weight' [classes, features]" +
                             (keys.empty() ? std::string(" (the file holds no tensors)")
                                           : " (keys: " + first_few(keys) + ")"));
  }
  const sknet::Index classes = fc->second.shape[0];
  const sknet::SKNetConfig config = arch_config(arch, classes);
  const Mismatch m = compare(dict, expected_parameters(config));
  if (m.ok()) return config;
  std::string message = path + ": does not match --arch " + arch + " (" + std::to_string(classes) +
                        " classes, M = 2, SKNet-50 widths):";
  const auto part = [&](const std::vector<std::string>& v, const char* what) {
    if (!v.empty()) message += " " + std::to_string(v.size()) + " " + what + " (" + first_few(v) + ");";
  };
  part(m.missing, "missing");
  part(m.unexpected, "unexpected");
  part(m.reshaped, "with another shape");
  std::string fits;
  for (const std::string other : {"sknet26", "sknet50", "sknet101"})
    if (other != arch && compare(dict, expected_parameters(arch_config(other, classes))).ok()) fits = other;
  message += fits.empty() ? " it is not a checkpoint of sknet26, sknet50 or sknet101 either"
                          : " it is a " + fits + " checkpoint: use --arch " + fits;
  throw sknet::FormatError(message);
}

std::vector<std::string> read_labels(const std::string& path, sknet::Index classes) {
  std::ifstream in(path);
  if (!in) throw sknet::FormatError(path + ": cannot open the labels file");
  std::vector<std::string> names;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    names.push_back(line);
  }
  while (!names.empty() && names.back().empty()) names.pop_back();
  if (static_cast<sknet::Index>(names.size()) != classes)
    throw sknet::FormatError(path + ": expected " + std::to_string(classes) +
                             " class names (one per line, the checkpoint has " + std::to_string(classes) +
                             " classes), got " + std::to_string(names.size()));
  return names;
}

std::vector<std::string> class_names(const Options& o, sknet::Index classes) {
  if (!o.labels.empty()) return read_labels(o.labels, classes);
  if (classes == 1000 && fs::exists(kDefaultLabels)) return read_labels(kDefaultLabels, classes);
  std::vector<std::string> names;
  for (sknet::Index i = 0; i < classes; ++i) names.push_back("class " + std::to_string(i));
  return names;
}

// ---- classification -----------------------------------------------------------------------

/// Softmax probabilities of one row of logits, in double.
std::vector<double> softmax(const float* logits, sknet::Index n) {
  const float top = *std::max_element(logits, logits + n);
  std::vector<double> p(static_cast<std::size_t>(n));
  double sum = 0;
  for (sknet::Index i = 0; i < n; ++i) sum += p[i] = std::exp(double(logits[i]) - double(top));
  for (double& v : p) v /= sum;
  return p;
}

int run(const Options& o) {
  // Every image must at least open and have a known header before the weights are loaded.
  for (const std::string& path : o.images) classify::probe_image(path);

  sknet::StateDict<float> dict = sknet::io::load_safetensors<float>(o.weights);
  const sknet::SKNetConfig config = check_checkpoint(dict, o.weights, o.arch);
  const std::vector<std::string> names = class_names(o, config.num_classes);
  std::optional<sknet::PreparedSKNet<kPaths>> net;
  try {
    net.emplace(sknet::prepare_from_state_dict<kPaths>(config, std::move(dict), sknet::PrepareOptions{o.threads}));
  } catch (const sknet::StateDictError& e) {  // check_checkpoint should have caught this
    throw sknet::FormatError(o.weights + ": " + e.what());
  }

  const classify::EvalTransform transform;
  const sknet::Index classes = config.num_classes;
  const int top = static_cast<int>(std::min<sknet::Index>(o.top, classes));
  for (const std::string& path : o.images) {  // one at a time: memory does not grow with the count
    const classify::Image rgb = classify::decode_image(path);
    const std::vector<float> input = classify::eval_transform(rgb, transform);
    const sknet::ConstTensorMap4<float> x(input.data(), 1, transform.crop, transform.crop, 3);
    const sknet::Tensor2<float> logits = net->forward(x);
    const std::vector<double> p = softmax(logits.data(), classes);
    std::vector<int> order(static_cast<std::size_t>(classes));
    std::iota(order.begin(), order.end(), 0);
    std::partial_sort(order.begin(), order.begin() + top, order.end(),
                      [&](int a, int b) { return p[a] > p[b] || (p[a] == p[b] && a < b); });
    std::cout << path << " (" << rgb.width << "x" << rgb.height << ")\n";
    for (int r = 0; r < top; ++r) {
      char line[64];
      std::snprintf(line, sizeof line, "%3d. %.4f  ", r + 1, p[order[r]]);
      std::cout << line << names[order[r]] << " (" << order[r] << ")\n";
    }
    std::cout << std::flush;
  }
  return 0;
}

std::string one_line(std::string s) {
  for (std::size_t i = 0; (i = s.find('\n', i)) != std::string::npos;) s.replace(i, 1, "; ");
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    return run(parse_args(argc, argv));
  } catch (const UsageError& e) {
    std::cerr << "classify: " << e.what() << " (see classify --help)\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "classify: error: " << one_line(e.what()) << "\n";
    return 1;
  }
}
