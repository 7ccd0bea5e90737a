// The `sknet` command: network summaries, inference on PyTorch/timm checkpoints, and timing, for
// every named architecture of models/architectures.hpp (SKNets, SK-ResNets, ResNeXt, SE-ResNeXt and
// SK-ShuffleNetV2).
//
//   sknet info  --arch A [--size S] [network flags]
//   sknet run   --arch A --weights W.safetensors --input X.npy --output Y.npy [--attention-dir DIR]
//               [--threads T] [network flags]
//   sknet bench --arch A [--batch B] [--size S] [--threads T] [--reps R] [network flags]
#include <sknet/io/npy.hpp>
#include <sknet/io/safetensors.hpp>
#include <sknet/kernels/pointwise_int8.hpp>
#include <sknet/models/prepared_sknet.hpp>
#include <sknet/models/architectures.hpp>
#include <sknet/models/infer_network.hpp>
#include <sknet/models/resnext.hpp>
#include <sknet/sknet.hpp>

#include <unistd.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <algorithm>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <functional>
#include <iostream>
#include <limits>
#include <map>
#include <memory>
#include <new>
#include <optional>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

namespace {

using namespace sknet;

/// A usage error: printed with a hint, exit code 2.
struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

/// Bounds of the command's numeric options and inputs (stated in the usage text).
constexpr Index kMaxThreads = 256;
constexpr Index kMaxSide = 8192;                  ///< H and W of `run` inputs and `bench --size`
constexpr Index kMaxBenchValues = Index(1) << 30;  ///< batch * size * size * channels of `bench`
constexpr Index kMaxBatch = 65536;
constexpr Index kMaxReps = 100000;
constexpr Index kMaxInt = std::numeric_limits<Index>::max();

const char* const kUsage =
    "usage: sknet info  --arch A [--size S] [network flags]\n"
    "       sknet info  --weights W.safetensors [--size S]   (the network the checkpoint holds)\n"
    "       sknet run   [--arch A] --weights W.safetensors --input X.npy --output Y.npy\n"
    "                   [--attention-dir DIR] [--threads T] [--kernels fast|reference]\n"
    "                   [--precision f32|bf16|int8 [--scales R.json]] [network flags]\n"
    "       sknet bench --arch A [--batch B] [--size S] [--threads T] [--reps R] [--profile 1]\n"
    "                   [--precision f32|bf16|int8] [--kernels fast|reference] [network flags]\n"
    "       sknet calibrate [--arch A] --weights W.safetensors --inputs X.npy|DIR --output R.json [--threads T]\n"
    "                   [network flags]   (the activation ranges int8 quantizes at, from float32 runs over\n"
    "                   X.npy or every .npy of DIR, float32 [N, C, H, W]; run --precision int8 --scales R.json)\n"
    "arch: sknet26, sknet50, sknet101 (the paper's SKNets, timm skresnext50_32x4d layout), skresnet18,\n"
    "      skresnet34, skresnet50, skresnet50d (timm's SK-ResNets), resnext26, resnext50, resnext101,\n"
    "      seresnext50 (the paper's ResNeXt and SENet baselines), sknet29, resnext29, senet29 (CIFAR) and\n"
    "      sk_shufflenetv2 (the paper's SK-ShuffleNetV2 1.0x, torchvision's shufflenet_v2_x1_0 names;\n"
    "      --planes: 3 stages)\n"
    "size: --size S is the input's height and width (default 224, 32 for the CIFAR networks)\n"
    "network flags: --classes K --paths M --groups G --reduction R --min-width L --base-width B\n"
    "               --in-channels C --stem-width W --stem imagenet|small --branch-kernel dilated|full\n"
    "               --layers a,b,c,d (override the depths) --planes a,b,c,d --strides a,b,c,d\n"
    "               the paper's SK ablations, one value per path: --path-kernels 3,5 (odd sizes; default 3,3 or\n"
    "               with --branch-kernel full 3,5,...) --path-dilations 1,1 (default: the n-th path, if 3x3,\n"
    "               has dilation n; larger kernels 1) --path-groups 32,64 (default: --groups),\n"
    "               --aggregation attention|sum\n"
    "               (sum: V = sum of the paths, no attention parameters)\n"
    "               (resnext: none of the SK flags: --paths, --reduction, --min-width, --branch-kernel, --path-*,\n"
    "               --aggregation, --attention-dir)\n"
    "input X.npy: float32 [N, C, H, W] (PyTorch order), N >= 1, 1 <= H, W <= 8192; output Y.npy: float32\n"
    "             [N, classes]; attention: DIR/<unit>.npy, float32 [N, M, C], one per SK unit (layer1.0.npy, ...)\n"
    "bounds: --threads 1..256, bench --size 1..8192, --batch 1..65536 (batch * size^2 * C <= 2^30), --reps 1..100000;\n"
    "        networks above 2^31 parameters are refused. Exit status: 0 ok, 2 usage error, 1 any other error.\n";

class Args {
 public:
  Args(int argc, char** argv, const std::set<std::string>& allowed) {
    for (int i = 2; i < argc; ++i) {
      const std::string key = argv[i];
      if (key.rfind("--", 0) != 0) throw UsageError("unexpected argument '" + key + "'");
      if (!allowed.count(key)) throw UsageError("unknown option '" + key + "' for '" + argv[1] + "'");
      if (i + 1 >= argc) throw UsageError("option '" + key + "' needs a value");
      if (!values_.emplace(key, argv[++i]).second) throw UsageError("option '" + key + "' given twice");
    }
  }
  bool has(const std::string& key) const { return values_.count(key) != 0; }
  std::string text(const std::string& key) const {
    const auto it = values_.find(key);
    if (it == values_.end()) throw UsageError("missing required option '" + key + "'");
    return it->second;
  }
  /// The integer value of `key` (or `fallback`), which must lie in [min_value, max_value].
  Index integer(const std::string& key, Index fallback, Index min_value, Index max_value = kMaxInt) const {
    if (!has(key)) return fallback;
    const Index v = parse_integer(key, text(key));
    if (v < min_value || v > max_value) throw UsageError(range_message(key, text(key), min_value, max_value));
    return v;
  }
  std::vector<Index> list(const std::string& key, const std::vector<Index>& fallback) const {
    if (!has(key)) return fallback;
    std::vector<Index> out;
    std::stringstream ss(text(key));
    std::string item;
    while (std::getline(ss, item, ',')) out.push_back(parse_integer(key, item));
    if (out.empty()) throw UsageError("option '" + key + "': expected a comma-separated list of integers");
    return out;
  }

 private:
  static std::string range_message(const std::string& key, const std::string& value, Index min_value,
                                   Index max_value) {
    return "option '" + key + "': expected an integer " +
           (max_value == kMaxInt ? ">= " + std::to_string(min_value)
                                 : "in " + std::to_string(min_value) + ".." + std::to_string(max_value)) +
           ", got " + value;
  }
  /// A decimal integer, optionally negative, that fits 64 bits: nothing before or after it.
  static Index parse_integer(const std::string& key, const std::string& s) {
    long long v = 0;
    const char* end = s.data() + s.size();
    const auto [ptr, ec] = std::from_chars(s.data(), end, v);
    if (ec == std::errc::result_out_of_range)
      throw UsageError("option '" + key + "': integer out of range (64 bits), got '" + s + "'");
    if (s.empty() || ec != std::errc() || ptr != end)
      throw UsageError("option '" + key + "': expected an integer, got '" + s + "'");
    return static_cast<Index>(v);
  }
  std::map<std::string, std::string> values_;
};

const std::set<std::string> kNetworkFlags{"--arch",        "--classes",    "--paths",  "--groups",
                                          "--reduction",   "--min-width",  "--base-width",
                                          "--in-channels", "--stem-width", "--stem",   "--branch-kernel",
                                          "--layers",      "--planes",     "--strides",
                                          "--path-kernels", "--path-dilations", "--path-groups", "--aggregation"};

std::set<std::string> with_network_flags(std::set<std::string> extra) {
  extra.insert(kNetworkFlags.begin(), kNetworkFlags.end());
  return extra;
}

/// Whether --arch names a network without SK convolutions (ResNeXt, SE-ResNeXt).
bool is_resnext(const Args& args) { return architecture(args.text("--arch")).paths == 0; }

/// The SK-only options, a usage error for a ResNeXt.
const char* const kSkOnlyFlags[] = {"--paths",        "--reduction",      "--min-width",   "--branch-kernel",
                                    "--attention-dir", "--path-kernels", "--path-dilations", "--path-groups",
                                    "--aggregation"};

/// Usage error for an SK-only option given with a ResNeXt --arch.
void check_applicable_flags(const Args& args) {
  if (!args.has("--arch") || !is_resnext(args)) return;
  for (const char* flag : kSkOnlyFlags)
    if (args.has(flag))
      throw UsageError("option '" + std::string(flag) + "' does not apply to " + args.text("--arch") +
                       " (no SK convolutions)");
}

/// The network's configuration from the flags (classes: --classes, else `default_classes`, else the
/// architecture's); ConfigError for an unknown --arch.
SKNetConfig network_config(const Args& args, Index default_classes = 0) {
  const Architecture& a = architecture(args.text("--arch"));  // ConfigError listing every name
  check_applicable_flags(args);
  SKNetConfig c = a.config;
  c.layers = args.list("--layers", c.layers);
  c.planes = args.list("--planes", c.planes);
  c.strides = args.list("--strides", c.strides);
  c.paths = args.integer("--paths", a.paths > 0 ? a.paths : 2, 1, 4);
  c.groups = args.integer("--groups", c.groups, 1);
  c.reduction = args.integer("--reduction", c.reduction, 1);
  c.min_width = args.integer("--min-width", c.min_width, 1);
  if (args.has("--reduction") || args.has("--min-width")) c.attention.reset();  // the paper's rule, as asked
  c.base_width = args.integer("--base-width", c.base_width, 1);
  c.num_classes = args.integer("--classes", default_classes > 0 ? default_classes : c.num_classes, 1);
  c.in_channels = args.integer("--in-channels", c.in_channels, 1);
  c.stem_width = args.integer("--stem-width", c.stem_width, 1);
  if (args.has("--stem")) {
    const std::string stem = args.text("--stem");
    if (stem != "imagenet" && stem != "small" && stem != "deep")
      throw UsageError("option '--stem': expected imagenet, small or deep, got '" + stem + "'");
    c.stem = stem == "small" ? Stem::small : stem == "deep" ? Stem::deep : Stem::imagenet;
  }
  if (args.has("--branch-kernel")) {
    const std::string k = args.text("--branch-kernel");
    if (k != "dilated" && k != "full")
      throw UsageError("option '--branch-kernel': expected dilated or full, got '" + k + "'");
    c.branch_kernel = k == "full" ? BranchKernel::full : BranchKernel::dilated;
  }
  // The paper's ablations: one value per path each (the SK spec checks the values per unit).
  const auto per_path = [&](const std::string& key) {
    const std::vector<Index> v = args.list(key, {});
    if (!v.empty() && Index(v.size()) != c.paths)
      throw UsageError("option '" + key + "': expected one value per path (M = " + std::to_string(c.paths) + "), got " +
                       std::to_string(v.size()));
    return v;
  };
  c.path_kernels = per_path("--path-kernels");
  c.path_dilations = per_path("--path-dilations");
  c.path_groups = per_path("--path-groups");
  if (args.has("--aggregation")) {
    const std::string a = args.text("--aggregation");
    if (a != "attention" && a != "sum")
      throw UsageError("option '--aggregation': expected attention or sum, got '" + a + "'");
    c.aggregation = a == "sum" ? Aggregation::sum : Aggregation::attention;
  }
  c.validate("sknet");
  return c;
}

/// --precision (default f32): f32, bf16 or int8; anything else is a usage error.
kernels::Precision precision_option(const Args& args) {
  if (!args.has("--precision")) return kernels::Precision::f32;
  const std::string p = args.text("--precision");
  if (p != "f32" && p != "bf16" && p != "int8")
    throw UsageError("option '--precision': expected f32, bf16 or int8, got '" + p + "'");
  return p == "bf16" ? kernels::Precision::bf16 : p == "int8" ? kernels::Precision::int8 : kernels::Precision::f32;
}

/// What runs at `precision` on the weights packed for `isa`: "f32", "bf16 (1x1: <kernel>, SK branches:
/// <kernel>)" or "int8 (1x1: <kernel>, SK branches: <kernel>)".
std::string precision_label(kernels::Precision precision, kernels::Isa isa) {
  if (precision == kernels::Precision::f32) return "f32";
  if (precision == kernels::Precision::int8)
    return std::string("int8 (1x1: ") + kernels::pointwise_int8_kernel_name(isa) +
           ", SK branches: " + kernels::sk_branches_int8_kernel_name(isa) + ")";
  return std::string("bf16 (1x1: ") + kernels::pointwise_bf16_kernel_name(isa) +
         ", SK branches: " + kernels::sk_branches_bf16_kernel_name(isa) + ")";
}

/// NCHW float32 batches of --inputs: X.npy, or every .npy file of a directory (sorted by name), each
/// [N, channels, H, W] with N >= 1, as NHWC.
std::vector<Tensor4<float>> read_calibration_inputs(const std::string& where, Index channels) {
  std::vector<std::string> files;
  if (std::filesystem::is_directory(where)) {
    for (const auto& e : std::filesystem::directory_iterator(where))
      if (e.path().extension() == ".npy") files.push_back(e.path().string());
    std::sort(files.begin(), files.end());
    if (files.empty()) throw FormatError(where + ": no .npy file in the --inputs directory");
  } else {
    files.push_back(where);
  }
  std::vector<Tensor4<float>> batches;
  for (const std::string& f : files) {
    const NamedTensor<float> t = io::read_npy<float>(f);
    if (t.shape.size() != 4 || t.shape[0] < 1 || t.shape[1] != channels || t.shape[2] < 1 || t.shape[3] < 1 ||
        t.shape[2] > kMaxSide || t.shape[3] > kMaxSide)
      throw ShapeError(f + ": expected float32 [N >= 1, " + std::to_string(channels) + ", H, W] (H, W in 1.." +
                       std::to_string(kMaxSide) + "), got " + shape_string(t.shape));
    batches.push_back(to_nhwc<float>(ConstTensorMap4<float>(t.values.data(), t.shape[0], t.shape[1], t.shape[2], t.shape[3])));
  }
  return batches;
}

/// The network plan of --arch and `config` (whose layers already hold --layers or the depths).
NetworkPlan network_plan(const Args& args, const SKNetConfig& config) {
  const Architecture& a = architecture(args.text("--arch"));
  return family_plan(a.family, config, a.paths > 0 ? config.paths : 0);
}

/// Calls f(net) with the reference network of `plan` (M from the plan; parameters unset).
template <class F>
void with_reference_network(const NetworkPlan& plan, F&& f) {
  with_paths(plan.paths > 0 ? plan.paths : 1, [&](auto m) {
    Network<float, decltype(m)::value> net(plan);
    f(net);
  });
}

/// Runs the batch in `threads` contiguous slices of images in parallel (each image is independent,
/// so the result does not depend on the thread count).
template <class Net>
Tensor2<float> forward_batch(const Net& net, const Tensor4<float>& nhwc, Index threads, AttentionMaps<float>* attention) {
  const Index n = nhwc.dimension(0), h = nhwc.dimension(1), w = nhwc.dimension(2), c = nhwc.dimension(3);
  const Index slices = std::max<Index>(1, std::min(threads, n));
  std::vector<Tensor2<float>> logits(slices);
  std::vector<AttentionMaps<float>> maps(slices);
  std::vector<std::exception_ptr> errors(slices);
  const auto work = [&](Index s) {
    try {
      const Index begin = n * s / slices, end = n * (s + 1) / slices;
      const ConstTensorMap4<float> part(nhwc.data() + begin * h * w * c, end - begin, h, w, c);
      logits[s] = net.forward(part, attention ? &maps[s] : nullptr);
    } catch (...) {
      errors[s] = std::current_exception();
    }
  };
  std::vector<std::thread> pool;
  for (Index s = 1; s < slices; ++s) {
    try {
      pool.emplace_back(work, s);
    } catch (const std::exception& e) {  // join the started threads: never std::terminate
      for (auto& t : pool) t.join();
      throw RuntimeError("could not start thread " + std::to_string(s + 1) + " of " + std::to_string(slices) + ": " +
                         e.what());
    }
  }
  work(0);
  for (auto& t : pool) t.join();
  for (auto& e : errors)
    if (e) std::rethrow_exception(e);
  if (slices == 1) {
    if (attention) *attention = std::move(maps[0]);
    return logits[0];
  }
  Tensor2<float> all = logits[0];
  for (Index s = 1; s < slices; ++s) all = Tensor2<float>(all.concatenate(logits[s], 0));
  if (attention) {
    *attention = maps[0];
    for (std::size_t u = 0; u < attention->size(); ++u)
      for (Index s = 1; s < slices; ++s)
        (*attention)[u].second = Tensor3<float>((*attention)[u].second.concatenate(maps[s][u].second, 0));
  }
  return all;
}

/// The plan and config of the network in checkpoint `file` (names and shapes): without --arch,
/// inferred (one line on stderr says what); with --arch, the flags' network, which must fit the file
/// (FormatError listing the differences grouped by unit and what the file holds otherwise).
std::pair<NetworkPlan, SKNetConfig> checkpoint_network(const Args& args, const io::SafetensorsLayout& header,
                                                       const std::string& path) {
  const ShapeMap file = io::tensor_shapes(header);
  if (!args.has("--arch")) {
    for (const std::string& flag : kNetworkFlags)
      if (flag != "--arch" && args.has(flag))
        throw UsageError("option '" + flag + "' needs --arch (without it the network is inferred from the checkpoint)");
    const InferredNetwork inferred = infer_network(file, path, header.metadata);
    std::cerr << "sknet: " << path << " holds " << inferred.description() << "\n";
    return {inferred.plan(), inferred.config};
  }
  const Index classes = checkpoint_classes(file, path);
  if (args.has("--classes") && args.integer("--classes", 0, 1) != classes)
    throw UsageError("option '--classes': the checkpoint has " + std::to_string(classes) + " classes, not " +
                     args.text("--classes"));
  const SKNetConfig config = network_config(args, classes);
  NetworkPlan plan = network_plan(args, config);
  require_checkpoint_fits(file, plan, path, "--arch " + args.text("--arch"), header.metadata);
  return {std::move(plan), config};
}

int cmd_info(const Args& args) {
  // Shapes, parameters and multiply-adds from the plan alone: no weight is allocated (a checkpoint's
  // header only is read). The default size is the network's (224, or 32 for CIFAR networks).
  const NetworkPlan plan = args.has("--weights")
                               ? checkpoint_network(args, io::read_safetensors_header(args.text("--weights")),
                                                    args.text("--weights")).first
                               : network_plan(args, network_config(args));
  const Index size = args.integer("--size", default_input_size(plan.config), 1);
  std::cout << plan.summary(size, size).to_string();
  std::cout << "bf16 1x1 kernel: " << kernels::pointwise_bf16_kernel_name(kernels::active_isa())
            << "; bf16 SK branch kernel: " << kernels::sk_branches_bf16_kernel_name(kernels::active_isa())
            << "; int8 1x1 kernel: " << kernels::pointwise_int8_kernel_name(kernels::active_isa())
            << "; int8 SK branch kernel: " << kernels::sk_branches_int8_kernel_name(kernels::active_isa()) << "\n";
  std::cout << "isa: " << kernels::isa_name(kernels::active_isa()) << " (cpu: " << kernels::isa_name(kernels::cpu_isa())
            << "; SKNET_ISA=portable|avx2|avx512 narrows it)\n";
  return 0;
}

/// The files `sknet run` writes, made all or nothing: each is written under a temporary name in
/// its directory, and only when every one is complete are they renamed into place. Until then a
/// failure (or an exception anywhere) removes the temporary files and the directories this run
/// created; a failed rename removes the files already renamed.
class RunOutputs {
 public:
  /// Checks, creating nothing, that `path` can be written as a file: its directory exists and
  /// is writable, and `path` is not a directory.
  static void check_file(const std::string& option, const std::string& path) {
    namespace fs = std::filesystem;
    std::error_code ec;
    if (fs::is_directory(path, ec))
      throw RuntimeError("option '" + option + "': '" + path + "' is a directory, expected a file name");
    const fs::path parent = fs::path(path).parent_path().empty() ? fs::path(".") : fs::path(path).parent_path();
    check_writable_dir(option, parent, path);
  }
  /// Checks, creating nothing, that `dir` is a directory or can be created: no part of it is an
  /// existing non-directory, and its nearest existing ancestor is a writable directory.
  static void check_dir(const std::string& option, const std::string& dir) {
    namespace fs = std::filesystem;
    std::error_code ec;
    fs::path p = fs::path(dir);
    for (;;) {
      const fs::file_status st = fs::status(p, ec);
      if (fs::exists(st)) {
        if (!fs::is_directory(st))
          throw RuntimeError("option '" + option + "': '" + p.string() + "' exists and is not a directory" +
                             (p == fs::path(dir) ? "" : " (in '" + dir + "')"));
        check_writable_dir(option, p, dir);
        return;
      }
      if (!p.has_parent_path() || p.parent_path() == p) {
        p = ".";
        continue;
      }
      p = p.parent_path();
    }
  }

  RunOutputs() = default;
  RunOutputs(const RunOutputs&) = delete;
  RunOutputs& operator=(const RunOutputs&) = delete;
  ~RunOutputs() {
    if (done_) return;
    files_.clear();  // removes the temporary files
    std::error_code ec;
    for (auto it = created_dirs_.rbegin(); it != created_dirs_.rend(); ++it) std::filesystem::remove(*it, ec);
  }

  /// Creates `dir` and its missing parents, remembering which ones this run created.
  void create_dir(const std::string& dir) {
    namespace fs = std::filesystem;
    std::vector<fs::path> missing;
    for (fs::path p = dir; !p.empty() && !fs::exists(p); p = p.parent_path()) {
      missing.push_back(p);
      if (p.parent_path() == p) break;
    }
    for (auto it = missing.rbegin(); it != missing.rend(); ++it) {
      std::error_code ec;
      if (!fs::create_directory(*it, ec) && ec)
        throw RuntimeError("cannot create directory '" + it->string() + "': " + ec.message());
      created_dirs_.push_back(*it);
    }
  }

  /// Writes the .npy file `path` under a temporary name.
  void add_npy(const std::string& path, const std::vector<Index>& shape, const float* values) {
    auto file = std::make_unique<io::AtomicFile>(path);
    file->write(io::detail::serialize_npy<float>(shape, values, path));
    file->close();
    files_.push_back(std::move(file));
  }

  /// Renames every file into place.
  void commit() {
    std::vector<std::string> renamed;
    try {
      for (auto& f : files_) {
        f->commit();
        renamed.push_back(f->path());
      }
    } catch (...) {
      for (const auto& r : renamed) std::remove(r.c_str());
      throw;
    }
    done_ = true;
  }

 private:
  static void check_writable_dir(const std::string& option, const std::filesystem::path& dir,
                                 const std::string& target) {
    std::error_code ec;
    if (!std::filesystem::is_directory(dir, ec))
      throw RuntimeError("option '" + option + "': the directory of '" + target + "' (" + dir.string() +
                         ") does not exist");
    if (::access(dir.c_str(), W_OK | X_OK) != 0)
      throw RuntimeError("option '" + option + "': cannot write to directory '" + dir.string() + "': " +
                         std::strerror(errno));
  }

  std::vector<std::unique_ptr<io::AtomicFile>> files_;
  std::vector<std::filesystem::path> created_dirs_;
  bool done_ = false;
};

/// The --kernels option: "fast" (the prepared engine, the default) or "reference".
std::string kernels_option(const Args& args) {
  const std::string kernels = args.has("--kernels") ? args.text("--kernels") : "fast";
  if (kernels != "fast" && kernels != "reference")
    throw UsageError("option '--kernels': expected fast or reference, got '" + kernels + "'");
  return kernels;
}

int cmd_run(const Args& args) {
  const std::string weights_path = args.text("--weights");
  const std::string input_path = args.text("--input");
  const std::string output_path = args.text("--output");
  check_applicable_flags(args);
  const Index threads = args.integer("--threads", 1, 1, kMaxThreads);
  const std::string kernels = kernels_option(args);
  const kernels::Precision precision = precision_option(args);
  if (precision != kernels::Precision::f32 && kernels == "reference")
    throw UsageError("option '--precision': the reference kernels run in float (use --kernels fast)");
  if (precision == kernels::Precision::int8 && !args.has("--scales"))
    throw UsageError("option '--precision int8': needs --scales R.json, the activation ranges (sknet calibrate)");
  if (precision != kernels::Precision::int8 && args.has("--scales"))
    throw UsageError("option '--scales': only with --precision int8");
  std::shared_ptr<const ActivationRanges> ranges;
  if (args.has("--scales")) ranges = std::make_shared<const ActivationRanges>(ActivationRanges::load(args.text("--scales")));
  const bool want_attention = args.has("--attention-dir");
  // Every output location is checked before any work; nothing is created yet.
  RunOutputs::check_file("--output", output_path);
  if (want_attention) RunOutputs::check_dir("--attention-dir", args.text("--attention-dir"));

  // The input's header first: its shape is checked before the weights or the data are read.
  const io::NpyLayout layout = io::read_npy_layout(input_path);
  const std::vector<Index>& shape = layout.shape;
  if (shape.size() != 4)
    throw ShapeError(input_path + ": input rank: expected 4 ([N, C, H, W]), got " + std::to_string(shape.size()) +
                     " " + shape_string(shape));
  if (shape[0] < 1)
    throw ShapeError(input_path + ": batch size (dimension 0 of " + shape_string(shape) + "): expected >= 1, got " +
                     std::to_string(shape[0]));
  for (int axis : {2, 3})
    if (shape[axis] < 1 || shape[axis] > kMaxSide)
      throw ShapeError(input_path + ": input " + (axis == 2 ? "height" : "width") + " (dimension " +
                       std::to_string(axis) + " of " + shape_string(shape) + "): expected 1.." +
                       std::to_string(kMaxSide) + ", got " + std::to_string(shape[axis]));

  // The network: inferred from the checkpoint's names and shapes, or --arch (and the network flags)
  // checked against them; both from the file's header, before any weight is read.
  const std::pair<NetworkPlan, SKNetConfig> network =
      checkpoint_network(args, io::read_safetensors_header(weights_path), weights_path);
  const NetworkPlan& plan = network.first;
  const SKNetConfig& config = network.second;
  if (shape[1] != config.in_channels)
    throw ShapeError(input_path + ": input channels (dimension 1 of " + shape_string(shape) + "): expected " +
                     std::to_string(config.in_channels) + ", got " + std::to_string(shape[1]));
  AttentionMaps<float> attention;
  Tensor2<float> logits;
  const auto read_input = [&] {
    const NamedTensor<float> input = io::read_npy<float>(input_path);
    if (input.shape != shape) throw FormatError(input_path + ": the file changed while it was read");
    const ConstTensorMap4<float> nchw(input.values.data(), shape[0], shape[1], shape[2], shape[3]);
    return to_nhwc<float>(nchw);
  };
  if (kernels == "fast") {
    // The fast path reads the checkpoint layer by layer from the file, packing each layer before
    // the next is read: the float32 weights are never held whole.
    const PreparedNetwork fast =
        prepare_from_safetensors(plan, weights_path, PrepareOptions(int(threads), false, std::nullopt, precision, ranges));
    logits = fast.forward(read_input());
    attention = fast.attention_maps();
  } else {  // reference kernels (accumulating in double)
    with_reference_network(plan, [&](auto& net) {
      StateDict<float> weights = io::load_safetensors<float>(weights_path);
      load_state_dict(net, weights);
      weights = {};
      logits = forward_batch(net, read_input(), threads, want_attention ? &attention : nullptr);
    });
  }
  RunOutputs outputs;
  outputs.add_npy(output_path, {logits.dimension(0), logits.dimension(1)}, logits.data());
  if (want_attention) {
    const std::filesystem::path dir = args.text("--attention-dir");
    outputs.create_dir(dir.string());
    for (const auto& [unit, a] : attention)
      outputs.add_npy((dir / (unit + ".npy")).string(), {a.dimension(0), a.dimension(1), a.dimension(2)}, a.data());
  }
  outputs.commit();
  std::cerr << "sknet: wrote " << output_path << " " << shape_string(logits.dimensions()) << "\n";
  return 0;
}

int cmd_bench(const Args& args) {
  const SKNetConfig config = network_config(args);
  const Index batch = args.integer("--batch", 1, 1, kMaxBatch);
  const Index size = args.integer("--size", default_input_size(config), 1, kMaxSide);
  const Index threads = args.integer("--threads", 1, 1, kMaxThreads), reps = args.integer("--reps", 5, 1, kMaxReps);
  if (batch * size * size > kMaxBenchValues / config.in_channels)
    throw UsageError("options '--batch', '--size': the input of " + std::to_string(batch) + " x " +
                     std::to_string(size) + " x " + std::to_string(size) + " x " + std::to_string(config.in_channels) +
                     " values exceeds the limit of 2^30 (4 GiB of float32)");
  const NetworkPlan plan = network_plan(args, config);
  Tensor4<float> x(batch, size, size, config.in_channels);
  x.setRandom();
  const bool fast_path = kernels_option(args) == "fast";
  const kernels::Precision precision = precision_option(args);
  if (precision != kernels::Precision::f32 && !fast_path)
    throw UsageError("option '--precision': the reference kernels run in float (use --kernels fast)");
  std::optional<PreparedNetwork> fast;
  std::function<void()> reference;  // the reference network (unfused, accumulating in double)
  if (fast_path) {
    std::shared_ptr<const ActivationRanges> ranges;
    if (precision == kernels::Precision::int8)  // int8: ranges of the same random weights, calibrated on the input
      ranges = std::make_shared<const ActivationRanges>(
          calibrate(prepare_random(plan, 2019, PrepareOptions(int(threads))), std::vector<Tensor4<float>>{x}));
    fast.emplace(
        prepare_random(plan, 2019, PrepareOptions(int(threads), args.has("--profile"), std::nullopt, precision, ranges)));
  } else {
    with_paths(plan.paths > 0 ? plan.paths : 1, [&](auto m) {
      auto net = std::make_shared<Network<float, decltype(m)::value>>(plan);
      randomize<float>(*net, 2019);
      reference = [net, &x, threads] { forward_batch(*net, x, threads, nullptr); };
    });
  }
  const auto once = [&] {
    if (fast) {
      fast->forward(x);
    } else {
      reference();
    }
  };
  once();  // warm-up (plans the workspace)
  // Printed after the warm-up, so that a run that fails prints only its one error line.
  const std::string paths = plan.paths == 0 ? std::string() : ", M " + std::to_string(config.paths);
  std::printf("arch %s, batch %ld, %ldx%ld, threads %ld%s, isa %s, %s, precision %s\n", args.text("--arch").c_str(),
              long(batch), long(size), long(size), long(threads), paths.c_str(),
              fast_path ? kernels::isa_name(fast->isa()) : "reference",
              fast_path ? "prepared (SIMD kernels)" : "reference kernels",
              fast_path ? precision_label(precision, fast->isa()).c_str() : "f32");
  std::vector<double> ms;
  for (Index r = 0; r < reps; ++r) {
    const auto t0 = std::chrono::steady_clock::now();
    once();
    ms.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count());
    std::printf("rep %ld: %.3f ms\n", long(r + 1), ms.back());
  }
  std::sort(ms.begin(), ms.end());
  const double median = ms.size() % 2 ? ms[ms.size() / 2] : 0.5 * (ms[ms.size() / 2 - 1] + ms[ms.size() / 2]);
  if (fast && args.has("--profile")) {
    const ForwardProfile& p = fast->profile();
    for (int i = 0; i < ForwardProfile::kPhases; ++i)
      std::printf("phase %-10s %8.3f ms per forward\n", ForwardProfile::kNames[i], p.ms[i] / p.forwards);
  }
  std::printf("median_ms: %.3f\n", median);
  return 0;
}

int cmd_calibrate(const Args& args) {
  const std::string weights_path = args.text("--weights"), output_path = args.text("--output");
  check_applicable_flags(args);
  const Index threads = args.integer("--threads", 1, 1, kMaxThreads);
  RunOutputs::check_file("--output", output_path);
  const std::pair<NetworkPlan, SKNetConfig> network =
      checkpoint_network(args, io::read_safetensors_header(weights_path), weights_path);
  const std::vector<Tensor4<float>> batches = read_calibration_inputs(args.text("--inputs"), network.second.in_channels);
  const PreparedNetwork net = prepare_from_safetensors(network.first, weights_path, PrepareOptions(int(threads)));
  const ActivationRanges ranges = calibrate(net, batches);
  ranges.save(output_path);
  std::cerr << "sknet: calibrated " << ranges.by_name.size() << " activation ranges on " << ranges.images
            << " images; wrote " << output_path << "\n";
  return 0;
}

std::string one_line(std::string s) {
  for (std::size_t i = 0; (i = s.find('\n', i)) != std::string::npos;) s.replace(i, 1, "; ");
  return s;
}

}  // namespace

int main(int argc, char** argv) {
#if defined(__GLIBC__)
  // Large buffers (a layer's float32 weights while it is packed, the packed weights, the workspace)
  // come from mmap and go back to the system when freed. Left alone, glibc raises its mmap threshold
  // after the first such free and keeps the freed layers in the heap: 13-14 MB more peak memory for
  // `sknet run --arch sknet50`.
  mallopt(M_MMAP_THRESHOLD, 128 * 1024);
#endif
  if (argc < 2) {  // a usage error: the usage goes to stderr
    std::cerr << kUsage;
    return 2;
  }
  if (std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
    std::cout << kUsage;
    return 0;
  }
  const std::string command = argv[1];
  try {
    if (command == "info") return cmd_info(Args(argc, argv, with_network_flags({"--size", "--weights"})));
    if (command == "run")
      return cmd_run(Args(argc, argv,
                          with_network_flags({"--weights", "--input", "--output", "--attention-dir", "--threads", "--kernels",
                                              "--precision", "--scales"})));
    if (command == "calibrate")
      return cmd_calibrate(Args(argc, argv, with_network_flags({"--weights", "--inputs", "--output", "--threads"})));
    if (command == "bench")
      return cmd_bench(
          Args(argc, argv, with_network_flags({"--batch", "--size", "--threads", "--reps", "--profile", "--kernels",
                                               "--precision"})));
    throw UsageError("unknown command '" + command + "' (expected info, run, bench or calibrate)");
  } catch (const UsageError& e) {
    std::cerr << "sknet: " << one_line(e.what()) << " (see sknet --help)\n";
    return 2;
  } catch (const CheckpointMismatch& e) {  // a report of several lines, one difference per line
    std::cerr << "sknet: error: " << e.what() << "\n";
    return 1;
  } catch (const std::bad_alloc&) {
    std::cerr << "sknet: error: out of memory (the network or the input is too large for this machine)\n";
    return 1;
  } catch (const std::exception& e) {
    std::cerr << "sknet: error: " << one_line(e.what()) << "\n";
    return 1;
  }
}
