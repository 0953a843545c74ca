// Line and point plots (see plot.h).
#include "train/pictures/plot.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

namespace train {

Rgb plot_colour(size_t i) {
  static const Rgb palette[] = {{31, 119, 180},  {214, 39, 40},   {44, 160, 44},
                                {255, 127, 14},  {148, 103, 189}, {140, 86, 75},
                                {227, 119, 194}, {127, 127, 127}, {23, 190, 207}};
  return palette[i % (sizeof(palette) / sizeof(palette[0]))];
}

std::vector<double> nice_ticks(double low, double high, int count) {
  if (!(high > low)) return {low};
  const double raw = (high - low) / std::max(1, count);
  const double power = std::pow(10.0, std::floor(std::log10(raw)));
  // The round step nearest the raw one (by ratio).
  double step = power;
  for (double m : {2.0, 5.0, 10.0})
    if (std::abs(std::log(m * power / raw)) < std::abs(std::log(step / raw))) step = m * power;
  // Each tick as an integer count of steps, scaled by one multiplication or division, so 0.6
  // is 6 / 10 and not 0.2 + 0.2 + 0.2 = 0.6000000000000001.
  const double units = step / power;  // 1, 2, 5 or 10
  const double inverse = power < 1 ? std::round(1 / power) : 0;
  auto tick = [&](double k) { return inverse > 0 ? k * units / inverse : k * units * power; };
  std::vector<double> ticks;
  for (double k = std::ceil(low / step - 1e-9); tick(k) <= high + step * 1e-9; k += 1)
    ticks.push_back(k == 0 ? 0.0 : tick(k));
  return ticks;
}

namespace {

std::string tick_label(double v) {
  char text[32];
  std::snprintf(text, sizeof(text), "%.4g", v);
  return text;
}

}  // namespace

Canvas draw_plot(const Plot& plot) {
  const int W = plot.width, H = plot.height;
  Canvas canvas(W, H);
  const Rgb black{0, 0, 0}, grid{225, 225, 225}, frame{120, 120, 120};
  // Legend entries take the right margin when any series is named.
  int legend_width = 0;
  for (const PlotSeries& s : plot.series)
    if (!s.name.empty()) legend_width = std::max(legend_width, Canvas::text_width(s.name) + 34);
  // The title on the first line, the y axis's name on the second, above its axis.
  const int left = 62, right = 14 + legend_width, top = 40, bottom = 44;
  canvas.text(left, 4, plot.title, black, 2);
  canvas.text(left + (W - left - right) / 2 - Canvas::text_width(plot.x_label) / 2, H - 16,
              plot.x_label, black, 1);
  canvas.text(4, top - 14, plot.y_label, black, 1);

  auto ty = [&](double y) { return plot.log_y ? std::log10(y) : y; };
  auto usable = [&](double x, double y) {
    return std::isfinite(x) && std::isfinite(y) && (!plot.log_y || y > 0);
  };
  double x0 = std::numeric_limits<double>::infinity(), x1 = -x0, y0 = x0, y1 = -x0;
  for (const PlotSeries& s : plot.series)
    for (auto [x, y] : s.points)
      if (usable(x, y)) {
        x0 = std::min(x0, x), x1 = std::max(x1, x), y0 = std::min(y0, ty(y)),
        y1 = std::max(y1, ty(y));
      }
  const int pw = W - left - right, ph = H - top - bottom;
  canvas.line(left, top, left, top + ph, frame);
  canvas.line(left, top + ph, left + pw, top + ph, frame);
  if (!(x1 >= x0)) {
    canvas.text(left + 10, top + ph / 2, "no data", frame, 2);
    return canvas;
  }
  // A flat range is widened, and a little room is left around the data.
  if (x1 == x0) x0 -= 0.5, x1 += 0.5;
  if (y1 == y0) y0 -= std::max(0.5, std::abs(y0) * 0.1), y1 += std::max(0.5, std::abs(y1) * 0.1);
  const double pad = (y1 - y0) * 0.05;
  y0 -= pad, y1 += pad;
  auto px = [&](double x) { return left + (x - x0) / (x1 - x0) * pw; };
  auto py = [&](double y) { return top + ph - (ty(y) - y0) / (y1 - y0) * ph; };
  for (double t : nice_ticks(x0, x1, 6)) {
    const double x = left + (t - x0) / (x1 - x0) * pw;
    canvas.line(x, top, x, top + ph, grid);
    canvas.line(x, top + ph, x, top + ph + 4, frame);
    const std::string label = tick_label(t);
    canvas.text(static_cast<int>(x) - Canvas::text_width(label) / 2, top + ph + 8, label, black);
  }
  if (plot.log_y) {
    for (double e = std::floor(y0); e <= y1; e += 1) {
      if (e < y0) continue;
      const double y = top + ph - (e - y0) / (y1 - y0) * ph;
      canvas.line(left, y, left + pw, y, grid);
      const std::string label = tick_label(std::pow(10.0, e));
      canvas.text(left - 6 - Canvas::text_width(label), static_cast<int>(y) - 4, label, black);
    }
  } else {
    for (double t : nice_ticks(y0, y1, 5)) {
      const double y = top + ph - (t - y0) / (y1 - y0) * ph;
      canvas.line(left, y, left + pw, y, grid);
      canvas.line(left - 4, y, left, y, frame);
      const std::string label = tick_label(t);
      canvas.text(left - 6 - Canvas::text_width(label), static_cast<int>(y) - 4, label, black);
    }
  }
  int legend_row = 0;
  for (const PlotSeries& s : plot.series) {
    bool have_previous = false;
    double ax = 0, ay = 0;
    for (auto [x, y] : s.points) {
      if (!usable(x, y)) {
        have_previous = false;
        continue;
      }
      if (s.lines && have_previous) canvas.line(ax, ay, px(x), py(y), s.colour, 1.6);
      if (s.markers) canvas.disc(px(x), py(y), 3.5, s.colour);
      ax = px(x), ay = py(y), have_previous = true;
    }
    if (s.name.empty()) continue;
    const int ly = top + 6 + 16 * legend_row++;
    const int lx = left + pw + 12;
    if (s.lines) canvas.line(lx, ly + 4, lx + 16, ly + 4, s.colour, 2.0);
    if (s.markers) canvas.disc(lx + 8, ly + 4, 3.5, s.colour);
    canvas.text(lx + 22, ly, s.name, black);
  }
  return canvas;
}

}  // namespace train
