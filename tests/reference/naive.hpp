// Naive reference ("oracle") implementation of the operations used by sknet.
//
// This header is deliberately independent of the library: it uses PyTorch's
// NCHW layout, plain nested loops and double accumulation everywhere, so that
// it is easy to check by eye. It is only meant for tests.
#pragma once

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <random>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace sknet_test {
namespace naive {

// ---------------------------------------------------------------------------
// Array: dense C-order tensor of doubles.
// ---------------------------------------------------------------------------
struct Array {
    std::vector<std::int64_t> shape;
    std::vector<double> data;

    Array() = default;

    // Zero-filled array of the given shape.
    explicit Array(std::vector<std::int64_t> s) : shape(std::move(s)) {
        data.assign(static_cast<std::size_t>(count(shape)), 0.0);
    }
    Array(std::initializer_list<std::int64_t> s) : Array(std::vector<std::int64_t>(s)) {}

    // Array of the given shape with the given values (size must match).
    Array(std::vector<std::int64_t> s, std::vector<double> values)
        : shape(std::move(s)), data(std::move(values)) {
        if (static_cast<std::int64_t>(data.size()) != count(shape))
            throw std::invalid_argument("naive::Array: data size does not match shape");
    }

    static std::int64_t count(const std::vector<std::int64_t>& s) {
        std::int64_t n = 1;
        for (std::int64_t d : s) {
            if (d < 0) throw std::invalid_argument("naive::Array: negative dimension");
            n *= d;
        }
        return n;
    }

    std::int64_t numel() const { return count(shape); }
    int rank() const { return static_cast<int>(shape.size()); }
    std::int64_t dim(int i) const { return shape.at(static_cast<std::size_t>(i)); }

    // Flat C-order offsets.
    std::size_t offset(std::int64_t i0) const {
        return static_cast<std::size_t>(i0);
    }
    std::size_t offset(std::int64_t i0, std::int64_t i1) const {
        return static_cast<std::size_t>(i0 * shape[1] + i1);
    }
    std::size_t offset(std::int64_t i0, std::int64_t i1, std::int64_t i2) const {
        return static_cast<std::size_t>((i0 * shape[1] + i1) * shape[2] + i2);
    }
    std::size_t offset(std::int64_t i0, std::int64_t i1, std::int64_t i2, std::int64_t i3) const {
        return static_cast<std::size_t>(((i0 * shape[1] + i1) * shape[2] + i2) * shape[3] + i3);
    }

    double& at(std::int64_t i0) { return data[offset(i0)]; }
    double at(std::int64_t i0) const { return data[offset(i0)]; }
    double& at(std::int64_t i0, std::int64_t i1) { return data[offset(i0, i1)]; }
    double at(std::int64_t i0, std::int64_t i1) const { return data[offset(i0, i1)]; }
    double& at(std::int64_t i0, std::int64_t i1, std::int64_t i2) { return data[offset(i0, i1, i2)]; }
    double at(std::int64_t i0, std::int64_t i1, std::int64_t i2) const { return data[offset(i0, i1, i2)]; }
    double& at(std::int64_t i0, std::int64_t i1, std::int64_t i2, std::int64_t i3) {
        return data[offset(i0, i1, i2, i3)];
    }
    double at(std::int64_t i0, std::int64_t i1, std::int64_t i2, std::int64_t i3) const {
        return data[offset(i0, i1, i2, i3)];
    }
};

namespace detail {
inline void require(bool cond, const char* what) {
    if (!cond) throw std::invalid_argument(std::string("naive: ") + what);
}
}  // namespace detail

// ---------------------------------------------------------------------------
// Random fill (deterministic for a given seed).
// ---------------------------------------------------------------------------
inline void fill_uniform(Array& a, std::uint64_t seed, double lo, double hi) {
    std::mt19937_64 rng(seed);
    std::uniform_real_distribution<double> dist(lo, hi);
    for (double& v : a.data) v = dist(rng);
}

// ---------------------------------------------------------------------------
// conv2d: input [N, C, H, W], weight [O, C/G, KH, KW], bias [O] or nullptr.
// Output [N, O, Ho, Wo], Ho = floor((H + 2*pad_h - dil_h*(KH-1) - 1)/stride_h) + 1.
// ---------------------------------------------------------------------------
inline std::int64_t conv_out_size(std::int64_t in, std::int64_t k, int stride, int pad, int dil) {
    return (in + 2 * pad - static_cast<std::int64_t>(dil) * (k - 1) - 1) / stride + 1;
}

inline Array conv2d(const Array& input, const Array& weight, const Array* bias, int stride_h,
                    int stride_w, int pad_h, int pad_w, int dil_h, int dil_w, int groups) {
    detail::require(input.rank() == 4, "conv2d: input must be rank 4");
    detail::require(weight.rank() == 4, "conv2d: weight must be rank 4");
    detail::require(stride_h > 0 && stride_w > 0 && dil_h > 0 && dil_w > 0 && groups > 0,
                    "conv2d: stride, dilation and groups must be positive");
    detail::require(pad_h >= 0 && pad_w >= 0, "conv2d: padding must be non-negative");
    const std::int64_t N = input.dim(0), C = input.dim(1), H = input.dim(2), W = input.dim(3);
    const std::int64_t O = weight.dim(0), CG = weight.dim(1), KH = weight.dim(2),
                       KW = weight.dim(3);
    detail::require(C % groups == 0 && O % groups == 0, "conv2d: channels not divisible by groups");
    detail::require(CG == C / groups, "conv2d: weight dim 1 must be C / groups");
    if (bias) detail::require(bias->rank() == 1 && bias->dim(0) == O, "conv2d: bias must be [O]");
    const std::int64_t Ho = conv_out_size(H, KH, stride_h, pad_h, dil_h);
    const std::int64_t Wo = conv_out_size(W, KW, stride_w, pad_w, dil_w);
    detail::require(Ho > 0 && Wo > 0, "conv2d: empty output");
    const std::int64_t OG = O / groups;

    Array out({N, O, Ho, Wo});
    for (std::int64_t n = 0; n < N; ++n)
        for (std::int64_t o = 0; o < O; ++o) {
            const std::int64_t g = o / OG;
            for (std::int64_t oh = 0; oh < Ho; ++oh)
                for (std::int64_t ow = 0; ow < Wo; ++ow) {
                    double acc = bias ? bias->at(o) : 0.0;
                    for (std::int64_t ci = 0; ci < CG; ++ci) {
                        const std::int64_t c = g * CG + ci;
                        for (std::int64_t kh = 0; kh < KH; ++kh) {
                            const std::int64_t ih = oh * stride_h - pad_h + kh * dil_h;
                            if (ih < 0 || ih >= H) continue;  // zero padding
                            for (std::int64_t kw = 0; kw < KW; ++kw) {
                                const std::int64_t iw = ow * stride_w - pad_w + kw * dil_w;
                                if (iw < 0 || iw >= W) continue;
                                acc += input.at(n, c, ih, iw) * weight.at(o, ci, kh, kw);
                            }
                        }
                    }
                    out.at(n, o, oh, ow) = acc;
                }
        }
    return out;
}

// ---------------------------------------------------------------------------
// batch_norm (inference). x is [N, C, ...] (rank >= 2); params are [C].
// y = (x - mean) / sqrt(var + eps) * weight + bias
// ---------------------------------------------------------------------------
inline Array batch_norm(const Array& x, const Array& weight, const Array& bias, const Array& mean,
                        const Array& var, double eps) {
    detail::require(x.rank() >= 2, "batch_norm: input must have rank >= 2");
    const std::int64_t N = x.dim(0), C = x.dim(1);
    for (const Array* p : {&weight, &bias, &mean, &var})
        detail::require(p->numel() == C, "batch_norm: parameter size must equal C");
    std::int64_t inner = 1;
    for (int i = 2; i < x.rank(); ++i) inner *= x.dim(i);
    Array y = x;
    for (std::int64_t n = 0; n < N; ++n)
        for (std::int64_t c = 0; c < C; ++c) {
            const double scale = weight.data[c] / std::sqrt(var.data[c] + eps);
            for (std::int64_t i = 0; i < inner; ++i) {
                const std::size_t k = static_cast<std::size_t>((n * C + c) * inner + i);
                y.data[k] = (x.data[k] - mean.data[c]) * scale + bias.data[c];
            }
        }
    return y;
}

inline Array relu(Array x) {
    for (double& v : x.data) v = v > 0.0 ? v : 0.0;
    return x;
}

// ---------------------------------------------------------------------------
// max_pool2d, PyTorch semantics: padding acts as -infinity, floor mode,
// dilation 1. Output size floor((H + 2p - k)/s) + 1.
// ---------------------------------------------------------------------------
inline Array max_pool2d(const Array& x, int kernel, int stride, int padding) {
    detail::require(x.rank() == 4, "max_pool2d: input must be rank 4");
    detail::require(kernel > 0 && stride > 0 && padding >= 0, "max_pool2d: bad parameters");
    detail::require(2 * padding <= kernel, "max_pool2d: padding must be <= kernel / 2");
    const std::int64_t N = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3);
    const std::int64_t Ho = conv_out_size(H, kernel, stride, padding, 1);
    const std::int64_t Wo = conv_out_size(W, kernel, stride, padding, 1);
    detail::require(Ho > 0 && Wo > 0, "max_pool2d: empty output");
    Array out({N, C, Ho, Wo});
    for (std::int64_t n = 0; n < N; ++n)
        for (std::int64_t c = 0; c < C; ++c)
            for (std::int64_t oh = 0; oh < Ho; ++oh)
                for (std::int64_t ow = 0; ow < Wo; ++ow) {
                    double m = -std::numeric_limits<double>::infinity();
                    for (std::int64_t kh = 0; kh < kernel; ++kh) {
                        const std::int64_t ih = oh * stride - padding + kh;
                        if (ih < 0 || ih >= H) continue;
                        for (std::int64_t kw = 0; kw < kernel; ++kw) {
                            const std::int64_t iw = ow * stride - padding + kw;
                            if (iw < 0 || iw >= W) continue;
                            m = std::max(m, x.at(n, c, ih, iw));
                        }
                    }
                    out.at(n, c, oh, ow) = m;
                }
    return out;
}

// global_avg_pool: [N, C, H, W] -> [N, C]
inline Array global_avg_pool(const Array& x) {
    detail::require(x.rank() == 4, "global_avg_pool: input must be rank 4");
    const std::int64_t N = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3);
    detail::require(H * W > 0, "global_avg_pool: empty spatial extent");
    Array out({N, C});
    for (std::int64_t n = 0; n < N; ++n)
        for (std::int64_t c = 0; c < C; ++c) {
            double s = 0.0;
            for (std::int64_t h = 0; h < H; ++h)
                for (std::int64_t w = 0; w < W; ++w) s += x.at(n, c, h, w);
            out.at(n, c) = s / static_cast<double>(H * W);
        }
    return out;
}

// linear: x [N, in], weight [out, in] (trailing dims of weight, e.g. a 1x1 conv
// weight [out, in, 1, 1], are flattened), bias [out] or nullptr -> [N, out].
inline Array linear(const Array& x, const Array& weight, const Array* bias) {
    detail::require(x.rank() == 2, "linear: input must be rank 2");
    detail::require(weight.rank() >= 2, "linear: weight must have rank >= 2");
    const std::int64_t N = x.dim(0), In = x.dim(1), Out = weight.dim(0);
    detail::require(weight.numel() == Out * In, "linear: weight must be [out, in]");
    if (bias) detail::require(bias->numel() == Out, "linear: bias must be [out]");
    Array y({N, Out});
    for (std::int64_t n = 0; n < N; ++n)
        for (std::int64_t o = 0; o < Out; ++o) {
            double acc = bias ? bias->data[o] : 0.0;
            for (std::int64_t i = 0; i < In; ++i)
                acc += weight.data[static_cast<std::size_t>(o * In + i)] * x.at(n, i);
            y.at(n, o) = acc;
        }
    return y;
}

// ---------------------------------------------------------------------------
// Selective Kernel convolution.
// ---------------------------------------------------------------------------
struct SKParams {
    std::vector<Array> conv_weight;  // per path: [C_out, C_in/G, k, k]
    std::vector<Array> bn_weight, bn_bias, bn_mean, bn_var;  // per path: [C_out]
    Array fc_reduce;  // [d, C_out, 1, 1]
    Array attn_bn_weight, attn_bn_bias, attn_bn_mean, attn_bn_var;  // [d]
    Array fc_select;  // [M * C_out, d, 1, 1]
};

struct SKConfig {
    int in_channels;
    int out_channels;
    int paths;      // M
    int groups;     // G
    int reduction;  // r
    int min_width;  // L
    int stride;
    bool full_kernels;
};

struct SKResult {
    Array output;     // [N, C_out, Ho, Wo]
    Array attention;  // [N, M, C_out]
};

// d = max(C / r, L)
inline int sk_attn_width(int channels, int reduction, int min_width) {
    detail::require(reduction > 0, "sk_attn_width: reduction must be positive");
    return std::max(channels / reduction, min_width);
}

// Geometry of branch m (0-based).
struct SKBranchGeometry {
    int kernel, dilation, padding;
};
inline SKBranchGeometry sk_branch_geometry(int m, bool full_kernels) {
    if (full_kernels) return {2 * (m + 1) + 1, 1, m + 1};
    return {3, m + 1, m + 1};
}

inline SKResult sk_conv(const Array& input, const SKParams& p, const SKConfig& cfg) {
    const int M = cfg.paths;
    const std::int64_t C = cfg.out_channels;
    detail::require(M >= 1, "sk_conv: paths must be >= 1");
    detail::require(input.rank() == 4 && input.dim(1) == cfg.in_channels,
                    "sk_conv: input must be [N, in_channels, H, W]");
    detail::require(static_cast<int>(p.conv_weight.size()) == M &&
                        static_cast<int>(p.bn_weight.size()) == M &&
                        static_cast<int>(p.bn_bias.size()) == M &&
                        static_cast<int>(p.bn_mean.size()) == M &&
                        static_cast<int>(p.bn_var.size()) == M,
                    "sk_conv: need one conv/bn parameter set per path");
    const std::int64_t d = sk_attn_width(cfg.out_channels, cfg.reduction, cfg.min_width);
    detail::require(p.fc_reduce.numel() == d * C, "sk_conv: fc_reduce must be [d, C, 1, 1]");
    detail::require(p.fc_select.numel() == M * C * d,
                    "sk_conv: fc_select must be [M*C, d, 1, 1]");
    const double eps = 1e-5;

    // Split.
    std::vector<Array> U;
    for (int m = 0; m < M; ++m) {
        const SKBranchGeometry g = sk_branch_geometry(m, cfg.full_kernels);
        detail::require(p.conv_weight[m].rank() == 4 && p.conv_weight[m].dim(0) == C &&
                            p.conv_weight[m].dim(2) == g.kernel &&
                            p.conv_weight[m].dim(3) == g.kernel,
                        "sk_conv: branch conv weight has wrong shape");
        Array y = conv2d(input, p.conv_weight[m], nullptr, cfg.stride, cfg.stride, g.padding,
                         g.padding, g.dilation, g.dilation, cfg.groups);
        y = batch_norm(y, p.bn_weight[m], p.bn_bias[m], p.bn_mean[m], p.bn_var[m], eps);
        U.push_back(relu(std::move(y)));
    }
    for (int m = 1; m < M; ++m)
        detail::require(U[m].shape == U[0].shape, "sk_conv: branch outputs differ in shape");
    const std::int64_t N = U[0].dim(0), Ho = U[0].dim(2), Wo = U[0].dim(3);

    // Fuse.
    Array Usum = U[0];
    for (int m = 1; m < M; ++m)
        for (std::size_t i = 0; i < Usum.data.size(); ++i) Usum.data[i] += U[m].data[i];
    const Array s = global_avg_pool(Usum);  // [N, C]
    Array z = linear(s, p.fc_reduce, nullptr);  // [N, d]
    z = relu(batch_norm(z, p.attn_bn_weight, p.attn_bn_bias, p.attn_bn_mean, p.attn_bn_var, eps));

    // Select.
    const Array logits = linear(z, p.fc_select, nullptr);  // [N, M*C], index m*C + c
    SKResult r;
    r.attention = Array({N, static_cast<std::int64_t>(M), C});
    for (std::int64_t n = 0; n < N; ++n)
        for (std::int64_t c = 0; c < C; ++c) {
            double mx = -std::numeric_limits<double>::infinity();
            for (int m = 0; m < M; ++m) mx = std::max(mx, logits.at(n, m * C + c));
            double sum = 0.0;
            for (int m = 0; m < M; ++m) {
                const double e = std::exp(logits.at(n, m * C + c) - mx);
                r.attention.at(n, m, c) = e;
                sum += e;
            }
            for (int m = 0; m < M; ++m) r.attention.at(n, m, c) /= sum;
        }
    r.output = Array({N, C, Ho, Wo});
    for (std::int64_t n = 0; n < N; ++n)
        for (std::int64_t c = 0; c < C; ++c)
            for (std::int64_t h = 0; h < Ho; ++h)
                for (std::int64_t w = 0; w < Wo; ++w) {
                    double v = 0.0;
                    for (int m = 0; m < M; ++m) v += r.attention.at(n, m, c) * U[m].at(n, c, h, w);
                    r.output.at(n, c, h, w) = v;
                }
    return r;
}

// Convenience: SKParams with correctly shaped zero arrays (BN weight/var = 1)
// for a given config.
inline SKParams sk_make_params(const SKConfig& cfg) {
    SKParams p;
    const std::int64_t C = cfg.out_channels;
    const std::int64_t d = sk_attn_width(cfg.out_channels, cfg.reduction, cfg.min_width);
    for (int m = 0; m < cfg.paths; ++m) {
        const SKBranchGeometry g = sk_branch_geometry(m, cfg.full_kernels);
        p.conv_weight.push_back(Array({C, cfg.in_channels / cfg.groups, g.kernel, g.kernel}));
        Array one({C});
        std::fill(one.data.begin(), one.data.end(), 1.0);
        p.bn_weight.push_back(one);
        p.bn_bias.push_back(Array({C}));
        p.bn_mean.push_back(Array({C}));
        p.bn_var.push_back(one);
    }
    p.fc_reduce = Array({d, C, 1, 1});
    p.attn_bn_weight = Array({d});
    std::fill(p.attn_bn_weight.data.begin(), p.attn_bn_weight.data.end(), 1.0);
    p.attn_bn_bias = Array({d});
    p.attn_bn_mean = Array({d});
    p.attn_bn_var = p.attn_bn_weight;
    p.fc_select = Array({cfg.paths * C, d, 1, 1});
    return p;
}

}  // namespace naive
}  // namespace sknet_test
