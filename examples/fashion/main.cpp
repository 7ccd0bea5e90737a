// fashion_demo: a trained SKNet classifying Fashion-MNIST on the CPU, and the paper's attention
// analysis (Li et al., CVPR 2019, Section 5) on real data.
//
//   fashion_demo [--model models/fashion_sknet.safetensors] [--data /usr/share/datasets/fashion-mnist]
//                [--sample tests/data/fashion] [--out build/demo-output] [--threads T] [--batch 64]
//                [--limit N] [--logits L.npy] [--precision f32|bf16|int8] [--scales R.json]
//
// 1. Loads the checkpoint; the network config and the normalisation come from its __metadata__.
// 2. Reads the 10,000 test images (gzip'd IDX from Debian's dataset-fashion-mnist); without the
//    dataset it falls back to the 200-image sample shipped in tests/data/fashion and says so.
// 3. Classifies them at object scale 1.0 (each 28x28 image copied at a seeded position onto a
//    64x64 canvas, exactly as tools/fashion_data.py) and prints accuracy, the confusion matrix
//    and the throughput.
// 4. For object scales 0.75 .. 1.75 prints, per SK unit, the mean over images and channels of
//    a[path 2] - a[path 1] (attention on the 3x3 dilation-2 "larger" kernel minus the 3x3
//    dilation-1 one) and writes attention.csv, attention.svg and attention.png to --out.
// With --precision int8 the network quantizes at activation ranges calibrated on training images
// (never test images): --scales R.json, by default models/fashion_sknet.int8_ranges.json next to the
// model, reused when it exists, else calibrated on 500 training images (100 at each object scale,
// placed with a seed of their own) and written there (or to --out when the model's folder is read-only).
#include <sknet/io/npy.hpp>
#include <sknet/io/safetensors.hpp>
#include <sknet/models/prepared_sknet.hpp>
#include <sknet/sknet.hpp>

#define STB_IMAGE_WRITE_IMPLEMENTATION
#include <stb_image_write.h>

#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "idx.hpp"
#include "placement.hpp"
#include "plot.hpp"
#include "sample_npy.hpp"

#ifndef FASHION_SOURCE_DIR
#define FASHION_SOURCE_DIR "."
#endif

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

const char* const kUsage =
    "usage: fashion_demo [--model M.safetensors] [--data DIR] [--sample DIR] [--out DIR]\n"
    "                    [--threads T] [--batch B] [--limit N] [--logits L.npy] [--precision f32|bf16|int8]\n"
    "                    [--scales R.json]\n"
    "  --model    trained checkpoint (default " FASHION_SOURCE_DIR "/models/fashion_sknet.safetensors)\n"
    "  --data     Fashion-MNIST IDX files (default /usr/share/datasets/fashion-mnist)\n"
    "  --sample   fallback sample when --data is missing (default " FASHION_SOURCE_DIR "/tests/data/fashion)\n"
    "  --out      folder for attention.csv/.svg/.png (default build/demo-output)\n"
    "  --threads  inference threads (default: all hardware threads)\n"
    "  --batch    images per forward (default 64); --limit N: only the first N test images\n"
    "  --logits   also write the scale-1.0 logits, float32 [N, classes] .npy (for comparing with PyTorch)\n"
    "  --precision f32 (default), bf16 or int8: the arithmetic of the prepared network (bf16 weights and\n"
    "             activations between blocks; int8 1x1 convolutions; float attention;\n"
    "             tools/fashion_precision.py compares them)\n"
    "  --scales   int8: the activation ranges (default: next to the model, <model>.int8_ranges.json;\n"
    "             calibrated on training images and written there when missing)\n";

struct Options {
  std::string model = FASHION_SOURCE_DIR "/models/fashion_sknet.safetensors";
  std::string data = "/usr/share/datasets/fashion-mnist";
  std::string sample = FASHION_SOURCE_DIR "/tests/data/fashion";
  std::string out = "build/demo-output";
  int threads = std::max(1, static_cast<int>(std::thread::hardware_concurrency()));
  long batch = 64;
  long limit = 0;
  std::string logits;
  sknet::kernels::Precision precision = sknet::kernels::Precision::f32;
  std::string scales;
};

long parse_int(const std::string& key, const std::string& v, long min_value) {
  std::size_t used = 0;
  long x = 0;
  try {
    x = std::stol(v, &used);
  } catch (const std::exception&) {
    used = 0;
  }
  if (v.empty() || used != v.size()) throw UsageError("option '" + key + "': expected an integer, got '" + v + "'");
  if (x < min_value)
    throw UsageError("option '" + key + "': expected an integer >= " + std::to_string(min_value) + ", got " + v);
  return x;
}

Options parse_args(int argc, char** argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    const std::string key = argv[i];
    if (key == "-h" || key == "--help") {
      std::cout << kUsage;
      std::exit(0);
    }
    if (i + 1 >= argc) throw UsageError("option '" + key + "' needs a value");
    const std::string v = argv[++i];
    if (key == "--model") o.model = v;
    else if (key == "--data") o.data = v;
    else if (key == "--sample") o.sample = v;
    else if (key == "--out") o.out = v;
    else if (key == "--threads") o.threads = static_cast<int>(parse_int(key, v, 1));
    else if (key == "--batch") o.batch = parse_int(key, v, 1);
    else if (key == "--limit") o.limit = parse_int(key, v, 1);
    else if (key == "--logits") o.logits = v;
    else if (key == "--precision") {
      if (v != "f32" && v != "bf16" && v != "int8")
        throw UsageError("option '--precision': expected f32, bf16 or int8, got '" + v + "'");
      o.precision = v == "bf16"   ? sknet::kernels::Precision::bf16
                    : v == "int8" ? sknet::kernels::Precision::int8
                                  : sknet::kernels::Precision::f32;
    }
    else if (key == "--scales") o.scales = v;
    else throw UsageError("unknown option '" + key + "'");
  }
  return o;
}

// ---- the checkpoint -----------------------------------------------------------------------

std::vector<sknet::Index> metadata_list(const std::map<std::string, std::string>& md, const std::string& key,
                                        const std::string& path) {
  const auto it = md.find(key);
  if (it == md.end()) throw sknet::FormatError(path + ": __metadata__ has no '" + key + "'");
  std::vector<sknet::Index> out;
  std::stringstream ss(it->second);
  std::string item;
  while (std::getline(ss, item, ',')) {
    try {
      std::size_t used = 0;
      out.push_back(std::stol(item, &used));
      if (used != item.size()) throw std::invalid_argument(item);
    } catch (const std::exception&) {
      throw sknet::FormatError(path + ": __metadata__ '" + key + "': expected integers, got '" + it->second + "'");
    }
  }
  if (out.empty()) throw sknet::FormatError(path + ": __metadata__ '" + key + "' is empty");
  return out;
}

sknet::Index metadata_int(const std::map<std::string, std::string>& md, const std::string& key,
                          const std::string& path) {
  const auto v = metadata_list(md, key, path);
  if (v.size() != 1) throw sknet::FormatError(path + ": __metadata__ '" + key + "': expected one integer");
  return v[0];
}

/// The SKNetConfig stored by tools/train_fashion.py (keys as tools/fashion_attention.py reads them).
sknet::SKNetConfig config_from_metadata(const std::map<std::string, std::string>& md, const std::string& path) {
  sknet::SKNetConfig c;
  c.layers = metadata_list(md, "layers", path);
  c.planes = metadata_list(md, "planes", path);
  c.strides = metadata_list(md, "strides", path);
  c.paths = metadata_int(md, "paths", path);
  c.groups = metadata_int(md, "groups", path);
  c.reduction = metadata_int(md, "reduction", path);
  c.min_width = metadata_int(md, "min_width", path);
  c.base_width = metadata_int(md, "base_width", path);
  c.num_classes = metadata_int(md, "num_classes", path);
  c.in_channels = metadata_int(md, "in_chans", path);
  c.stem_width = metadata_int(md, "stem_width", path);
  const auto stem = md.find("stem");
  if (stem == md.end() || (stem->second != "imagenet" && stem->second != "small"))
    throw sknet::FormatError(path + ": __metadata__ 'stem': expected imagenet or small");
  c.stem = stem->second == "small" ? sknet::Stem::small : sknet::Stem::imagenet;
  const auto bk = md.find("branch_kernels");
  if (bk != md.end() && bk->second != "dilated" && bk->second != "full")
    throw sknet::FormatError(path + ": __metadata__ 'branch_kernels': expected dilated or full");
  c.branch_kernel = (bk != md.end() && bk->second == "full") ? sknet::BranchKernel::full : sknet::BranchKernel::dilated;
  c.validate(path);
  return c;
}

float metadata_float(const std::map<std::string, std::string>& md, const std::string& key, float fallback) {
  const auto it = md.find(key);
  if (it == md.end()) return fallback;
  return std::stof(it->second);  // nearest float to the decimal text, as torch.tensor(x, float32)
}

// ---- the data -------------------------------------------------------------------------------

struct Dataset {
  std::vector<std::uint8_t> images;  ///< [count, 28, 28]
  std::vector<int> labels;
  std::size_t count = 0;
  std::string source;
  bool sample = false;
};

Dataset load_data(const Options& o) {
  Dataset d;
  const fs::path images = fs::path(o.data) / "t10k-images-idx3-ubyte.gz";
  const fs::path labels = fs::path(o.data) / "t10k-labels-idx1-ubyte.gz";
  if (fs::exists(images) && fs::exists(labels)) {
    auto pair = fashion::read_idx_dataset(images.string(), labels.string(), fashion::kClasses);
    if (pair.first.rows != fashion::kImage || pair.first.cols != fashion::kImage)
      throw sknet::FormatError(images.string() + ": expected 28x28 images, got " + std::to_string(pair.first.rows) +
                               "x" + std::to_string(pair.first.cols));
    d.images = std::move(pair.first.pixels);
    d.count = pair.first.count;
    d.labels.assign(pair.second.begin(), pair.second.end());
    d.source = "Fashion-MNIST test set, " + o.data;
    return d;
  }
  const fs::path si = fs::path(o.sample) / "sample_images.npy", sl = fs::path(o.sample) / "sample_labels.npy";
  std::cout << "NOTE: the Fashion-MNIST dataset is not installed (" << images.string() << " not found;\n"
            << "      as root: apt-get install dataset-fashion-mnist). Falling back to the small sample\n"
            << "      of test images embedded in the repository: " << o.sample << "\n";
  if (!fs::exists(si) || !fs::exists(sl))
    throw sknet::FormatError("neither the dataset (" + o.data + ") nor the embedded sample (" + si.string() +
                             ") exists");
  const auto img = fashion::read_npy_exact<std::uint8_t>(si.string());
  const auto lab = fashion::read_npy_exact<std::int64_t>(sl.string());
  if (img.shape.size() != 3 || img.shape[1] != 28 || img.shape[2] != 28)
    throw sknet::FormatError(si.string() + ": expected uint8 [N, 28, 28]");
  if (lab.shape.size() != 1 || lab.shape[0] != img.shape[0])
    throw sknet::FormatError(sl.string() + ": expected int64 [N] with N = " + std::to_string(img.shape[0]));
  d.images = img.values;
  d.count = img.shape[0];
  for (std::int64_t v : lab.values) {
    if (v < 0 || v >= fashion::kClasses) throw sknet::FormatError(sl.string() + ": label out of range");
    d.labels.push_back(static_cast<int>(v));
  }
  d.source = "embedded sample (first " + std::to_string(d.count) + " test images), " + o.sample;
  d.sample = true;
  return d;
}

// ---- progress bar ---------------------------------------------------------------------------

class Progress {
 public:
  Progress(std::string label, std::size_t total)
      : label_(std::move(label)), total_(total), tty_(isatty(fileno(stderr)) != 0), start_(Clock::now()) {
    update(0);
  }
  void update(std::size_t done) {
    const int width = 30;
    const int pct = total_ ? static_cast<int>(100 * done / total_) : 100;
    if (!tty_) {  // a log: one line per quarter
      while (next_quarter_ <= 4 && pct >= next_quarter_ * 25) {
        std::fprintf(stderr, "%s %3d%% (%zu/%zu)\n", label_.c_str(), next_quarter_ * 25, done, total_);
        ++next_quarter_;
      }
      return;
    }
    const int filled = total_ ? static_cast<int>(width * done / total_) : width;
    const double s = std::chrono::duration<double>(Clock::now() - start_).count();
    std::string bar(static_cast<std::size_t>(filled), '#');
    bar.resize(width, '.');
    std::fprintf(stderr, "\r%-12s [%s] %3d%% %6zu/%zu %7.0f img/s", label_.c_str(), bar.c_str(), pct, done, total_,
                 s > 0 ? done / s : 0.0);
    if (done == total_) std::fputc('\n', stderr);
    std::fflush(stderr);
  }

 private:
  std::string label_;
  std::size_t total_;
  bool tty_;
  Clock::time_point start_;
  int next_quarter_ = 0;
};

// ---- one pass over the data at one scale ----------------------------------------------------

struct PassResult {
  double scale = 1.0;
  std::size_t correct = 0, count = 0;
  std::vector<std::vector<long>> confusion;   ///< [true][predicted]
  std::vector<std::string> units;
  std::vector<double> diff_sum, path2_sum;   ///< per unit: sum over images of channel means
  double forward_seconds = 0, place_seconds = 0, wall_seconds = 0;
  std::vector<float> logits;  ///< [count, classes] when asked for
  double accuracy() const { return count ? double(correct) / count : 0.0; }
};

template <int M>
PassResult run_pass(sknet::PreparedSKNet<M>& net, const Dataset& data, std::size_t count, double scale, long batch,
                    const fashion::Normalization& norm, const std::string& label, bool keep_logits = false) {
  PassResult r;
  r.scale = scale;
  r.count = count;
  const int classes = static_cast<int>(net.config().num_classes);
  r.confusion.assign(classes, std::vector<long>(classes, 0));
  if (keep_logits) r.logits.resize(count * static_cast<std::size_t>(classes));
  const std::size_t plane = std::size_t(fashion::kCanvas) * fashion::kCanvas;
  std::vector<float> input(static_cast<std::size_t>(batch) * plane);
  Progress progress(label, count);
  const auto t0 = Clock::now();
  for (std::size_t b = 0; b < count; b += static_cast<std::size_t>(batch)) {
    const std::size_t n = std::min<std::size_t>(static_cast<std::size_t>(batch), count - b);
    const auto p0 = Clock::now();
    fashion::place(data.images.data() + b * fashion::kImage * fashion::kImage, n, b, scale, fashion::kEvalSeed, norm,
                   input.data());
    const auto p1 = Clock::now();
    const sknet::ConstTensorMap4<float> x(input.data(), static_cast<sknet::Index>(n), fashion::kCanvas,
                                          fashion::kCanvas, 1);
    const sknet::Tensor2<float> logits = net.forward(x);
    const auto p2 = Clock::now();
    r.place_seconds += std::chrono::duration<double>(p1 - p0).count();
    r.forward_seconds += std::chrono::duration<double>(p2 - p1).count();
    if (keep_logits) std::copy(logits.data(), logits.data() + logits.size(), r.logits.begin() + b * classes);
    for (std::size_t i = 0; i < n; ++i) {
      int best = 0;
      for (int k = 1; k < classes; ++k)
        if (logits(static_cast<sknet::Index>(i), k) > logits(static_cast<sknet::Index>(i), best)) best = k;
      const int truth = data.labels[b + i];
      r.correct += best == truth;
      ++r.confusion[truth][best];
    }
    const auto& maps = net.attention_maps();
    if (r.units.empty()) {
      for (const auto& m : maps) r.units.push_back(m.first);
      r.diff_sum.assign(maps.size(), 0.0);
      r.path2_sum.assign(maps.size(), 0.0);
    }
    if (M >= 2)
      for (std::size_t u = 0; u < maps.size(); ++u) {
        const sknet::Tensor3<float>& a = maps[u].second;  // [n, M, C]
        const sknet::Index c = a.dimension(2);
        for (sknet::Index i = 0; i < a.dimension(0); ++i) {
          double diff = 0, p2 = 0;
          for (sknet::Index ch = 0; ch < c; ++ch) {
            diff += double(a(i, 1, ch)) - double(a(i, 0, ch));
            p2 += a(i, 1, ch);
          }
          r.diff_sum[u] += diff / c;
          r.path2_sum[u] += p2 / c;
        }
      }
    progress.update(b + n);
  }
  r.wall_seconds = std::chrono::duration<double>(Clock::now() - t0).count();
  return r;
}

// ---- reporting ------------------------------------------------------------------------------

/// printf-style fixed-point text, so std::cout's formatting state never leaks between lines.
std::string fmt(double v, int decimals, bool sign = false) {
  char buf[64];
  std::snprintf(buf, sizeof buf, sign ? "%+.*f" : "%.*f", decimals, v);
  return buf;
}

void print_confusion(const PassResult& r, const std::vector<std::string>& names) {
  const std::size_t k = r.confusion.size();
  std::cout << "\nconfusion matrix (rows: true class, columns: predicted class index)\n";
  std::cout << std::left << std::setw(16) << "" << std::right;
  for (std::size_t j = 0; j < k; ++j) std::cout << std::setw(6) << j;
  std::cout << std::setw(9) << "recall" << "\n";
  for (std::size_t i = 0; i < k; ++i) {
    long total = 0;
    for (long v : r.confusion[i]) total += v;
    std::ostringstream row;
    row << i << " " << (i < names.size() ? names[i] : std::string("class"));
    std::cout << std::left << std::setw(16) << row.str() << std::right;
    for (std::size_t j = 0; j < k; ++j) std::cout << std::setw(6) << r.confusion[i][j];
    std::cout << std::setw(8) << fmt(total ? 100.0 * r.confusion[i][i] / total : 0.0, 1) << "%\n";
  }
}

std::vector<std::string> class_names(const std::map<std::string, std::string>& md, int classes) {
  std::vector<std::string> names;
  const auto it = md.find("classes");
  if (it != md.end()) {
    std::stringstream ss(it->second);
    std::string item;
    while (std::getline(ss, item, ',')) names.push_back(item);
  }
  if (static_cast<int>(names.size()) != classes) {
    names.clear();
    for (int i = 0; i < classes; ++i) names.push_back(i < fashion::kClasses ? fashion::kClassNames[i] : "class");
  }
  return names;
}

std::string trend_word(const std::vector<double>& v) {
  bool up = true, down = true;
  for (std::size_t i = 1; i < v.size(); ++i) {
    up = up && v[i] >= v[i - 1];
    down = down && v[i] <= v[i - 1];
  }
  return up ? "rises with scale" : down ? "falls with scale" : "not monotonic";
}

/// int8: the activation ranges of the network of `dict`: read from `path` when it exists, else
/// calibrated on training images (500: 100 at each object scale 0.75..1.75, seed kEvalSeed + 1) and
/// written to `path` (or to --out when that fails). Never test images.
template <int M>
std::shared_ptr<const sknet::ActivationRanges> int8_ranges(const Options& o, const sknet::SKNetConfig& config,
                                                          const sknet::StateDict<float>& dict,
                                                          const fashion::Normalization& norm, std::string path) {
  if (fs::exists(path)) {
    std::cout << "int8:    activation ranges from " << path << "\n";
    return std::make_shared<const sknet::ActivationRanges>(sknet::ActivationRanges::load(path));
  }
  const fs::path images = fs::path(o.data) / "train-images-idx3-ubyte.gz";
  const fs::path labels = fs::path(o.data) / "train-labels-idx1-ubyte.gz";
  if (!fs::exists(images) || !fs::exists(labels))
    throw sknet::FormatError("--precision int8: no activation ranges at " + path +
                             " and no training images to calibrate on (" + images.string() +
                             "; as root: apt-get install dataset-fashion-mnist)");
  const auto train = fashion::read_idx_dataset(images.string(), labels.string(), fashion::kClasses).first;
  const std::vector<double> scales{0.75, 1.0, 1.25, 1.5, 1.75};
  const std::size_t per_scale = 100;
  if (train.count < per_scale * scales.size()) throw sknet::FormatError(images.string() + ": too few training images");
  std::vector<sknet::Tensor4<float>> batches;
  for (std::size_t k = 0; k < scales.size(); ++k) {
    sknet::Tensor4<float> x(static_cast<sknet::Index>(per_scale), fashion::kCanvas, fashion::kCanvas, 1);
    const std::size_t first = k * per_scale;  // different images at each scale
    fashion::place(train.pixels.data() + first * fashion::kImage * fashion::kImage, per_scale, first, scales[k],
                   fashion::kEvalSeed + 1, norm, x.data());
    batches.push_back(std::move(x));
  }
  sknet::StateDict<float> copy = dict;
  const sknet::PreparedSKNet<M> f32 = sknet::prepare_from_state_dict<M>(config, std::move(copy), sknet::PrepareOptions(o.threads));
  auto ranges = std::make_shared<sknet::ActivationRanges>(sknet::calibrate(f32, batches));
  try {
    ranges->save(path);
  } catch (const sknet::FormatError&) {
    path = (fs::path(o.out) / fs::path(path).filename()).string();
    fs::create_directories(o.out);
    ranges->save(path);
  }
  std::cout << "int8:    activation ranges calibrated on " << ranges->images << " training images, written to " << path
            << "\n";
  return ranges;
}

template <int M>
int run(const Options& o, sknet::io::SafetensorsFile file, Clock::time_point t_load) {
  // 1. model
  const std::map<std::string, std::string> md = file.metadata;
  const sknet::SKNetConfig config = config_from_metadata(md, o.model);
  const auto canvas = md.find("canvas"), image = md.find("image");
  if ((canvas != md.end() && canvas->second != std::to_string(fashion::kCanvas)) ||
      (image != md.end() && image->second != std::to_string(fashion::kImage)))
    throw sknet::FormatError(o.model + ": trained for a different canvas/image size than 64/28");
  if (config.in_channels != 1)
    throw sknet::FormatError(o.model + ": expected a 1-channel network, got in_chans " +
                             std::to_string(config.in_channels));
  fashion::Normalization norm;
  norm.mean = metadata_float(md, "norm_mean", fashion::kMean);
  norm.std_dev = metadata_float(md, "norm_std", fashion::kStd);
  sknet::StateDict<float> dict = sknet::io::to_state_dict<float>(file, o.model);
  file = {};
  std::shared_ptr<const sknet::ActivationRanges> ranges;
  if (o.precision == sknet::kernels::Precision::int8) {
    std::string path = o.scales;
    if (path.empty()) {
      fs::path p(o.model);
      path = (p.parent_path() / (p.stem().string() + ".int8_ranges.json")).string();
    }
    ranges = int8_ranges<M>(o, config, dict, norm, path);
  }
  sknet::PreparedSKNet<M> net = sknet::prepare_from_state_dict<M>(
      config, std::move(dict), sknet::PrepareOptions(o.threads, false, std::nullopt, o.precision, ranges));
  const double load_ms = std::chrono::duration<double, std::milli>(Clock::now() - t_load).count();
  {
    sknet::SKNet<float, M> shape_only(config);
    const auto summary = shape_only.summary(fashion::kCanvas, fashion::kCanvas);
    std::cout << "model:   " << o.model << " (" << summary.params << " parameters, "
              << fmt(summary.macs / 1e6, 1) << " M multiply-adds per 64x64 image, "
              << "loaded and prepared in " << fmt(load_ms, 0) << " ms; precision "
              << sknet::kernels::precision_name(o.precision) << ")\n";
  }
  std::cout << "network: SK[M=" << M << ", G=" << config.groups << ", r=" << config.reduction
            << "], L=" << config.min_width << ", stages " << config.layers.size() << " x {";
  for (std::size_t s = 0; s < config.layers.size(); ++s) std::cout << (s ? "," : "") << config.layers[s];
  std::cout << "} units, widths {";
  for (std::size_t s = 0; s < config.layers.size(); ++s) std::cout << (s ? "," : "") << config.unit_width(s);
  std::cout << "}, " << (config.stem == sknet::Stem::imagenet ? "ImageNet" : "small") << " stem, "
            << config.num_classes << " classes\n";
  std::cout << "input:   28x28 image on a 64x64 canvas at a seeded position (seed " << fashion::kEvalSeed
            << "), x = (pixel/255 - " << fmt(norm.mean, 4) << ") / " << fmt(norm.std_dev, 4) << "\n";

  // 2. data
  const Dataset data = load_data(o);
  const std::size_t count = o.limit ? std::min<std::size_t>(data.count, static_cast<std::size_t>(o.limit)) : data.count;
  std::cout << "data:    " << count << " images from the " << data.source << "\n";
  const std::vector<std::string> names = class_names(md, static_cast<int>(config.num_classes));

  // 3. classification at scale 1.0
  std::cout << "\n-- classification at object scale 1.0 (" << o.threads << " thread" << (o.threads > 1 ? "s" : "")
            << ", batch " << o.batch << ") --\n"
            << std::flush;
  const PassResult base = run_pass<M>(net, data, count, 1.0, o.batch, norm, "scale 1.00", !o.logits.empty());
  if (!o.logits.empty())
    sknet::io::write_npy<float>(o.logits, {static_cast<sknet::Index>(count), config.num_classes}, base.logits.data());
  std::cout << "accuracy: " << fmt(100.0 * base.accuracy(), 2) << "% (" << base.correct << " / " << base.count << ")\n";
  print_confusion(base, names);
  std::cout << "\nthroughput: " << fmt(base.count / base.forward_seconds, 0) << " images/s (network only; "
            << fmt(base.count / base.wall_seconds, 0) << " images/s including placement), " << o.threads
            << " thread" << (o.threads > 1 ? "s" : "") << ", batch " << o.batch << ", "
            << fmt(1000.0 * base.forward_seconds / std::max<std::size_t>(1, base.count), 3) << " ms/image\n";

  if (M < 2) {
    std::cout << "\nthe network has one path per SK unit: no attention analysis\n";
    return 0;
  }

  // 4. attention analysis
  const std::vector<double> scales{0.75, 1.0, 1.25, 1.5, 1.75};
  std::cout << "\n-- attention analysis: mean attention difference a[path 2] - a[path 1] per SK unit --\n"
            << "path 1 = 3x3 conv, dilation 1 (3x3 field); path 2 = 3x3 conv, dilation 2 (5x5 field, the larger\n"
            << "kernel). Mean over " << count << " images and all channels; positive = more attention on the\n"
            << "larger kernel. Object size = round(28 x scale) px, bilinear resize as in training.\n"
            << std::flush;
  std::vector<PassResult> passes;
  for (double s : scales) {
    if (s == 1.0) {
      passes.push_back(base);
      continue;
    }
    std::ostringstream label;
    label << "scale " << fmt(s, 2);
    passes.push_back(run_pass<M>(net, data, count, s, o.batch, norm, label.str()));
  }
  const std::vector<std::string>& units = base.units;
  std::cout << "\n" << std::left << std::setw(10) << "unit" << std::right;
  for (double s : scales) {
    std::ostringstream h;
    h << "x" << fmt(s, 2) << " (" << fashion::scaled_size(s) << "px)";
    std::cout << std::setw(14) << h.str();
  }
  std::cout << "   trend\n";
  std::vector<fashion::PlotSeries> series;
  for (std::size_t u = 0; u < units.size(); ++u) {
    fashion::PlotSeries ser{units[u], {}};
    std::cout << std::left << std::setw(10) << units[u] << std::right;
    for (const auto& p : passes) {
      const double v = p.diff_sum[u] / p.count;
      ser.y.push_back(v);
      std::cout << std::setw(14) << fmt(v, 4, true);
    }
    std::cout << "   " << trend_word(ser.y) << "\n";
    series.push_back(ser);
  }
  std::cout << std::left << std::setw(10) << "accuracy" << std::right;
  for (const auto& p : passes)
    std::cout << std::setw(13) << fmt(100.0 * p.accuracy(), 2) << "%";
  std::cout << "\n";

  // 5. files
  fs::create_directories(o.out);
  const fs::path csv = fs::path(o.out) / "attention.csv", svg = fs::path(o.out) / "attention.svg",
                 png = fs::path(o.out) / "attention.png";
  {
    std::ofstream f(csv);
    f << "unit,scale,size_px,images,mean_attention_difference,mean_attention_path2,accuracy\n";
    f << std::setprecision(8);
    for (std::size_t u = 0; u < units.size(); ++u)
      for (const auto& p : passes)
        f << units[u] << "," << p.scale << "," << fashion::scaled_size(p.scale) << "," << p.count << ","
          << p.diff_sum[u] / p.count << "," << p.path2_sum[u] / p.count << "," << p.accuracy() << "\n";
    if (!f) throw std::runtime_error(csv.string() + ": write failed");
  }
  fashion::LinePlot plot;
  plot.title = "SKNet on Fashion-MNIST: attention shift vs object scale (" + std::to_string(count) + " test images)";
  plot.x_label = "object scale (28 px x scale, on a 64x64 canvas)";
  plot.y_label = "mean a[dilation 2] - a[dilation 1]";
  plot.x = scales;
  plot.series = series;
  {
    std::ofstream f(svg);
    f << fashion::render_svg(plot);
    if (!f) throw std::runtime_error(svg.string() + ": write failed");
  }
  {
    fashion::LinePlot small = plot;
    small.title = "attention shift vs object scale (" + std::to_string(count) + " images)";
    const auto raster = fashion::render_raster(small);
    if (!stbi_write_png(png.string().c_str(), raster.width(), raster.height(), 3, raster.pixels().data(),
                        raster.width() * 3))
      throw std::runtime_error(png.string() + ": write failed");
  }
  std::cout << "\nwrote:\n";
  for (const auto& p : {csv, svg, png}) std::cout << "  " << fs::absolute(p).lexically_normal().string() << "\n";
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    const Options o = parse_args(argc, argv);
    std::cout << "== sknet Fashion-MNIST demo ==\n";
    const auto t_load = Clock::now();
    sknet::io::SafetensorsFile file = sknet::io::read_safetensors(o.model);
    // The path count M is a template argument: read it from the metadata first.
    const sknet::Index m = metadata_int(file.metadata, "paths", o.model);
    return sknet::with_paths(m, [&](auto paths) { return run<decltype(paths)::value>(o, std::move(file), t_load); });
  } catch (const UsageError& e) {
    std::cerr << "fashion_demo: " << e.what() << "\n" << kUsage;
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "fashion_demo: error: " << e.what() << "\n";
    return 1;
  }
}
