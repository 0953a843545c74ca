// Line and point plots on a Canvas (training curves, the ID-vs-OOD trade-off): axes with round
// ticks and their labels, a title, axis names, a grid and a legend; NaN points are left out
// (a gap in a line).
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "train/pictures/picture.h"

namespace train {

struct PlotSeries {
  std::string name;                               // shown in the legend (none when empty)
  std::vector<std::pair<double, double>> points;  // (x, y)
  bool lines = true;                              // join consecutive points
  bool markers = false;                           // a disc at every point
  Rgb colour{31, 119, 180};
};

struct Plot {
  std::string title, x_label, y_label;
  std::vector<PlotSeries> series;
  int width = 640, height = 360;
  bool log_y = false;  // a logarithmic y axis (positive values only; others left out)
};

// The i-th colour of a fixed palette that keeps neighbours apart.
Rgb plot_colour(size_t i);

// Round tick values covering [low, high]: about `count` of them, at 1, 2 or 5 times a power of ten.
std::vector<double> nice_ticks(double low, double high, int count);

// The plot drawn; an empty plot (no finite point) says so in its frame.
Canvas draw_plot(const Plot& plot);

}  // namespace train
