#include "models/summary.h"

#include <cstdio>
#include <sstream>

namespace effnet {

namespace {

// Output size and multiply-adds of one convolution applied to an h x w input.
struct Spatial {
  int64_t h, w;
};

int64_t conv_macs(const Conv2d& conv, Spatial out) {
  const Conv2dOptions& o = conv.options();
  return o.out_channels * out.h * out.w * (o.in_channels / o.groups) * o.kernel * o.kernel;
}

Spatial after(const Conv2d& conv, Spatial in) { return {conv.output_size(in.h), conv.output_size(in.w)}; }

int64_t se_macs(const std::shared_ptr<SqueezeExcite>& se) {
  return se ? conv_macs(*se->conv_reduce, {1, 1}) + conv_macs(*se->conv_expand, {1, 1}) : 0;
}

// Walks one block: returns its multiply-adds, moves `s` to its output size and `channels` to its output's.
int64_t block_macs(Module& block, Spatial& s, int64_t& channels) {
  if (auto* ds = dynamic_cast<DepthwiseSeparable*>(&block)) {
    s = after(*ds->conv_dw, s);
    channels = ds->conv_pw->options().out_channels;
    return conv_macs(*ds->conv_dw, s) + se_macs(ds->se) + conv_macs(*ds->conv_pw, s);
  }
  auto& ir = dynamic_cast<InvertedResidual&>(block);
  int64_t macs = conv_macs(*ir.conv_pw, s);
  s = after(*ir.conv_dw, s);
  channels = ir.conv_pwl->options().out_channels;
  return macs + conv_macs(*ir.conv_dw, s) + se_macs(ir.se) + conv_macs(*ir.conv_pwl, s);
}

std::string with_commas(int64_t n) {
  std::string digits = std::to_string(n), out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

}  // namespace

ModelSummary summarize(const EfficientNet& const_model, const std::string& name, int64_t height, int64_t width) {
  EFFNET_CHECK(height > 0 && width > 0, "summary: image size must be positive, got ", height, "x", width);
  auto& model = const_cast<EfficientNet&>(const_model);  // walking children needs non-const access only
  ModelSummary summary;
  summary.model = name;
  summary.height = height;
  summary.width = width;

  Spatial s = after(*model.conv_stem, {height, width});
  summary.rows.push_back({"stem", 0, {model.conv_stem->options().out_channels, s.h, s.w},
                          model.conv_stem->parameter_count() + model.bn1->parameter_count(),
                          conv_macs(*model.conv_stem, s)});
  for (size_t stage = 0; stage < model.blocks->size(); ++stage) {
    auto& blocks = dynamic_cast<Sequential&>((*model.blocks)[stage]);
    SummaryRow row{"stage " + std::to_string(stage), static_cast<int64_t>(blocks.size()), {}, 0, 0};
    int64_t channels = 0;
    for (size_t i = 0; i < blocks.size(); ++i) row.multiply_adds += block_macs(blocks[i], s, channels);
    row.parameters = blocks.parameter_count();
    row.output = {channels, s.h, s.w};
    summary.rows.push_back(row);
  }
  summary.rows.push_back({"head", 0, {model.num_features(), s.h, s.w},
                          model.conv_head->parameter_count() + model.bn2->parameter_count(),
                          conv_macs(*model.conv_head, s)});
  SummaryRow classifier{"classifier", 0, {0}, 0, 0};  // the multi head's three heads count as one row
  for (const std::shared_ptr<Linear>& head : model.classifiers()) {
    classifier.output[0] += head->out_features();
    classifier.parameters += head->parameter_count();
    classifier.multiply_adds += head->in_features() * head->out_features();
  }
  summary.rows.push_back(classifier);
  for (const SummaryRow& row : summary.rows) {
    summary.parameters += row.parameters;
    summary.multiply_adds += row.multiply_adds;
  }
  return summary;
}

std::string ModelSummary::table() const {
  std::ostringstream os;
  char line[160];
  os << model << " at " << height << "x" << width << "\n";
  std::snprintf(line, sizeof line, "%-11s %6s  %-18s %14s %16s\n", "", "blocks", "output", "parameters",
                "multiply-adds");
  os << line;
  for (const SummaryRow& row : rows) {
    std::snprintf(line, sizeof line, "%-11s %6s  %-18s %14s %16s\n", row.name.c_str(),
                  row.blocks ? std::to_string(row.blocks).c_str() : "", shape_str(row.output).c_str(),
                  with_commas(row.parameters).c_str(), with_commas(row.multiply_adds).c_str());
    os << line;
  }
  std::snprintf(line, sizeof line, "%-11s %6s  %-18s %14s %16s\n", "total", "", "", with_commas(parameters).c_str(),
                with_commas(multiply_adds).c_str());
  os << line;
  std::snprintf(line, sizeof line, "%.2f M parameters, %.2f G multiply-adds per image\n", parameters / 1e6,
                multiply_adds / 1e9);
  os << line;
  return os.str();
}

}  // namespace effnet
