// A line plot (one series per SK unit over the object scale) written as hand-made SVG and as an
// RGB raster for PNG. The raster is drawn at 2x and box-filtered down (cheap antialiasing); its
// text uses a built-in 5x7 pixel font (lower case, digits and a little punctuation).
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace fashion {

struct PlotSeries {
  std::string name;
  std::vector<double> y;  ///< one value per x
};

struct LinePlot {
  std::string title, x_label, y_label;
  std::vector<double> x;
  std::vector<PlotSeries> series;
  int width = 860, height = 520;
};

namespace plot_detail {

using Rgb = std::array<std::uint8_t, 3>;

inline const std::vector<Rgb>& palette() {  // matplotlib's tab10
  static const std::vector<Rgb> p = {{31, 119, 180}, {255, 127, 14}, {44, 160, 44},  {214, 39, 40},
                                     {148, 103, 189}, {140, 86, 75}, {227, 119, 194}, {127, 127, 127},
                                     {188, 189, 34},  {23, 190, 207}};
  return p;
}

inline std::string hex(const Rgb& c) {
  char buf[8];
  std::snprintf(buf, sizeof buf, "#%02x%02x%02x", c[0], c[1], c[2]);
  return buf;
}

inline std::string number(double v, int decimals) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.*f", decimals, v);
  std::string s = buf;
  if (s == "-0" || s.rfind("-0.", 0) == 0) {  // no "-0.000"
    bool zero = true;
    for (char c : s)
      if (c >= '1' && c <= '9') zero = false;
    if (zero) s = s.substr(1);
  }
  return s;
}

inline std::string xml_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '&') out += "&amp;";
    else if (c == '<') out += "&lt;";
    else if (c == '>') out += "&gt;";
    else if (c == '"') out += "&quot;";
    else out += c;
  }
  return out;
}

/// Axis range and "nice" ticks (steps of 1, 2 or 5 x 10^k) covering [lo, hi].
struct Axis {
  double lo = 0, hi = 1, step = 0.1;
  int decimals = 1;
  std::vector<double> ticks;
};

inline Axis nice_axis(double lo, double hi, int target_ticks = 6) {
  if (!(hi > lo)) {
    const double pad = std::max(1e-3, std::fabs(lo) * 0.1);
    lo -= pad;
    hi += pad;
  }
  const double raw = (hi - lo) / target_ticks;
  const double mag = std::pow(10.0, std::floor(std::log10(raw)));
  double step = mag;
  for (double m : {1.0, 2.0, 5.0, 10.0})
    if (m * mag >= raw) {
      step = m * mag;
      break;
    }
  Axis a;
  a.step = step;
  a.lo = std::floor(lo / step) * step;
  a.hi = std::ceil(hi / step) * step;
  a.decimals = std::max(0, -static_cast<int>(std::floor(std::log10(step) + 1e-9)));
  for (double t = a.lo; t <= a.hi + step * 1e-6; t += step) a.ticks.push_back(std::fabs(t) < step * 1e-9 ? 0.0 : t);
  return a;
}

/// Plot frame in output pixels: the data rectangle and the scales.
struct Frame {
  double left, top, right, bottom;
  Axis xa, ya;
  double px(double x) const { return left + (x - xa.lo) / (xa.hi - xa.lo) * (right - left); }
  double py(double y) const { return bottom - (y - ya.lo) / (ya.hi - ya.lo) * (bottom - top); }
};

inline Frame layout(const LinePlot& p) {
  Frame f;
  f.left = 104;
  f.top = 50;
  f.right = p.width - 170;
  f.bottom = p.height - 70;
  double lo = 0, hi = 0;  // always show 0
  for (const auto& s : p.series)
    for (double v : s.y) {
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
  f.ya = nice_axis(lo, hi);
  // x: the given points with half a step of margin, ticks at the points themselves
  const double x0 = p.x.front(), x1 = p.x.back();
  const double pad = p.x.size() > 1 ? (x1 - x0) / (p.x.size() - 1) * 0.35 : 0.5;
  f.xa.lo = x0 - pad;
  f.xa.hi = x1 + pad;
  f.xa.ticks = p.x;
  f.xa.decimals = 2;
  return f;
}

// ---- 5x7 pixel font -------------------------------------------------------------------------

inline const char* const* glyph(char c) {
  static const char* const blank[7] = {".....", ".....", ".....", ".....", ".....", ".....", "....."};
  static const char* const box[7] = {"#####", "#...#", "#...#", "#...#", "#...#", "#...#", "#####"};
  static const char* const letters[26][7] = {
      {".....", ".....", ".###.", "....#", ".####", "#...#", ".####"},  // a
      {"#....", "#....", "#.##.", "##..#", "#...#", "#...#", "####."},  // b
      {".....", ".....", ".###.", "#....", "#....", "#...#", ".###."},  // c
      {"....#", "....#", ".##.#", "#..##", "#...#", "#...#", ".####"},  // d
      {".....", ".....", ".###.", "#...#", "#####", "#....", ".###."},  // e
      {"..##.", ".#..#", ".#...", "###..", ".#...", ".#...", ".#..."},  // f
      {".....", ".....", ".####", "#...#", ".####", "....#", ".###."},  // g
      {"#....", "#....", "#.##.", "##..#", "#...#", "#...#", "#...#"},  // h
      {"..#..", ".....", ".##..", "..#..", "..#..", "..#..", ".###."},  // i
      {"...#.", ".....", "..##.", "...#.", "...#.", "#..#.", ".##.."},  // j
      {"#....", "#....", "#..#.", "#.#..", "##...", "#.#..", "#..#."},  // k
      {".##..", "..#..", "..#..", "..#..", "..#..", "..#..", ".###."},  // l
      {".....", ".....", "##.#.", "#.#.#", "#.#.#", "#...#", "#...#"},  // m
      {".....", ".....", "#.##.", "##..#", "#...#", "#...#", "#...#"},  // n
      {".....", ".....", ".###.", "#...#", "#...#", "#...#", ".###."},  // o
      {".....", ".....", "####.", "#...#", "####.", "#....", "#...."},  // p
      {".....", ".....", ".##.#", "#..##", ".####", "....#", "....#"},  // q
      {".....", ".....", "#.##.", "##..#", "#....", "#....", "#...."},  // r
      {".....", ".....", ".###.", "#....", ".###.", "....#", "####."},  // s
      {".#...", ".#...", "###..", ".#...", ".#...", ".#..#", "..##."},  // t
      {".....", ".....", "#...#", "#...#", "#...#", "#..##", ".##.#"},  // u
      {".....", ".....", "#...#", "#...#", "#...#", ".#.#.", "..#.."},  // v
      {".....", ".....", "#...#", "#...#", "#.#.#", "#.#.#", ".#.#."},  // w
      {".....", ".....", "#...#", ".#.#.", "..#..", ".#.#.", "#...#"},  // x
      {".....", ".....", "#...#", "#...#", ".####", "....#", ".###."},  // y
      {".....", ".....", "#####", "...#.", "..#..", ".#...", "#####"},  // z
  };
  static const char* const digits[10][7] = {
      {".###.", "#...#", "#..##", "#.#.#", "##..#", "#...#", ".###."},  // 0
      {"..#..", ".##..", "..#..", "..#..", "..#..", "..#..", ".###."},  // 1
      {".###.", "#...#", "....#", "...#.", "..#..", ".#...", "#####"},  // 2
      {"#####", "...#.", "..#..", "...#.", "....#", "#...#", ".###."},  // 3
      {"...#.", "..##.", ".#.#.", "#..#.", "#####", "...#.", "...#."},  // 4
      {"#####", "#....", "####.", "....#", "....#", "#...#", ".###."},  // 5
      {"..##.", ".#...", "#....", "####.", "#...#", "#...#", ".###."},  // 6
      {"#####", "....#", "...#.", "..#..", ".#...", ".#...", ".#..."},  // 7
      {".###.", "#...#", "#...#", ".###.", "#...#", "#...#", ".###."},  // 8
      {".###.", "#...#", "#...#", ".####", "....#", "...#.", ".##.."},  // 9
  };
  struct Punct {
    char c;
    const char* rows[7];
  };
  static const Punct punct[] = {
      {'.', {".....", ".....", ".....", ".....", ".....", ".##..", ".##.."}},
      {'-', {".....", ".....", ".....", ".###.", ".....", ".....", "....."}},
      {'+', {".....", "..#..", "..#..", "#####", "..#..", "..#..", "....."}},
      {',', {".....", ".....", ".....", ".....", ".##..", "..#..", ".#..."}},
      {'(', {"...#.", "..#..", ".#...", ".#...", ".#...", "..#..", "...#."}},
      {')', {".#...", "..#..", "...#.", "...#.", "...#.", "..#..", ".#..."}},
      {'[', {".###.", ".#...", ".#...", ".#...", ".#...", ".#...", ".###."}},
      {']', {".###.", "...#.", "...#.", "...#.", "...#.", "...#.", ".###."}},
      {'=', {".....", ".....", "#####", ".....", "#####", ".....", "....."}},
      {':', {".....", ".##..", ".##..", ".....", ".##..", ".##..", "....."}},
      {'/', {".....", "....#", "...#.", "..#..", ".#...", "#....", "....."}},
      {'_', {".....", ".....", ".....", ".....", ".....", ".....", "#####"}},
      {'%', {"##..#", "##..#", "...#.", "..#..", ".#...", "#..##", "#..##"}},
  };
  if (c == ' ') return blank;
  if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  if (c >= 'a' && c <= 'z') return letters[c - 'a'];
  if (c >= '0' && c <= '9') return digits[c - '0'];
  for (const auto& p : punct)
    if (p.c == c) return p.rows;
  return box;
}

/// An RGB canvas with simple antialiasing-free primitives (draw at 2x, then downsample()).
class Raster {
 public:
  Raster(int w, int h) : w_(w), h_(h), px_(static_cast<std::size_t>(w) * h * 3, 255) {}
  int width() const { return w_; }
  int height() const { return h_; }
  const std::vector<std::uint8_t>& pixels() const { return px_; }

  void set(int x, int y, const Rgb& c) {
    if (x < 0 || y < 0 || x >= w_ || y >= h_) return;
    std::uint8_t* p = &px_[(static_cast<std::size_t>(y) * w_ + x) * 3];
    p[0] = c[0];
    p[1] = c[1];
    p[2] = c[2];
  }
  void fill_rect(double x0, double y0, double x1, double y1, const Rgb& c) {
    for (int y = static_cast<int>(std::floor(std::min(y0, y1))); y < static_cast<int>(std::ceil(std::max(y0, y1))); ++y)
      for (int x = static_cast<int>(std::floor(std::min(x0, x1))); x < static_cast<int>(std::ceil(std::max(x0, x1)));
           ++x)
        set(x, y, c);
  }
  /// A segment of the given thickness (round caps): every pixel centre within thickness / 2.
  void line(double x0, double y0, double x1, double y1, double thickness, const Rgb& c) {
    const double r = thickness / 2;
    const int xa = static_cast<int>(std::floor(std::min(x0, x1) - r)), xb = static_cast<int>(std::ceil(std::max(x0, x1) + r));
    const int ya = static_cast<int>(std::floor(std::min(y0, y1) - r)), yb = static_cast<int>(std::ceil(std::max(y0, y1) + r));
    const double dx = x1 - x0, dy = y1 - y0, len2 = dx * dx + dy * dy;
    for (int y = ya; y <= yb; ++y)
      for (int x = xa; x <= xb; ++x) {
        const double cx = x + 0.5, cy = y + 0.5;
        double t = len2 > 0 ? ((cx - x0) * dx + (cy - y0) * dy) / len2 : 0;
        t = std::clamp(t, 0.0, 1.0);
        const double ex = x0 + t * dx - cx, ey = y0 + t * dy - cy;
        if (ex * ex + ey * ey <= r * r) set(x, y, c);
      }
  }
  void dashed_line(double x0, double y0, double x1, double y1, double thickness, double dash, const Rgb& c) {
    const double len = std::hypot(x1 - x0, y1 - y0);
    for (double s = 0; s < len; s += 2 * dash) {
      const double e = std::min(len, s + dash);
      line(x0 + (x1 - x0) * s / len, y0 + (y1 - y0) * s / len, x0 + (x1 - x0) * e / len, y0 + (y1 - y0) * e / len,
           thickness, c);
    }
  }
  void disc(double cx, double cy, double r, const Rgb& c) { line(cx, cy, cx, cy, 2 * r, c); }

  /// Text with the 5x7 font, `cell` pixels per font pixel; (x, y) is the top-left corner (for
  /// vertical text, rotated 90 degrees counter-clockwise, the bottom-left corner).
  void text(double x, double y, const std::string& s, int cell, const Rgb& c, bool vertical = false) {
    for (std::size_t i = 0; i < s.size(); ++i) {
      const char* const* g = glyph(s[i]);
      for (int r = 0; r < 7; ++r)
        for (int k = 0; k < 5; ++k) {
          if (g[r][k] != '#') continue;
          const double u = static_cast<double>(i) * 6 * cell + k * cell, v = r * cell;  // along, down
          if (!vertical)
            fill_rect(x + u, y + v, x + u + cell, y + v + cell, c);
          else
            fill_rect(x + v, y - u - cell, x + v + cell, y - u, c);
        }
    }
  }
  static double text_width(const std::string& s, int cell) {
    return s.empty() ? 0 : static_cast<double>(s.size()) * 6 * cell - cell;
  }

  /// Box filter by an integer factor.
  Raster downsample(int f) const {
    Raster out(w_ / f, h_ / f);
    for (int y = 0; y < out.h_; ++y)
      for (int x = 0; x < out.w_; ++x)
        for (int ch = 0; ch < 3; ++ch) {
          int sum = 0;
          for (int j = 0; j < f; ++j)
            for (int i = 0; i < f; ++i) sum += px_[(static_cast<std::size_t>(y * f + j) * w_ + (x * f + i)) * 3 + ch];
          out.px_[(static_cast<std::size_t>(y) * out.w_ + x) * 3 + ch] = static_cast<std::uint8_t>((sum + f * f / 2) / (f * f));
        }
    return out;
  }

 private:
  int w_, h_;
  std::vector<std::uint8_t> px_;
};

}  // namespace plot_detail

/// The plot as an SVG document.
inline std::string render_svg(const LinePlot& p) {
  using namespace plot_detail;
  const Frame f = layout(p);
  std::ostringstream s;
  s << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << p.width << "\" height=\"" << p.height
    << "\" viewBox=\"0 0 " << p.width << " " << p.height << "\" font-family=\"DejaVu Sans, Arial, sans-serif\">\n";
  s << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n";
  s << "<text x=\"" << (f.left + f.right) / 2 << "\" y=\"28\" text-anchor=\"middle\" font-size=\"17\">"
    << xml_escape(p.title) << "</text>\n";
  // grid and ticks
  for (double t : f.ya.ticks) {
    const double y = f.py(t);
    s << "<line x1=\"" << f.left << "\" y1=\"" << y << "\" x2=\"" << f.right << "\" y2=\"" << y
      << "\" stroke=\"#e5e5e5\"/>\n";
    s << "<line x1=\"" << f.left - 5 << "\" y1=\"" << y << "\" x2=\"" << f.left << "\" y2=\"" << y
      << "\" stroke=\"black\"/>\n";
    s << "<text x=\"" << f.left - 8 << "\" y=\"" << y + 4 << "\" text-anchor=\"end\" font-size=\"12\">"
      << number(t, f.ya.decimals) << "</text>\n";
  }
  for (double t : f.xa.ticks) {
    const double x = f.px(t);
    s << "<line x1=\"" << x << "\" y1=\"" << f.top << "\" x2=\"" << x << "\" y2=\"" << f.bottom
      << "\" stroke=\"#f0f0f0\"/>\n";
    s << "<line x1=\"" << x << "\" y1=\"" << f.bottom << "\" x2=\"" << x << "\" y2=\"" << f.bottom + 5
      << "\" stroke=\"black\"/>\n";
    s << "<text x=\"" << x << "\" y=\"" << f.bottom + 20 << "\" text-anchor=\"middle\" font-size=\"12\">"
      << number(t, 2) << "</text>\n";
  }
  if (f.ya.lo < 0 && f.ya.hi > 0)
    s << "<line x1=\"" << f.left << "\" y1=\"" << f.py(0) << "\" x2=\"" << f.right << "\" y2=\"" << f.py(0)
      << "\" stroke=\"#555\" stroke-dasharray=\"5,4\"/>\n";
  s << "<rect x=\"" << f.left << "\" y=\"" << f.top << "\" width=\"" << f.right - f.left << "\" height=\""
    << f.bottom - f.top << "\" fill=\"none\" stroke=\"black\"/>\n";
  s << "<text x=\"" << (f.left + f.right) / 2 << "\" y=\"" << p.height - 22
    << "\" text-anchor=\"middle\" font-size=\"14\">" << xml_escape(p.x_label) << "</text>\n";
  s << "<text transform=\"translate(26," << (f.top + f.bottom) / 2
    << ") rotate(-90)\" text-anchor=\"middle\" font-size=\"14\">" << xml_escape(p.y_label) << "</text>\n";
  // series
  for (std::size_t k = 0; k < p.series.size(); ++k) {
    const std::string c = hex(palette()[k % palette().size()]);
    s << "<polyline fill=\"none\" stroke=\"" << c << "\" stroke-width=\"2.5\" points=\"";
    for (std::size_t i = 0; i < p.x.size(); ++i) s << (i ? " " : "") << f.px(p.x[i]) << "," << f.py(p.series[k].y[i]);
    s << "\"/>\n";
    for (std::size_t i = 0; i < p.x.size(); ++i)
      s << "<circle cx=\"" << f.px(p.x[i]) << "\" cy=\"" << f.py(p.series[k].y[i]) << "\" r=\"4\" fill=\"" << c
        << "\"><title>" << xml_escape(p.series[k].name) << " at x" << number(p.x[i], 2) << ": "
        << number(p.series[k].y[i], 4) << "</title></circle>\n";
    const double ly = f.top + 12 + 24.0 * k;
    s << "<line x1=\"" << f.right + 18 << "\" y1=\"" << ly << "\" x2=\"" << f.right + 48 << "\" y2=\"" << ly
      << "\" stroke=\"" << c << "\" stroke-width=\"2.5\"/>\n";
    s << "<circle cx=\"" << f.right + 33 << "\" cy=\"" << ly << "\" r=\"4\" fill=\"" << c << "\"/>\n";
    s << "<text x=\"" << f.right + 56 << "\" y=\"" << ly + 4 << "\" font-size=\"13\">" << xml_escape(p.series[k].name)
      << "</text>\n";
  }
  s << "</svg>\n";
  return s.str();
}

/// The plot as an RGB raster (p.width x p.height, 3 bytes per pixel, row-major).
inline plot_detail::Raster render_raster(const LinePlot& p) {
  using namespace plot_detail;
  constexpr int ss = 2;  // supersampling
  const Frame f = layout(p);
  Raster r(p.width * ss, p.height * ss);
  const Rgb black{0, 0, 0}, grid{229, 229, 229}, vgrid{240, 240, 240}, zero{85, 85, 85};
  const auto X = [&](double x) { return f.px(x) * ss; };
  const auto Y = [&](double y) { return f.py(y) * ss; };
  const int cell = ss * 2;  // font pixel = 2 output pixels
  for (double t : f.ya.ticks) {
    r.line(f.left * ss, Y(t), f.right * ss, Y(t), ss, grid);
    r.line((f.left - 5) * ss, Y(t), f.left * ss, Y(t), ss, black);
    const std::string label = number(t, f.ya.decimals);
    r.text((f.left - 9) * ss - Raster::text_width(label, cell), Y(t) - 3.5 * cell, label, cell, black);
  }
  for (double t : f.xa.ticks) {
    r.line(X(t), f.top * ss, X(t), f.bottom * ss, ss, vgrid);
    r.line(X(t), f.bottom * ss, X(t), (f.bottom + 5) * ss, ss, black);
    const std::string label = number(t, 2);
    r.text(X(t) - Raster::text_width(label, cell) / 2, (f.bottom + 10) * ss, label, cell, black);
  }
  if (f.ya.lo < 0 && f.ya.hi > 0) r.dashed_line(f.left * ss, Y(0), f.right * ss, Y(0), ss * 1.2, 5 * ss, zero);
  r.line(f.left * ss, f.top * ss, f.right * ss, f.top * ss, ss * 1.2, black);
  r.line(f.left * ss, f.bottom * ss, f.right * ss, f.bottom * ss, ss * 1.2, black);
  r.line(f.left * ss, f.top * ss, f.left * ss, f.bottom * ss, ss * 1.2, black);
  r.line(f.right * ss, f.top * ss, f.right * ss, f.bottom * ss, ss * 1.2, black);
  r.text((f.left + f.right) / 2 * ss - Raster::text_width(p.title, cell) / 2, 16 * ss, p.title, cell, black);
  r.text((f.left + f.right) / 2 * ss - Raster::text_width(p.x_label, cell) / 2, (p.height - 34) * ss, p.x_label, cell,
         black);
  r.text(10 * ss, (f.top + f.bottom) / 2 * ss + Raster::text_width(p.y_label, cell) / 2, p.y_label, cell, black, true);
  for (std::size_t k = 0; k < p.series.size(); ++k) {
    const Rgb c = palette()[k % palette().size()];
    for (std::size_t i = 0; i + 1 < p.x.size(); ++i)
      r.line(X(p.x[i]), Y(p.series[k].y[i]), X(p.x[i + 1]), Y(p.series[k].y[i + 1]), 2.5 * ss, c);
    for (std::size_t i = 0; i < p.x.size(); ++i) r.disc(X(p.x[i]), Y(p.series[k].y[i]), 4 * ss, c);
    const double ly = f.top + 12 + 24.0 * k;
    r.line((f.right + 18) * ss, ly * ss, (f.right + 48) * ss, ly * ss, 2.5 * ss, c);
    r.disc((f.right + 33) * ss, ly * ss, 4 * ss, c);
    r.text((f.right + 56) * ss, ly * ss - 3.5 * cell, p.series[k].name, cell, black);
  }
  return r.downsample(ss);
}

}  // namespace fashion
