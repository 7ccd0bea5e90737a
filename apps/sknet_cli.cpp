// The `sknet` command: network summaries, inference on PyTorch/timm checkpoints, and timing.
//
//   sknet info  --arch A [--size S] [network flags]
//   sknet run   --arch A --weights W.safetensors --input X.npy --output Y.npy [--attention-dir DIR]
//               [--threads T] [network flags]
//   sknet bench --arch A [--batch B] [--size S] [--threads T] [--reps R] [network flags]
#include <sknet/io/npy.hpp>
#include <sknet/io/safetensors.hpp>
#include <sknet/models/prepared_sknet.hpp>
#include <sknet/sknet.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
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

const char* const kUsage =
    "usage: sknet info  --arch A [--size S] [network flags]\n"
    "       sknet run   --arch A --weights W.safetensors --input X.npy --output Y.npy\n"
    "                   [--attention-dir DIR] [--threads T] [--kernels fast|reference] [network flags]\n"
    "       sknet bench --arch A [--batch B] [--size S] [--threads T] [--reps R] [--profile 1] [network flags]\n"
    "arch: sknet26, sknet50, sknet101\n"
    "network flags: --classes K --paths M --groups G --reduction R --min-width L --base-width B\n"
    "               --in-channels C --stem-width W --stem imagenet|small --branch-kernel dilated|full\n"
    "               --layers a,b,c,d (override the depths) --planes a,b,c,d --strides a,b,c,d\n"
    "input X.npy: float32 [N, C, H, W] (PyTorch order); output Y.npy: float32 [N, classes];\n"
    "attention: DIR/<unit>.npy, float32 [N, M, C], one per SK unit (layer1.0.npy, ...)\n";

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
  Index integer(const std::string& key, Index fallback, Index min_value) const {
    if (!has(key)) return fallback;
    const Index v = parse_integer(key, text(key));
    if (v < min_value)
      throw UsageError("option '" + key + "': expected an integer >= " + std::to_string(min_value) + ", got " +
                       std::to_string(v));
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
  static Index parse_integer(const std::string& key, const std::string& s) {
    std::size_t used = 0;
    long long v = 0;
    try {
      v = std::stoll(s, &used);
    } catch (const std::exception&) {
      used = 0;
    }
    if (s.empty() || used != s.size()) throw UsageError("option '" + key + "': expected an integer, got '" + s + "'");
    return static_cast<Index>(v);
  }
  std::map<std::string, std::string> values_;
};

const std::set<std::string> kNetworkFlags{"--arch",        "--classes",    "--paths",  "--groups",
                                          "--reduction",   "--min-width",  "--base-width",
                                          "--in-channels", "--stem-width", "--stem",   "--branch-kernel",
                                          "--layers",      "--planes",     "--strides"};

std::set<std::string> with_network_flags(std::set<std::string> extra) {
  extra.insert(kNetworkFlags.begin(), kNetworkFlags.end());
  return extra;
}

SKNetConfig network_config(const Args& args, Index default_classes) {
  SKNetConfig c;
  c.layers = args.list("--layers", sknet_depths(args.text("--arch")));
  c.planes = args.list("--planes", c.planes);
  c.strides = args.list("--strides", c.strides);
  c.paths = args.integer("--paths", 2, 1);
  c.groups = args.integer("--groups", c.groups, 1);
  c.reduction = args.integer("--reduction", c.reduction, 1);
  c.min_width = args.integer("--min-width", c.min_width, 1);
  c.base_width = args.integer("--base-width", c.base_width, 1);
  c.num_classes = args.integer("--classes", default_classes, 1);
  c.in_channels = args.integer("--in-channels", c.in_channels, 1);
  c.stem_width = args.integer("--stem-width", c.stem_width, 1);
  if (args.has("--stem")) {
    const std::string stem = args.text("--stem");
    if (stem != "imagenet" && stem != "small")
      throw UsageError("option '--stem': expected imagenet or small, got '" + stem + "'");
    c.stem = stem == "small" ? Stem::small : Stem::imagenet;
  }
  if (args.has("--branch-kernel")) {
    const std::string k = args.text("--branch-kernel");
    if (k != "dilated" && k != "full")
      throw UsageError("option '--branch-kernel': expected dilated or full, got '" + k + "'");
    c.branch_kernel = k == "full" ? BranchKernel::full : BranchKernel::dilated;
  }
  c.validate("sknet");
  return c;
}

/// Runs the batch in `threads` contiguous slices of images in parallel (each image is independent,
/// so the result does not depend on the thread count).
template <int M>
Tensor2<float> forward_batch(const SKNet<float, M>& net, const Tensor4<float>& nhwc, Index threads,
                             AttentionMaps<float>* attention) {
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
  for (Index s = 1; s < slices; ++s) pool.emplace_back(work, s);
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

int cmd_info(const Args& args) {
  const SKNetConfig config = network_config(args, 1000);
  const Index size = args.integer("--size", 224, 1);
  return with_paths(config.paths, [&](auto m) {
    SKNet<float, decltype(m)::value> net(config);
    std::cout << net.summary(size, size).to_string();
    std::cout << "isa: " << kernels::isa_name(kernels::active_isa()) << " (cpu: " << kernels::isa_name(kernels::cpu_isa())
              << "; SKNET_ISA=portable|avx2|avx512 narrows it)\n";
    return 0;
  });
}

int cmd_run(const Args& args) {
  const std::string weights_path = args.text("--weights");
  const std::string input_path = args.text("--input");
  const std::string output_path = args.text("--output");
  const Index threads = args.integer("--threads", 1, 1);
  const std::string kernels = args.has("--kernels") ? args.text("--kernels") : "fast";
  if (kernels != "fast" && kernels != "reference")
    throw UsageError("option '--kernels': expected fast or reference, got '" + kernels + "'");
  StateDict<float> weights = io::load_safetensors<float>(weights_path);
  const auto fc = weights.find("fc.weight");
  if (fc == weights.end() || fc->second.shape.size() != 2)
    throw FormatError(weights_path + ": expected a 2-D 'fc.weight' [classes, features] in the checkpoint");
  const Index classes = fc->second.shape[0];
  if (args.has("--classes") && args.integer("--classes", 0, 1) != classes)
    throw UsageError("option '--classes': the checkpoint has " + std::to_string(classes) + " classes, not " +
                     args.text("--classes"));
  const SKNetConfig config = network_config(args, classes);

  const NamedTensor<float> input = io::read_npy<float>(input_path);
  if (input.shape.size() != 4)
    throw ShapeError(input_path + ": input rank: expected 4 ([N, C, H, W]), got " +
                     std::to_string(input.shape.size()) + " " + shape_string(input.shape));
  if (input.shape[1] != config.in_channels)
    throw ShapeError(input_path + ": input channels (dimension 1 of " + shape_string(input.shape) + "): expected " +
                     std::to_string(config.in_channels) + ", got " + std::to_string(input.shape[1]));
  const ConstTensorMap4<float> nchw(input.values.data(), input.shape[0], input.shape[1], input.shape[2],
                                    input.shape[3]);
  const Tensor4<float> nhwc = to_nhwc<float>(nchw);

  return with_paths(config.paths, [&](auto m) {
    constexpr int M = decltype(m)::value;
    AttentionMaps<float> attention;
    const bool want_attention = args.has("--attention-dir");
    Tensor2<float> logits;
    if (kernels == "fast" && config.branch_kernel == BranchKernel::dilated) {
      // The fast path consumes the checkpoint layer by layer: the weights are held once.
      PreparedSKNet<M> fast = prepare_from_state_dict<M>(config, std::move(weights), PrepareOptions{int(threads)});
      logits = fast.forward(nhwc);
      attention = fast.attention_maps();
    } else {  // reference kernels (accumulating in double; also for true (2m+1)x(2m+1) branch kernels)
      SKNet<float, M> net(config);
      load_state_dict(net, weights);
      logits = forward_batch(net, nhwc, threads, want_attention ? &attention : nullptr);
    }
    io::write_npy<float>(output_path, {logits.dimension(0), logits.dimension(1)}, logits.data());
    if (want_attention) {
      const std::filesystem::path dir = args.text("--attention-dir");
      std::filesystem::create_directories(dir);
      for (const auto& [unit, a] : attention)
        io::write_npy<float>((dir / (unit + ".npy")).string(), {a.dimension(0), a.dimension(1), a.dimension(2)},
                             a.data());
    }
    std::cerr << "sknet: wrote " << output_path << " " << shape_string(logits.dimensions()) << "\n";
    return 0;
  });
}

int cmd_bench(const Args& args) {
  const SKNetConfig config = network_config(args, 1000);
  const Index batch = args.integer("--batch", 1, 1), size = args.integer("--size", 224, 1);
  const Index threads = args.integer("--threads", 1, 1), reps = args.integer("--reps", 5, 1);
  return with_paths(config.paths, [&](auto m) {
    constexpr int M = decltype(m)::value;
    Tensor4<float> x(batch, size, size, config.in_channels);
    x.setRandom();
    const bool fast_path = config.branch_kernel == BranchKernel::dilated;
    std::optional<PreparedSKNet<M>> fast;
    std::optional<SKNet<float, M>> net;
    if (fast_path) {
      fast.emplace(prepare_random<M>(config, 2019, PrepareOptions{int(threads), args.has("--profile")}));
    } else {
      net.emplace(config);
      randomize<float>(*net, 2019);
    }
    std::printf("arch %s, batch %ld, %ldx%ld, threads %ld, M %ld, isa %s, %s\n", args.text("--arch").c_str(),
                long(batch), long(size), long(size), long(threads), long(config.paths),
                fast_path ? kernels::isa_name(kernels::active_isa()) : "reference",
                fast_path ? "prepared (SIMD kernels)" : "reference kernels");
    const auto once = [&] {
      if (fast) {
        fast->forward(x);
      } else {
        forward_batch(*net, x, threads, nullptr);
      }
    };
    once();  // warm-up (plans the workspace)
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
  });
}

std::string one_line(std::string s) {
  for (std::size_t i = 0; (i = s.find('\n', i)) != std::string::npos;) s.replace(i, 1, "; ");
  return s;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2 || std::string(argv[1]) == "--help" || std::string(argv[1]) == "-h") {
    std::cout << kUsage;
    return argc < 2 ? 2 : 0;
  }
  const std::string command = argv[1];
  try {
    if (command == "info") return cmd_info(Args(argc, argv, with_network_flags({"--size"})));
    if (command == "run")
      return cmd_run(Args(argc, argv,
                          with_network_flags({"--weights", "--input", "--output", "--attention-dir", "--threads", "--kernels"})));
    if (command == "bench")
      return cmd_bench(Args(argc, argv, with_network_flags({"--batch", "--size", "--threads", "--reps", "--profile"})));
    throw UsageError("unknown command '" + command + "' (expected info, run or bench)");
  } catch (const UsageError& e) {
    std::cerr << "sknet: " << one_line(e.what()) << " (see sknet --help)\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "sknet: error: " << one_line(e.what()) << "\n";
    return 1;
  }
}
