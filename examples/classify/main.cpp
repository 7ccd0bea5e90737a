// classify: ImageNet classification with a timm checkpoint of any network sknet knows, e.g.
// skresnext50_32x4d, skresnet18, resnext50_32x4d or seresnext50_32x4d.
//
//   classify --weights W.safetensors [--labels FILE] [--arch NAME] [--crop-pct P]
//            [--threads N] [--top K] [--precision f32|bf16|int8 [--scales R.json]] IMAGE...
//
// 1. Checks that every image opens and has a known header (PNG, JPEG, ... via stb_image), so a
//    missing or non-image file stops the run before the weights are loaded.
// 2. Reads the checkpoint's names and shapes (its header): without --arch the network is inferred
//    from them (sknet::infer_network; one line on stderr says what it is); with --arch they must fit
//    that network, else the error lists the differences grouped by unit and what the file holds.
//    Then builds the fast network layer by layer from the file with sknet::prepare_from_safetensors
//    (strict), in float32, bf16 or int8 (int8 at the activation ranges of --scales, which
//    `sknet calibrate` writes).
// 3. Per image, in order: decodes it to RGB, applies timm's eval transform for that model
//    (preprocess.hpp: shorter side to floor(224 / crop_pct) with PIL's bicubic, center crop 224,
//    ImageNet normalisation; crop_pct 0.875, or 0.95 for ResNeXt as timm's resnext50_32x4d), runs
//    the network and prints "PATH (WxH)" and the top K classes as "  rank. probability  name
//    (index)" with softmax probabilities. An image whose data turns out damaged stops the run there.
// Errors are one line on stderr: exit 2 for usage, 1 for everything else (files named).
#include <sknet/io/safetensors.hpp>
#include <sknet/models/infer_network.hpp>
#include <sknet/models/prepared_network.hpp>
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
#include <memory>
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

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

const char* const kDefaultLabels = CLASSIFY_SOURCE_DIR "/examples/classify/imagenet_classes.txt";

const char* const kUsage =
    "usage: classify --weights W.safetensors [--labels FILE] [--arch NAME] [--crop-pct P]\n"
    "                [--threads N] [--top K] [--precision f32|bf16|int8 [--scales R.json]] IMAGE...\n"
    "  --weights  checkpoint with timm's parameter names (skresnext50_32x4d, skresnet18, skresnet34,\n"
    "             resnext50_32x4d, seresnext50_32x4d, ...): the network is inferred from it\n"
    "  --labels   class names, one per line in class-index order (default for 1000 classes:\n"
    "             " CLASSIFY_SOURCE_DIR "/examples/classify/imagenet_classes.txt)\n"
    "  --arch     the network the checkpoint must be (sknet50, skresnet18, ...; default: inferred)\n"
    "  --crop-pct timm's crop_pct (default 0.875; 0.95 for ResNeXt, as timm's resnext50_32x4d)\n"
    "  --threads  inference threads (default: all hardware threads)\n"
    "  --top      classes printed per image (default 5)\n"
    "  --precision the arithmetic of the network (default f32; int8 needs --scales, the activation\n"
    "             ranges `sknet calibrate` writes from float32 runs over sample images)\n"
    "IMAGE: PNG, JPEG, BMP, GIF, TGA, PSD, HDR or PNM; preprocessed like timm's eval transform\n"
    "(shorter side floor(224 / crop_pct) with PIL bicubic, center crop 224, ImageNet mean/std).\n";

struct Options {
  std::string weights, labels, arch;  ///< arch empty: inferred from the checkpoint
  double crop_pct = 0;                 ///< 0: the model's (timm's default for it)
  int threads = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  int top = 5;
  sknet::kernels::Precision precision = sknet::kernels::Precision::f32;
  std::string scales;  ///< int8: the calibrated activation ranges (JSON)
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

/// A crop fraction in (0, 1].
double parse_fraction(const std::string& key, const std::string& v) {
  std::size_t used = 0;
  double x = 0;
  try {
    x = std::stod(v, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (v.empty() || used != v.size() || !(x > 0.0 && x <= 1.0))
    throw UsageError("option '" + key + "': expected a number in (0, 1], got '" + v + "'");
  return x;
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
    if (key != "--weights" && key != "--labels" && key != "--arch" && key != "--threads" && key != "--top" &&
        key != "--crop-pct" && key != "--precision" && key != "--scales")
      throw UsageError("unknown option '" + key + "'");
    if (i + 1 >= argc) throw UsageError("option '" + key + "' needs a value");
    const std::string v = argv[++i];
    if (key == "--weights") o.weights = v;
    else if (key == "--labels") o.labels = v;
    else if (key == "--arch") o.arch = v;
    else if (key == "--threads") o.threads = parse_int(key, v, 1);
    else if (key == "--crop-pct") o.crop_pct = parse_fraction(key, v);
    else if (key == "--scales") o.scales = v;
    else if (key == "--precision") {
      if (v != "f32" && v != "bf16" && v != "int8")
        throw UsageError("option '--precision': expected f32, bf16 or int8, got '" + v + "'");
      o.precision = sknet::kernels::parse_precision(v, "classify");
    }
    else o.top = parse_int(key, v, 1);
  }
  if (o.weights.empty()) throw UsageError("missing required option '--weights'");
  if ((o.precision == sknet::kernels::Precision::int8) != !o.scales.empty())
    throw UsageError(o.scales.empty() ? "option '--precision int8' needs '--scales R.json' (sknet calibrate writes it)"
                                      : "option '--scales' is for '--precision int8'");
  if (!o.arch.empty()) {
    try {
      sknet::architecture(o.arch);
    } catch (const sknet::ConfigError&) {
      throw UsageError("option '--arch': expected " + sknet::architecture_names() + ", got '" + o.arch + "'");
    }
  }
  if (o.images.empty()) throw UsageError("no image given");
  return o;
}

// ---- the checkpoint -----------------------------------------------------------------------

/// The plan of the checkpoint at `path` (names and shapes `file`): inferred (and said on stderr), or
/// --arch's, which must fit the file (CheckpointMismatch listing the differences otherwise).
sknet::NetworkPlan checkpoint_plan(const sknet::io::SafetensorsLayout& header, const std::string& path,
                                   const std::string& arch) {
  const sknet::ShapeMap file = sknet::io::tensor_shapes(header);
  if (arch.empty()) {
    const sknet::InferredNetwork inferred = sknet::infer_network(file, path, header.metadata);
    std::cerr << "classify: " << path << " holds " << inferred.description() << "\n";
    return inferred.plan();
  }
  const sknet::Architecture& a = sknet::architecture(arch);
  sknet::SKNetConfig config = a.config;
  config.num_classes = sknet::checkpoint_classes(file, path);
  const sknet::NetworkPlan plan = sknet::family_plan(a.family, config, a.paths);
  sknet::require_checkpoint_fits(file, plan, path, "--arch " + arch, header.metadata);
  return plan;
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

  const sknet::NetworkPlan plan = checkpoint_plan(sknet::io::read_safetensors_header(o.weights), o.weights, o.arch);
  const sknet::Index classes = plan.config.num_classes;
  const std::vector<std::string> names = class_names(o, classes);
  std::optional<sknet::PreparedNetwork> net;
  try {
    std::shared_ptr<const sknet::ActivationRanges> ranges;
    if (!o.scales.empty()) ranges = std::make_shared<const sknet::ActivationRanges>(sknet::ActivationRanges::load(o.scales));
    net.emplace(sknet::prepare_from_safetensors(
        plan, o.weights, sknet::PrepareOptions(o.threads, false, std::nullopt, o.precision, ranges)));
  } catch (const sknet::StateDictError& e) {  // checkpoint_plan should have caught this
    throw sknet::FormatError(o.weights + ": " + e.what());
  }

  // timm's eval transform for the model: crop_pct 0.875 (its SK models, seresnext50_32x4d), 0.95
  // (resnext50_32x4d's default weights), or --crop-pct.
  classify::EvalTransform transform;
  const double crop_pct = o.crop_pct > 0 ? o.crop_pct : plan.family == "resnext" ? 0.95 : 0.875;
  transform.resize = static_cast<int>(std::floor(transform.crop / crop_pct));
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
  } catch (const sknet::CheckpointMismatch& e) {  // a report of several lines
    std::cerr << "classify: error: " << e.what() << "\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "classify: error: " << one_line(e.what()) << "\n";
    return 1;
  }
}
