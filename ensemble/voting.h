// Ensembles of probability tables (ensemble/probability_file.h), M models over the same N images:
//   soft   p(i, c) = sum_m w_m p_m(i, c) / sum_m w_m          the weighted mean probability
//   hard   p(i, c) = sum_m w_m [argmax_k p_m(i, k) = c] / sum_m w_m   each model's weighted vote share
// Either result is again a probability table (rows sum to 1), so its argmax is the ensemble's answer
// (under hard voting, a tie goes to the lower class index, as scikit-learn's VotingClassifier) and it can
// itself be saved and ensembled. Weights default to 1 each; they must be finite, >= 0, and not all 0.
#pragma once

#include <string>
#include <vector>

#include "ensemble/probability_file.h"

namespace effnet::ensemble {

enum class Vote { Soft, Hard };

// "soft" or "hard"; an Error naming `option` otherwise.
Vote parse_vote(const std::string& text, const std::string& option);
// "" -> `models` ones; "1,2,0.5" -> one weight per model, checked as above. Errors name `option`.
std::vector<double> parse_model_weights(const std::string& text, size_t models, const std::string& option);

// The ensemble of `tables` (check_same_rows against the first): the first table's ids, the labels any
// table knows, and the voted probabilities. `weights`: empty (equal) or one per table.
ProbabilityTable vote(const std::vector<ProbabilityTable>& tables, const std::vector<double>& weights, Vote how);

}  // namespace effnet::ensemble
