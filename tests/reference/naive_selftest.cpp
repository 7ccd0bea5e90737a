// Self-tests for the naive reference implementation and the fixture reader.
// These make the oracle trustworthy before the library is compared against it.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "../support/safetensors_fixture.hpp"
#include "naive.hpp"

using sknet_test::naive::Array;
namespace naive = sknet_test::naive;

namespace {

void require_close(const Array& a, const Array& b, double tol = 1e-12) {
    REQUIRE(a.shape == b.shape);
    for (std::size_t i = 0; i < a.data.size(); ++i) {
        INFO("index " << i);
        REQUIRE(a.data[i] == Approx(b.data[i]).margin(tol).epsilon(tol));
    }
}

Array random_array(std::vector<std::int64_t> shape, std::uint64_t seed, double lo = -1.0,
                   double hi = 1.0) {
    Array a(std::move(shape));
    naive::fill_uniform(a, seed, lo, hi);
    return a;
}

// Channels [c0, c0 + count) of an NCHW array.
Array slice_channels(const Array& x, std::int64_t c0, std::int64_t count) {
    Array out({x.dim(0), count, x.dim(2), x.dim(3)});
    for (std::int64_t n = 0; n < x.dim(0); ++n)
        for (std::int64_t c = 0; c < count; ++c)
            for (std::int64_t h = 0; h < x.dim(2); ++h)
                for (std::int64_t w = 0; w < x.dim(3); ++w)
                    out.at(n, c, h, w) = x.at(n, c0 + c, h, w);
    return out;
}

// Rows [o0, o0 + count) of a conv weight [O, C, KH, KW].
Array slice_dim0(const Array& x, std::int64_t o0, std::int64_t count) {
    Array out({count, x.dim(1), x.dim(2), x.dim(3)});
    for (std::int64_t o = 0; o < count; ++o)
        for (std::int64_t c = 0; c < x.dim(1); ++c)
            for (std::int64_t h = 0; h < x.dim(2); ++h)
                for (std::int64_t w = 0; w < x.dim(3); ++w)
                    out.at(o, c, h, w) = x.at(o0 + o, c, h, w);
    return out;
}

// Randomised SK parameters (BN var strictly positive).
naive::SKParams random_sk_params(const naive::SKConfig& cfg, std::uint64_t seed) {
    naive::SKParams p = naive::sk_make_params(cfg);
    std::uint64_t s = seed;
    for (int m = 0; m < cfg.paths; ++m) {
        naive::fill_uniform(p.conv_weight[m], ++s, -0.5, 0.5);
        naive::fill_uniform(p.bn_weight[m], ++s, 0.5, 1.5);
        naive::fill_uniform(p.bn_bias[m], ++s, -0.2, 0.2);
        naive::fill_uniform(p.bn_mean[m], ++s, -0.1, 0.1);
        naive::fill_uniform(p.bn_var[m], ++s, 0.5, 1.5);
    }
    naive::fill_uniform(p.fc_reduce, ++s, -0.5, 0.5);
    naive::fill_uniform(p.attn_bn_weight, ++s, 0.5, 1.5);
    naive::fill_uniform(p.attn_bn_bias, ++s, 0.2, 0.6);  // keep z alive through the ReLU
    naive::fill_uniform(p.attn_bn_mean, ++s, -0.1, 0.1);
    naive::fill_uniform(p.attn_bn_var, ++s, 0.5, 1.5);
    naive::fill_uniform(p.fc_select, ++s, -1.0, 1.0);
    return p;
}

}  // namespace

// ---------------------------------------------------------------------------
// Array basics
// ---------------------------------------------------------------------------
TEST_CASE("naive::Array shape, numel and C-order access", "[naive]") {
    Array a({2, 3, 4, 5});
    REQUIRE(a.numel() == 120);
    REQUIRE(a.data.size() == 120);
    for (double v : a.data) REQUIRE(v == 0.0);
    a.at(1, 2, 3, 4) = 7.0;
    REQUIRE(a.data.back() == 7.0);
    a.at(0, 0, 0, 1) = 3.0;
    REQUIRE(a.data[1] == 3.0);
    a.at(0, 1, 0, 0) = 5.0;
    REQUIRE(a.data[20] == 5.0);

    Array b({3});
    REQUIRE(b.numel() == 3);
    Array e({2, 0, 3});
    REQUIRE(e.numel() == 0);
}

TEST_CASE("naive::fill_uniform is deterministic and in range", "[naive]") {
    Array a({100}), b({100}), c({100});
    naive::fill_uniform(a, 42, -2.0, 3.0);
    naive::fill_uniform(b, 42, -2.0, 3.0);
    naive::fill_uniform(c, 43, -2.0, 3.0);
    REQUIRE(a.data == b.data);
    REQUIRE(a.data != c.data);
    for (double v : a.data) {
        REQUIRE(v >= -2.0);
        REQUIRE(v < 3.0);
    }
}

// ---------------------------------------------------------------------------
// conv2d
// ---------------------------------------------------------------------------
TEST_CASE("conv2d: hand-computed 1-channel 3x3 example", "[naive][conv]") {
    // Input 1..9, all-ones 3x3 kernel, padding 1, bias 0.5:
    // each output is the sum of the 3x3 neighbourhood (zeros outside) + 0.5.
    Array x({1, 1, 3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9});
    Array w({1, 1, 3, 3}, {1, 1, 1, 1, 1, 1, 1, 1, 1});
    Array bias({1}, {0.5});
    Array y = naive::conv2d(x, w, &bias, 1, 1, 1, 1, 1, 1, 1);
    Array expected({1, 1, 3, 3}, {12, 21, 16, 27, 45, 33, 24, 39, 28});
    for (double& v : expected.data) v += 0.5;
    require_close(y, expected);

    // No padding: a single output = 45.
    Array y0 = naive::conv2d(x, w, nullptr, 1, 1, 0, 0, 1, 1, 1);
    REQUIRE(y0.shape == std::vector<std::int64_t>{1, 1, 1, 1});
    REQUIRE(y0.data[0] == 45.0);
}

TEST_CASE("conv2d is cross-correlation (no kernel flip)", "[naive][conv]") {
    // Only the top-left tap is 1: out(h, w) = in(h - 1, w - 1) with pad 1.
    Array x({1, 1, 3, 3}, {1, 2, 3, 4, 5, 6, 7, 8, 9});
    Array w({1, 1, 3, 3});
    w.at(0, 0, 0, 0) = 1.0;
    Array y = naive::conv2d(x, w, nullptr, 1, 1, 1, 1, 1, 1, 1);
    Array expected({1, 1, 3, 3}, {0, 0, 0, 0, 1, 2, 0, 4, 5});
    require_close(y, expected);

    // Asymmetric kernel, no padding: [[1, 2], [3, 4]] on 1..9.
    Array w2({1, 1, 2, 2}, {1, 2, 3, 4});
    Array y2 = naive::conv2d(x, w2, nullptr, 1, 1, 0, 0, 1, 1, 1);
    // (0,0): 1*1 + 2*2 + 3*4 + 4*5 = 37
    Array expected2({1, 1, 2, 2}, {37, 47, 67, 77});
    require_close(y2, expected2);
}

TEST_CASE("conv2d: stride, output size and multiple channels", "[naive][conv]") {
    // 1x1 kernel, stride 2 on 5x5 picks every other pixel.
    Array x({1, 1, 5, 5});
    for (std::size_t i = 0; i < x.data.size(); ++i) x.data[i] = static_cast<double>(i);
    Array w({1, 1, 1, 1}, {2.0});
    Array y = naive::conv2d(x, w, nullptr, 2, 2, 0, 0, 1, 1, 1);
    REQUIRE(y.shape == std::vector<std::int64_t>{1, 1, 3, 3});
    for (int i = 0; i < 3; ++i)
        for (int j = 0; j < 3; ++j) REQUIRE(y.at(0, 0, i, j) == 2.0 * x.at(0, 0, 2 * i, 2 * j));

    // Output-size formula floor((H + 2p - d(k-1) - 1)/s) + 1.
    REQUIRE(naive::conv_out_size(7, 3, 2, 1, 2) == 3);
    REQUIRE(naive::conv_out_size(8, 3, 2, 1, 1) == 4);
    REQUIRE(naive::conv_out_size(7, 3, 2, 1, 1) == 4);
    REQUIRE(naive::conv_out_size(56, 3, 1, 1, 1) == 56);
    Array big = random_array({2, 3, 7, 8}, 1);
    Array wb = random_array({4, 3, 3, 3}, 2);
    Array yb = naive::conv2d(big, wb, nullptr, 2, 3, 1, 2, 2, 1, 1);
    REQUIRE(yb.shape == std::vector<std::int64_t>{2, 4, naive::conv_out_size(7, 3, 2, 1, 2),
                                                  naive::conv_out_size(8, 3, 3, 2, 1)});

    // Multi-channel 1x1 conv == matrix product over channels, plus bias.
    Array xc = random_array({2, 3, 4, 4}, 3);
    Array wc = random_array({5, 3, 1, 1}, 4);
    Array bc = random_array({5}, 5);
    Array yc = naive::conv2d(xc, wc, &bc, 1, 1, 0, 0, 1, 1, 1);
    for (int n = 0; n < 2; ++n)
        for (int o = 0; o < 5; ++o)
            for (int h = 0; h < 4; ++h)
                for (int w_ = 0; w_ < 4; ++w_) {
                    double acc = bc.at(o);
                    for (int c = 0; c < 3; ++c) acc += wc.at(o, c, 0, 0) * xc.at(n, c, h, w_);
                    REQUIRE(yc.at(n, o, h, w_) == Approx(acc).epsilon(1e-14));
                }
}

TEST_CASE("conv2d: grouped conv equals per-group separate convs", "[naive][conv]") {
    const int G = 3, Cg = 2, Og = 4;
    Array x = random_array({2, G * Cg, 6, 5}, 10);
    Array w = random_array({G * Og, Cg, 3, 3}, 11);
    Array b = random_array({G * Og}, 12);
    Array y = naive::conv2d(x, w, &b, 2, 1, 1, 1, 1, 1, G);
    REQUIRE(y.dim(1) == G * Og);
    for (int g = 0; g < G; ++g) {
        Array xg = slice_channels(x, g * Cg, Cg);
        Array wg = slice_dim0(w, g * Og, Og);
        Array bg({Og});
        for (int o = 0; o < Og; ++o) bg.at(o) = b.at(g * Og + o);
        Array yg = naive::conv2d(xg, wg, &bg, 2, 1, 1, 1, 1, 1, 1);
        require_close(slice_channels(y, g * Og, Og), yg);
    }
}

TEST_CASE("conv2d: dilation-2 3x3 equals 5x5 with zeros at odd taps", "[naive][conv]") {
    Array x = random_array({1, 4, 9, 8}, 20);
    Array w3 = random_array({4, 2, 3, 3}, 21);
    Array w5({4, 2, 5, 5});
    for (int o = 0; o < 4; ++o)
        for (int c = 0; c < 2; ++c)
            for (int i = 0; i < 3; ++i)
                for (int j = 0; j < 3; ++j) w5.at(o, c, 2 * i, 2 * j) = w3.at(o, c, i, j);
    for (int stride : {1, 2}) {
        Array yd = naive::conv2d(x, w3, nullptr, stride, stride, 2, 2, 2, 2, 2);
        Array y5 = naive::conv2d(x, w5, nullptr, stride, stride, 2, 2, 1, 1, 2);
        require_close(yd, y5);
    }
}

TEST_CASE("conv2d: depthwise conv", "[naive][conv]") {
    const int C = 4;
    Array x = random_array({2, C, 5, 6}, 30);
    Array w = random_array({C, 1, 3, 3}, 31);
    Array y = naive::conv2d(x, w, nullptr, 1, 1, 1, 1, 1, 1, C);
    REQUIRE(y.shape == x.shape);
    // Explicit per-channel computation.
    for (int n = 0; n < 2; ++n)
        for (int c = 0; c < C; ++c)
            for (int h = 0; h < 5; ++h)
                for (int ww = 0; ww < 6; ++ww) {
                    double acc = 0.0;
                    for (int kh = 0; kh < 3; ++kh)
                        for (int kw = 0; kw < 3; ++kw) {
                            const int ih = h - 1 + kh, iw = ww - 1 + kw;
                            if (ih < 0 || ih >= 5 || iw < 0 || iw >= 6) continue;
                            acc += x.at(n, c, ih, iw) * w.at(c, 0, kh, kw);
                        }
                    REQUIRE(y.at(n, c, h, ww) == Approx(acc).epsilon(1e-14));
                }
    // Channel independence: perturbing channel 0 does not change the others.
    Array x2 = x;
    for (int h = 0; h < 5; ++h)
        for (int ww = 0; ww < 6; ++ww) x2.at(1, 0, h, ww) += 10.0;
    Array y2 = naive::conv2d(x2, w, nullptr, 1, 1, 1, 1, 1, 1, C);
    for (int c = 1; c < C; ++c)
        require_close(slice_channels(y2, c, 1), slice_channels(y, c, 1), 0.0);
}

TEST_CASE("conv2d rejects inconsistent shapes", "[naive][conv]") {
    Array x({1, 4, 5, 5});
    Array w({2, 3, 3, 3});
    REQUIRE_THROWS(naive::conv2d(x, w, nullptr, 1, 1, 1, 1, 1, 1, 1));
    REQUIRE_THROWS(naive::conv2d(x, Array({2, 2, 3, 3}), nullptr, 1, 1, 1, 1, 1, 1, 3));
}

// ---------------------------------------------------------------------------
// BN, ReLU, pooling, linear
// ---------------------------------------------------------------------------
TEST_CASE("batch_norm (inference) and relu", "[naive]") {
    Array x({1, 2, 1, 2}, {1.0, 3.0, -2.0, 4.0});
    Array w({2}, {2.0, 1.0}), b({2}, {0.5, -1.0}), mean({2}, {1.0, 0.0}), var({2}, {4.0, 1.0});
    Array y = naive::batch_norm(x, w, b, mean, var, 0.0);
    Array expected({1, 2, 1, 2}, {0.5, 2.5, -3.0, 3.0});
    require_close(y, expected);
    // eps is added to var inside the sqrt.
    Array y2 = naive::batch_norm(x, w, b, mean, var, 5.0);
    REQUIRE(y2.at(0, 0, 0, 1) == Approx((3.0 - 1.0) / 3.0 * 2.0 + 0.5));
    // rank-2 input [N, C].
    Array z({1, 2}, {3.0, -2.0});
    Array z2 = naive::batch_norm(z, w, b, mean, var, 0.0);
    REQUIRE(z2.at(0, 0) == Approx(2.5));
    REQUIRE(z2.at(0, 1) == Approx(-3.0));

    Array r = naive::relu(Array({4}, {-1.0, 0.0, 2.0, -0.0}));
    REQUIRE(r.data == std::vector<double>{0.0, 0.0, 2.0, 0.0});
}

TEST_CASE("max_pool2d: hand example and -inf padding", "[naive][pool]") {
    Array x({1, 1, 4, 4});
    for (std::size_t i = 0; i < 16; ++i) x.data[i] = static_cast<double>(i);
    Array y = naive::max_pool2d(x, 2, 2, 0);
    require_close(y, Array({1, 1, 2, 2}, {5, 7, 13, 15}));

    // 3x3 / stride 2 / pad 1 (ResNet stem) on all-negative input: never 0.
    Array neg = random_array({2, 3, 7, 6}, 40, -5.0, -1.0);
    Array p = naive::max_pool2d(neg, 3, 2, 1);
    REQUIRE(p.shape == std::vector<std::int64_t>{2, 3, 4, 3});
    for (double v : p.data) {
        REQUIRE(v < 0.0);
        REQUIRE(std::isfinite(v));
    }
    // Corner window covers in[0..1, 0..1] only.
    REQUIRE(p.at(0, 0, 0, 0) == std::max({neg.at(0, 0, 0, 0), neg.at(0, 0, 0, 1),
                                          neg.at(0, 0, 1, 0), neg.at(0, 0, 1, 1)}));
    // Floor mode: 5x5, k=2, s=2 -> 2x2.
    REQUIRE(naive::max_pool2d(Array({1, 1, 5, 5}), 2, 2, 0).shape ==
            std::vector<std::int64_t>{1, 1, 2, 2});
}

TEST_CASE("global_avg_pool and linear", "[naive]") {
    Array x({1, 2, 2, 2}, {1, 2, 3, 4, -1, -1, -1, 5});
    Array g = naive::global_avg_pool(x);
    require_close(g, Array({1, 2}, {2.5, 0.5}));

    Array in({2, 3}, {1, 2, 3, 4, 5, 6});
    Array w({2, 3}, {1, 0, -1, 0.5, 0.5, 0.5});
    Array b({2}, {10, 20});
    require_close(naive::linear(in, w, &b), Array({2, 2}, {8, 23, 8, 27.5}));
    // A 1x1-conv-shaped weight [out, in, 1, 1] is accepted.
    Array w4({2, 3, 1, 1}, w.data);
    require_close(naive::linear(in, w4, nullptr), Array({2, 2}, {-2, 3, -2, 7.5}));
}

// ---------------------------------------------------------------------------
// SK convolution
// ---------------------------------------------------------------------------
TEST_CASE("sk_attn_width", "[naive][sk]") {
    REQUIRE(naive::sk_attn_width(64, 16, 32) == 32);
    REQUIRE(naive::sk_attn_width(256, 16, 32) == 32);
    REQUIRE(naive::sk_attn_width(1024, 16, 32) == 64);
    REQUIRE(naive::sk_attn_width(128, 2, 32) == 64);
    REQUIRE(naive::sk_attn_width(8, 4, 1) == 2);
}

TEST_CASE("sk_conv: attention is a softmax over paths", "[naive][sk]") {
    for (bool full : {false, true}) {
        for (int stride : {1, 2}) {
            naive::SKConfig cfg{4, 8, 3, 2, 4, 3, stride, full};
            naive::SKParams p = random_sk_params(cfg, 100 + stride);
            Array x = random_array({2, 4, 7, 6}, 200 + stride);
            naive::SKResult r = naive::sk_conv(x, p, cfg);
            REQUIRE(r.output.shape == std::vector<std::int64_t>{2, 8,
                                                                naive::conv_out_size(7, 3, stride, 1, 1),
                                                                naive::conv_out_size(6, 3, stride, 1, 1)});
            REQUIRE(r.attention.shape == std::vector<std::int64_t>{2, 3, 8});
            bool non_uniform = false;
            for (int n = 0; n < 2; ++n)
                for (int c = 0; c < 8; ++c) {
                    double s = 0.0;
                    for (int m = 0; m < 3; ++m) {
                        const double a = r.attention.at(n, m, c);
                        REQUIRE(a > 0.0);
                        REQUIRE(a < 1.0);
                        if (std::abs(a - 1.0 / 3.0) > 1e-3) non_uniform = true;
                        s += a;
                    }
                    REQUIRE(s == Approx(1.0).epsilon(1e-14));
                }
            REQUIRE(non_uniform);
        }
    }
}

TEST_CASE("sk_conv: fc_select = 0 gives uniform attention and the mean of branches",
          "[naive][sk]") {
    naive::SKConfig cfg{6, 6, 2, 3, 2, 2, 1, false};
    naive::SKParams p = random_sk_params(cfg, 300);
    std::fill(p.fc_select.data.begin(), p.fc_select.data.end(), 0.0);
    Array x = random_array({1, 6, 5, 5}, 301);
    naive::SKResult r = naive::sk_conv(x, p, cfg);
    for (double a : r.attention.data) REQUIRE(a == Approx(0.5).epsilon(1e-15));

    // Mean of the two branches computed by hand from conv -> BN -> ReLU.
    Array u0 = naive::relu(naive::batch_norm(
        naive::conv2d(x, p.conv_weight[0], nullptr, 1, 1, 1, 1, 1, 1, 3), p.bn_weight[0],
        p.bn_bias[0], p.bn_mean[0], p.bn_var[0], 1e-5));
    Array u1 = naive::relu(naive::batch_norm(
        naive::conv2d(x, p.conv_weight[1], nullptr, 1, 1, 2, 2, 2, 2, 3), p.bn_weight[1],
        p.bn_bias[1], p.bn_mean[1], p.bn_var[1], 1e-5));
    Array mean = u0;
    for (std::size_t i = 0; i < mean.data.size(); ++i) mean.data[i] = 0.5 * (u0.data[i] + u1.data[i]);
    require_close(r.output, mean);
}

TEST_CASE("sk_conv: hand-controlled logits check the m*C + c layout", "[naive][sk]") {
    // fc_reduce = 0 and attn BN bias = 1 (weight 1, mean 0, var 1) make z ~ 1
    // (exactly 1/sqrt(1+eps)*0 + 1 = 1). Then logit(m, c) = sum_j fc_select[m*C+c, j].
    naive::SKConfig cfg{3, 4, 2, 1, 1, 5, 1, true};
    const int C = 4, d = naive::sk_attn_width(4, 1, 5);
    REQUIRE(d == 5);
    naive::SKParams p = random_sk_params(cfg, 400);
    std::fill(p.fc_reduce.data.begin(), p.fc_reduce.data.end(), 0.0);
    std::fill(p.attn_bn_weight.data.begin(), p.attn_bn_weight.data.end(), 1.0);
    std::fill(p.attn_bn_bias.data.begin(), p.attn_bn_bias.data.end(), 1.0);
    std::fill(p.attn_bn_mean.data.begin(), p.attn_bn_mean.data.end(), 0.0);
    std::fill(p.attn_bn_var.data.begin(), p.attn_bn_var.data.end(), 1.0);
    std::fill(p.fc_select.data.begin(), p.fc_select.data.end(), 0.0);
    // Path 1, channel c: logit = log(c + 1)  =>  a_1 = (c + 1) / (c + 2).
    for (int c = 0; c < C; ++c)
        for (int j = 0; j < d; ++j) p.fc_select.at(1 * C + c, j, 0, 0) = std::log(c + 1.0) / d;
    Array x = random_array({2, 3, 6, 6}, 401);
    naive::SKResult r = naive::sk_conv(x, p, cfg);
    for (int n = 0; n < 2; ++n)
        for (int c = 0; c < C; ++c) {
            REQUIRE(r.attention.at(n, 1, c) == Approx((c + 1.0) / (c + 2.0)).epsilon(1e-13));
            REQUIRE(r.attention.at(n, 0, c) == Approx(1.0 / (c + 2.0)).epsilon(1e-13));
        }
}

TEST_CASE("sk_conv: softmax is numerically stable for huge logits", "[naive][sk]") {
    naive::SKConfig cfg{2, 2, 2, 1, 1, 1, 1, false};
    naive::SKParams p = random_sk_params(cfg, 500);
    std::fill(p.fc_reduce.data.begin(), p.fc_reduce.data.end(), 0.0);
    std::fill(p.attn_bn_bias.data.begin(), p.attn_bn_bias.data.end(), 1.0);
    std::fill(p.attn_bn_mean.data.begin(), p.attn_bn_mean.data.end(), 0.0);
    std::fill(p.attn_bn_var.data.begin(), p.attn_bn_var.data.end(), 1.0);
    std::fill(p.attn_bn_weight.data.begin(), p.attn_bn_weight.data.end(), 1.0);
    std::fill(p.fc_select.data.begin(), p.fc_select.data.end(), 1000.0);  // logits ~ 2000
    Array x = random_array({1, 2, 4, 4}, 501);
    naive::SKResult r = naive::sk_conv(x, p, cfg);
    for (double a : r.attention.data) {
        REQUIRE(std::isfinite(a));
        REQUIRE(a == Approx(0.5).epsilon(1e-9));
    }
    for (double v : r.output.data) REQUIRE(std::isfinite(v));
}

TEST_CASE("sk_conv with M = 1 equals the single branch", "[naive][sk]") {
    for (int stride : {1, 2}) {
        naive::SKConfig cfg{4, 6, 1, 2, 2, 4, stride, false};
        naive::SKParams p = random_sk_params(cfg, 600 + stride);
        Array x = random_array({2, 4, 8, 7}, 700 + stride);
        naive::SKResult r = naive::sk_conv(x, p, cfg);
        for (double a : r.attention.data) REQUIRE(a == 1.0);
        Array u = naive::relu(naive::batch_norm(
            naive::conv2d(x, p.conv_weight[0], nullptr, stride, stride, 1, 1, 1, 1, 2),
            p.bn_weight[0], p.bn_bias[0], p.bn_mean[0], p.bn_var[0], 1e-5));
        require_close(r.output, u, 0.0);
    }
}

TEST_CASE("sk_conv: dilated branches equal full kernels with zero-stuffed weights",
          "[naive][sk]") {
    // Branch m: 3x3 dilation m+1 padding m+1 == (2(m+1)+1)^2 kernel padding m+1.
    naive::SKConfig dil{4, 4, 3, 2, 2, 2, 2, false};
    naive::SKConfig full = dil;
    full.full_kernels = true;
    naive::SKParams pd = random_sk_params(dil, 800);
    naive::SKParams pf = naive::sk_make_params(full);
    pf.bn_weight = pd.bn_weight;
    pf.bn_bias = pd.bn_bias;
    pf.bn_mean = pd.bn_mean;
    pf.bn_var = pd.bn_var;
    pf.fc_reduce = pd.fc_reduce;
    pf.attn_bn_weight = pd.attn_bn_weight;
    pf.attn_bn_bias = pd.attn_bn_bias;
    pf.attn_bn_mean = pd.attn_bn_mean;
    pf.attn_bn_var = pd.attn_bn_var;
    pf.fc_select = pd.fc_select;
    for (int m = 0; m < 3; ++m) {
        const int dl = m + 1;
        REQUIRE(pf.conv_weight[m].dim(2) == 2 * (m + 1) + 1);
        for (std::int64_t o = 0; o < 4; ++o)
            for (std::int64_t c = 0; c < 2; ++c)
                for (int i = 0; i < 3; ++i)
                    for (int j = 0; j < 3; ++j)
                        pf.conv_weight[m].at(o, c, dl * i, dl * j) = pd.conv_weight[m].at(o, c, i, j);
    }
    Array x = random_array({1, 4, 9, 10}, 801);
    naive::SKResult rd = naive::sk_conv(x, pd, dil);
    naive::SKResult rf = naive::sk_conv(x, pf, full);
    require_close(rd.output, rf.output);
    require_close(rd.attention, rf.attention);
}

// ---------------------------------------------------------------------------
// safetensors fixture reader
// ---------------------------------------------------------------------------
namespace {

std::filesystem::path make_temp_dir() {
    std::random_device rd;
    std::mt19937_64 rng((static_cast<std::uint64_t>(rd()) << 32) ^ rd());
    for (int attempt = 0; attempt < 100; ++attempt) {
        auto p = std::filesystem::temp_directory_path() /
                 ("sknet_naive_selftest_" + std::to_string(rng()));
        if (std::filesystem::create_directory(p)) return p;
    }
    throw std::runtime_error("cannot create temp directory");
}

struct TempDir {
    std::filesystem::path path = make_temp_dir();
    ~TempDir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
};

template <class T>
void append_le(std::string& out, T v) {
    unsigned char b[sizeof(T)];
    std::memcpy(b, &v, sizeof(T));  // test host is little-endian (checked below)
    out.append(reinterpret_cast<const char*>(b), sizeof(T));
}

std::string make_file(const std::string& header, const std::string& data) {
    std::string out;
    append_le<std::uint64_t>(out, header.size());
    out += header;
    out += data;
    return out;
}

void write_file(const std::filesystem::path& p, const std::string& bytes) {
    std::ofstream f(p, std::ios::binary);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    REQUIRE(f.good());
}

// Data: F32 [3] at [0,12), F64 [2,1] at [12,28) (deliberately unaligned),
// I64 [2] at [28,44), F32 [0] at [44,44).
std::string tiny_data() {
    std::string d;
    for (float v : {1.5f, -2.25f, 3.0f}) append_le(d, v);
    for (double v : {0.1, -1e300}) append_le(d, v);
    for (std::int64_t v : {std::int64_t{-7}, std::int64_t{1} << 40}) append_le(d, v);
    return d;
}

const char* tiny_header =
    R"({"__metadata__":{"paths":"2","name":"tiny"},)"
    R"("a":{"dtype":"F32","shape":[3],"data_offsets":[0,12]},)"
    R"("b":{"dtype":"F64","shape":[2,1],"data_offsets":[12,28]},)"
    R"("c":{"dtype":"I64","shape":[2],"data_offsets":[28,44]},)"
    R"("e":{"dtype":"F32","shape":[0],"data_offsets":[44,44]}}    )";  // trailing pad

}  // namespace

TEST_CASE("load_fixture round-trips a hand-written file", "[fixture]") {
    REQUIRE(sknet_test::detail::host_is_little_endian());
    TempDir tmp;
    const auto file = tmp.path / "tiny.safetensors";
    write_file(file, make_file(tiny_header, tiny_data()));

    const sknet_test::Fixture fx = sknet_test::load_fixture(file.string());
    REQUIRE(fx.path == file.string());
    REQUIRE(fx.tensors.size() == 4);
    REQUIRE(fx.meta("name") == "tiny");
    REQUIRE(fx.meta_int("paths") == 2);
    REQUIRE_THROWS_AS(fx.meta_int("name"), std::runtime_error);
    REQUIRE_THROWS_AS(fx.meta("nope"), std::runtime_error);

    const Array& a = fx.tensor("a");
    REQUIRE(a.shape == std::vector<std::int64_t>{3});
    REQUIRE(a.data == std::vector<double>{1.5, -2.25, 3.0});
    const Array& b = fx.tensor("b");
    REQUIRE(b.shape == std::vector<std::int64_t>{2, 1});
    REQUIRE(b.at(0, 0) == 0.1);
    REQUIRE(b.at(1, 0) == -1e300);
    const Array& c = fx.tensor("c");
    REQUIRE(c.data == std::vector<double>{-7.0, 1099511627776.0});
    REQUIRE(fx.tensor("e").numel() == 0);

    try {
        fx.tensor("missing_key");
        FAIL("expected throw");
    } catch (const std::runtime_error& e) {
        const std::string msg = e.what();
        REQUIRE(msg.find("missing_key") != std::string::npos);
        REQUIRE(msg.find("tiny.safetensors") != std::string::npos);
    }
}

TEST_CASE("load_fixture rejects malformed files", "[fixture]") {
    TempDir tmp;
    const std::string good = make_file(tiny_header, tiny_data());
    auto expect_throw = [&](const std::string& name, const std::string& bytes) {
        const auto file = tmp.path / name;
        write_file(file, bytes);
        try {
            sknet_test::load_fixture(file.string());
            FAIL("expected throw for " << name);
        } catch (const std::runtime_error& e) {
            INFO(e.what());
            REQUIRE(std::string(e.what()).find(name) != std::string::npos);
        }
    };

    SECTION("truncated data") { expect_throw("trunc_data.safetensors", good.substr(0, good.size() - 1)); }
    SECTION("truncated header") { expect_throw("trunc_header.safetensors", good.substr(0, 20)); }
    SECTION("shorter than 8 bytes") { expect_throw("tiny.safetensors", good.substr(0, 5)); }
    SECTION("empty file") { expect_throw("empty.safetensors", std::string()); }
    SECTION("missing file") {
        REQUIRE_THROWS_AS(sknet_test::load_fixture((tmp.path / "nope.safetensors").string()),
                          std::runtime_error);
    }
    SECTION("byte count != numel * size") {
        expect_throw("count.safetensors",
                     make_file(R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,12]}})",
                               std::string(12, '\0')));
    }
    SECTION("offsets out of range") {
        expect_throw("range.safetensors",
                     make_file(R"({"a":{"dtype":"F64","shape":[2],"data_offsets":[8,24]}})",
                               std::string(16, '\0')));
    }
    SECTION("begin > end") {
        expect_throw("order.safetensors",
                     make_file(R"({"a":{"dtype":"F64","shape":[0],"data_offsets":[8,0]}})",
                               std::string(16, '\0')));
    }
    SECTION("unsupported dtype") {
        expect_throw("dtype.safetensors",
                     make_file(R"({"a":{"dtype":"BF16","shape":[2],"data_offsets":[0,4]}})",
                               std::string(4, '\0')));
    }
    SECTION("bad JSON") { expect_throw("json.safetensors", make_file("{not json", "")); }
    SECTION("missing field") {
        expect_throw("field.safetensors",
                     make_file(R"({"a":{"dtype":"F32","data_offsets":[0,4]}})", std::string(4, '\0')));
    }
}

TEST_CASE("list_fixtures returns sorted *.safetensors paths", "[fixture]") {
    TempDir tmp;
    for (const char* name : {"b.safetensors", "a.safetensors", "c.txt", "a.safetensors.bak"})
        write_file(tmp.path / name, "x");
    std::filesystem::create_directory(tmp.path / "sub.safetensors");
    const auto files = sknet_test::list_fixtures(tmp.path.string());
    REQUIRE(files == std::vector<std::string>{(tmp.path / "a.safetensors").string(),
                                              (tmp.path / "b.safetensors").string()});
    REQUIRE(sknet_test::list_fixtures((tmp.path / "does_not_exist").string()).empty());
}
