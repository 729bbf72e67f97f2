#include "ensemble/probability_file.h"

#include <cmath>
#include <cstdio>

#include "data/dataset.h"
#include "tensor/ops.h"

namespace effnet::ensemble {

ProbabilityTable read_probabilities_csv(const std::string& path) {
  const data::CsvTable csv = data::read_csv(path);
  const std::vector<std::string>& header = csv.header;
  EFFNET_CHECK(header.size() >= 4 && header[0] == "id" && header[1] == "label", path,
               ": expected a probability file with the columns id,label,p0,p1,... (at least two classes)");
  const int64_t classes = static_cast<int64_t>(header.size()) - 2;
  for (int64_t c = 0; c < classes; ++c) {
    EFFNET_CHECK(header[c + 2] == detail::concat("p", c), path, ": column ", c + 3, " is '", header[c + 2],
                 "' where p", c, " was expected (columns id,label,p0,p1,...)");
  }
  EFFNET_CHECK(!csv.rows.empty(), path, ": no rows");
  ProbabilityTable table;
  table.name = path;
  std::vector<double> p;
  p.reserve(csv.rows.size() * static_cast<size_t>(classes));
  for (size_t r = 0; r < csv.rows.size(); ++r) {
    const std::string& id = csv.rows[r][0];
    EFFNET_CHECK(!id.empty(), path, ":", csv.lines[r], ": empty id");
    const double label = csv.number(r, 1);
    EFFNET_CHECK(label == std::floor(label) && label >= -1 && label < static_cast<double>(classes), path, ":",
                 csv.lines[r], ": label ", csv.rows[r][1], " is not -1 (unknown) or a class 0..", classes - 1);
    double row_sum = 0;
    for (int64_t c = 0; c < classes; ++c) {
      const double value = csv.number(r, static_cast<size_t>(c) + 2);
      EFFNET_CHECK(std::isfinite(value) && value >= 0 && value <= 1, path, ":", csv.lines[r], ": p", c, " = ",
                   csv.rows[r][c + 2], " is not a probability in [0, 1]");
      row_sum += value;
      p.push_back(value);
    }
    EFFNET_CHECK(std::abs(row_sum - 1) <= 1e-4, path, ":", csv.lines[r], ": the probabilities of '", id,
                 "' sum to ", row_sum, ", not 1");
    table.ids.push_back(id);
    table.labels.push_back(static_cast<int64_t>(label));
  }
  table.probabilities = from_vector(p, {table.rows(), classes}, kFloat64);
  return table;
}

void write_probabilities_csv(const std::string& path, const std::vector<std::string>& ids,
                             const std::vector<int64_t>& labels, const Tensor& probabilities) {
  const int64_t n = probabilities.size(0), classes = probabilities.size(1);
  EFFNET_CHECK(static_cast<int64_t>(ids.size()) == n && static_cast<int64_t>(labels.size()) == n,
               "write_probabilities_csv ", path, ": ", ids.size(), " ids and ", labels.size(), " labels for ", n,
               " rows");
  std::vector<std::string> header{"id", "label"};
  for (int64_t c = 0; c < classes; ++c) header.push_back(detail::concat("p", c));
  const std::vector<double> p = probabilities.to_vector();
  std::vector<std::vector<std::string>> rows(static_cast<size_t>(n));
  char number[32];
  for (int64_t i = 0; i < n; ++i) {
    rows[i] = {ids[i], std::to_string(labels[i])};
    for (int64_t c = 0; c < classes; ++c) {
      std::snprintf(number, sizeof number, "%.8g", p[i * classes + c]);
      rows[i].emplace_back(number);
    }
  }
  data::write_csv(path, header, rows);
}

void write_probabilities_csv(const std::string& path, const ProbabilityTable& table) {
  write_probabilities_csv(path, table.ids, table.labels, table.probabilities);
}

void write_submission_csv(const std::string& path, const std::vector<std::string>& image_ids,
                          const Tensor& probabilities) {
  EFFNET_CHECK(static_cast<int64_t>(image_ids.size()) == probabilities.size(0), "write_submission_csv ", path,
               ": ", image_ids.size(), " image ids for ", probabilities.size(0), " rows of probabilities");
  const std::vector<double> answers = argmax(probabilities, 1).to_vector();
  std::vector<std::vector<std::string>> rows;
  for (size_t i = 0; i < image_ids.size(); ++i) {
    rows.push_back({image_ids[i], std::to_string(static_cast<int64_t>(answers[i]))});
  }
  data::write_csv(path, {"ImageID", "ans"}, rows);
}

void check_same_rows(const ProbabilityTable& reference, const ProbabilityTable& other) {
  EFFNET_CHECK(other.classes() == reference.classes(), other.name, " has ", other.classes(), " classes but ",
               reference.name, " has ", reference.classes(), ": they cannot be ensembled");
  EFFNET_CHECK(other.rows() == reference.rows(), other.name, " has ", other.rows(), " images but ", reference.name,
               " has ", reference.rows(), ": ensembles need the same images in the same order");
  for (int64_t i = 0; i < reference.rows(); ++i) {
    EFFNET_CHECK(other.ids[i] == reference.ids[i], other.name, ": row ", i + 1, " is image '", other.ids[i],
                 "' where ", reference.name, " has '", reference.ids[i],
                 "': ensembles need the same images in the same order");
    const int64_t a = reference.labels[i], b = other.labels[i];
    EFFNET_CHECK(a < 0 || b < 0 || a == b, other.name, ": image '", other.ids[i], "' is labelled ", b, " but ",
                 reference.name, " labels it ", a);
  }
}

}  // namespace effnet::ensemble
