#include "train/inference.h"

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <sstream>

#include "data/dataset.h"
#include "models/efficientnet.h"
#include "models/weights.h"
#include "tensor/autocast.h"
#include "train/predict.h"
#include "train/trainer.h"

namespace effnet::train {
namespace {
namespace fs = std::filesystem;

SavedModel saved_model(const fs::path& weights) {
  const fs::path config = weights.parent_path() / "config.toml";
  EFFNET_CHECK(fs::is_regular_file(weights), weights.string(), ": no such weights file");
  EFFNET_CHECK(fs::is_regular_file(config), weights.string(), ": no config.toml beside it (not an effnet run?)");
  SavedModel model;
  model.weights = weights.string();
  load_toml(config.string(), model.config);
  return model;
}

struct PredictionSet {
  std::vector<data::Sample> samples;
  std::vector<std::string> ids;
};

PredictionSet prediction_set(const PredictRequest& r) {
  EFFNET_CHECK(r.data_root.empty() != r.images.empty(),
               "predict: give the images to predict with --data ROOT (its eval/ set) or --images FOLDER, one of them");
  PredictionSet set;
  const data::Dataset dataset =
      r.images.empty() ? data::load_mask_eval(r.data_root, &set.ids) : data::load_image_list(r.images, &set.ids);
  for (const std::string& problem : dataset.problems) std::printf("data: %s\n", problem.c_str());
  set.samples = dataset.samples;
  return set;
}

ensemble::ProbabilityTable predict_one(const SavedModel& saved, const PredictionSet& set, const PredictRequest& r,
                                       bool hflip_tta) {
  const TrainConfig& c = saved.config;
  EfficientNet model(model_options(c));
  load_weights(model, saved.weights);
  const Device device = Device::parse(r.device);
  model.to(device);
  data::LoaderOptions loading;
  loading.batch_size = r.batch_size > 0 ? r.batch_size : c.batch_size;
  loading.workers = static_cast<int>(r.workers >= 0 ? r.workers : c.workers);
  loading.device = device;
  const auto started = std::chrono::steady_clock::now();
  ensemble::ProbabilityTable table;
  table.name = saved.weights;
  table.ids = set.ids;
  table.labels.assign(set.ids.size(), -1);
  const AutocastGuard autocast(parse_precision(c.precision, "train.precision"));  // as the run trained
  table.probabilities = predict_probabilities(model, set.samples, transforms_for(c, false), loading, hflip_tta);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  std::printf("%s (%s, crop %s%s): %zu images in %.1f s, %.1f images/s\n", saved.weights.c_str(), c.model.c_str(),
              c.crop.empty() ? "none" : c.crop.c_str(), hflip_tta ? ", hflip TTA" : "", set.ids.size(), seconds,
              static_cast<double>(set.ids.size()) / seconds);
  std::fflush(stdout);
  return table;
}

}  // namespace

std::vector<SavedModel> saved_models(const std::string& checkpoint) {
  const fs::path path(checkpoint);
  if (fs::is_regular_file(path)) return {saved_model(path)};
  EFFNET_CHECK(fs::is_directory(path), checkpoint, ": no such run directory or weights file");
  EFFNET_CHECK(fs::is_regular_file(path / "config.toml"), checkpoint, ": no config.toml (not an effnet run?)");
  TrainConfig config;
  load_toml((path / "config.toml").string(), config);
  if (!all_folds(config)) return {saved_model(path / "best.safetensors")};
  std::vector<SavedModel> folds;
  for (int64_t k = 0; k < config.folds; ++k) {
    folds.push_back(saved_model(path / ("fold_" + std::to_string(k)) / "best.safetensors"));
  }
  return folds;
}

std::vector<bool> parse_tta(const std::string& text, size_t checkpoints) {
  std::vector<bool> choices;
  std::stringstream in(text);
  for (std::string field; std::getline(in, field, ',');) {
    EFFNET_CHECK(field == "none" || field == "hflip", "--tta: '", field, "' is not none or hflip");
    choices.push_back(field == "hflip");
  }
  EFFNET_CHECK(!choices.empty(), "--tta: empty (expected none, hflip, or one per --checkpoint)");
  if (choices.size() == 1) choices.assign(checkpoints, choices[0]);
  EFFNET_CHECK(choices.size() == checkpoints, "--tta: ", choices.size(), " choices for ", checkpoints,
               " checkpoints (give one for all, or one per --checkpoint)");
  return choices;
}

ensemble::ProbabilityTable run_predict(const PredictRequest& r) {
  EFFNET_CHECK(r.checkpoints.empty() != r.probability_files.empty(),
               "predict: give checkpoints (--checkpoint) or probability files (--ensemble), one of them");
  EFFNET_CHECK(r.hflip_tta.empty() || r.hflip_tta.size() == r.checkpoints.size(), "predict: ",
               r.hflip_tta.size(), " TTA choices for ", r.checkpoints.size(), " checkpoints");
  const ensemble::Vote how = ensemble::parse_vote(r.vote, "--vote");
  std::vector<ensemble::ProbabilityTable> tables;
  std::vector<std::string> sources;
  std::vector<bool> tta;
  std::vector<double> weights;  // checked before any model predicts
  if (!r.probability_files.empty()) {
    weights = ensemble::parse_model_weights(r.weights, r.probability_files.size(), "--weights");
    EFFNET_CHECK(r.data_root.empty() && r.images.empty(), "predict: --ensemble votes saved files; --data and "
                 "--images are for checkpoints");
    for (const std::string& file : r.probability_files) {
      tables.push_back(ensemble::read_probabilities_csv(file));
      sources.push_back(file);
      tta.push_back(false);
    }
  } else {
    std::vector<std::pair<SavedModel, bool>> models;
    for (size_t i = 0; i < r.checkpoints.size(); ++i) {
      const bool flip = !r.hflip_tta.empty() && r.hflip_tta[i];
      for (SavedModel& m : saved_models(r.checkpoints[i])) models.emplace_back(std::move(m), flip);
    }
    weights = ensemble::parse_model_weights(r.weights, models.size(), "--weights");
    const PredictionSet set = prediction_set(r);
    for (const auto& [model, flip] : models) {
      tables.push_back(predict_one(model, set, r, flip));
      sources.push_back(model.weights);
      tta.push_back(flip);
    }
  }
  ensemble::ProbabilityTable result = ensemble::vote(tables, weights, how);
  if (!r.probs_out.empty()) {
    fs::create_directories(r.probs_out);
    std::vector<std::vector<std::string>> listing;
    for (size_t m = 0; m < tables.size(); ++m) {
      std::string file = sources[m];  // a probability file given: listed, not copied
      if (!r.checkpoints.empty()) {
        file = "model_" + std::to_string(m) + ".csv";
        ensemble::write_probabilities_csv(r.probs_out + "/" + file, tables[m]);
      }
      listing.push_back({file, sources[m], tta[m] ? "hflip" : "none", std::to_string(weights[m])});
    }
    ensemble::write_probabilities_csv(r.probs_out + "/ensemble.csv", result);
    data::write_csv(r.probs_out + "/models.csv", {"file", "source", "tta", "weight"}, listing);
  }
  if (!r.submission.empty()) ensemble::write_submission_csv(r.submission, result.ids, result.probabilities);
  std::printf("%s vote of %zu models over %lld images%s%s\n", r.vote.c_str(), tables.size(),
              static_cast<long long>(result.rows()), r.submission.empty() ? "" : ": ", r.submission.c_str());
  return result;
}

std::vector<ensemble::PersonIssue> run_find_label_issues(const LabelIssueRequest& r) {
  const ensemble::ProbabilityTable oof = ensemble::read_probabilities_csv(r.oof_probs);
  const fs::path beside = fs::path(r.oof_probs).parent_path();
  ensemble::LabelIssueOptions options;
  options.min_vote_fraction = r.min_vote_fraction;
  options.age_threshold = r.age_threshold;
  if (options.age_threshold == 0) {
    TrainConfig run;
    if (fs::is_regular_file(beside / "config.toml")) load_toml((beside / "config.toml").string(), run);
    options.age_threshold = run.age_threshold;
  }
  const std::vector<ensemble::ImageIssue> images = ensemble::find_image_issues(oof);
  const std::vector<ensemble::PersonIssue> people = ensemble::find_person_issues(oof, options);
  const std::string out = r.out.empty() ? (beside / "label_issues.csv").string() : r.out;
  ensemble::write_person_issues_csv(out, people);
  if (!r.image_out.empty()) ensemble::write_image_issues_csv(r.image_out, images);
  std::printf("%zu of %lld images are suspect; %zu person issues (age threshold %lld): %s\n", images.size(),
              static_cast<long long>(oof.rows()), people.size(), static_cast<long long>(options.age_threshold),
              out.c_str());
  for (size_t i = 0; i < people.size() && i < 10; ++i) {
    const ensemble::PersonIssue& p = people[i];
    std::printf("  %-24s %-9s %s -> %s  (%lld of %lld images, score %.3f)\n", p.person.c_str(), p.field.c_str(),
                p.given.c_str(), p.suggested.c_str(), static_cast<long long>(p.votes),
                static_cast<long long>(p.images), p.score);
  }
  std::printf("review %s, then train with --relabel on the reviewed copy\n", out.c_str());
  return people;
}

}  // namespace effnet::train
