// A compiled XGBoost tree ensemble: the trees of a saved XGBoost JSON model flattened into one
// array of small nodes and evaluated in blocks of rows on several threads, several times faster
// than XGBoost's own CPU predictor for batch scoring and with the same numbers.
//
//   ENGAGE_ASSIGN_OR_RETURN(std::string text, model.ToJsonText());
//   ENGAGE_ASSIGN_OR_RETURN(Forest f, Forest::FromModelJson(text));
//   ENGAGE_ASSIGN_OR_RETURN(std::vector<float> prob, f.Predict(x.values, x.cols));
//
// Supported: the gbtree booster with numerical splits and one output (binary:logistic,
// reg:logistic, binary:logitraw, reg:squarederror). Predictions equal XGBoost 1.7's
// XGBoosterPredictFromDense bit for bit: a row starts at the base margin, adds each tree's leaf
// in float in tree order (a split sends x < threshold left, NaN to the learnt default side), and
// the logistic objectives apply XGBoost's float sigmoid. ml::Model uses a Forest for Predict and
// PredictMargin whenever its model compiles; SHAP contributions stay on XGBoost.
//
// Thread-safety: a Forest is immutable after FromModelJson; const methods may be called
// concurrently.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "engage/core/status.h"

namespace engage::ml {

class Forest {
 public:
  // What Predict applies to the margin.
  enum class Transform { kIdentity, kSigmoid };

  Forest() = default;

  // Compiles the text XGBoost writes with XGBoosterSaveModelToBuffer({"format": "json"}).
  // kInvalidArgument if the text is not JSON or not a well-formed XGBoost model (missing fields,
  // arrays of different lengths, child or feature indices out of range, a node reached twice);
  // kUnimplemented for what the evaluator does not cover: another booster (dart, gblinear),
  // another objective, several outputs (multi-class or multi-target) or categorical splits.
  static Result<Forest> FromModelJson(std::string_view xgboost_json);

  // The objective's prediction (probabilities for the logistic objectives), one per row of the
  // row-major matrix `x` with `cols` columns (NaN = missing). Uses `nthread` threads (0 = all
  // cores; small inputs use fewer). kInvalidArgument if cols != NumFeatures(), x.size() is not a
  // multiple of cols, or nthread < 0.
  Result<std::vector<float>> Predict(std::span<const float> x, int64_t cols, int nthread = 0) const;
  // Margins (log-odds for the logistic objectives), one per row; errors as Predict.
  Result<std::vector<float>> PredictMargin(std::span<const float> x, int64_t cols,
                                           int nthread = 0) const;

  int64_t NumFeatures() const { return num_features_; }
  int64_t NumTrees() const { return static_cast<int64_t>(trees_.size()); }
  // Nodes reachable from the roots, over all trees.
  int64_t NumNodes() const { return static_cast<int64_t>(nodes_.size()); }
  // Depth of the deepest leaf (0 for a forest of single leaves).
  int MaxDepth() const { return max_depth_; }
  // The margin every row starts from: base_score through the objective's inverse link.
  float BaseMargin() const { return base_margin_; }
  const std::string& Objective() const { return objective_; }
  Transform transform() const { return transform_; }

  // Rows evaluated together: a tree is walked one level at a time for all of them, so the walks
  // of different rows overlap in the CPU instead of each waiting on its own chain of loads, and
  // the block's rows (64 x 40 features = 10 KB) and the tree stay in L1 while they do.
  static constexpr int kBlockRows = 64;
  // Trees up to this deep are padded to complete trees (see Split); deeper ones are walked
  // through Nodes.
  static constexpr int kMaxCompleteDepth = 10;
  // True if the trees are evaluated as complete trees.
  bool complete() const { return complete_; }

  // One split or leaf, linked by index. A leaf points to itself on both sides, so every row of a
  // block can take the same number of steps through a tree; its value is kept in `value`.
  struct Node {
    float value = 0;        // threshold of a split (x < value goes left) or the leaf value
    uint32_t feature = 0;   // feature index; bit 31 set = a missing value goes left
    int32_t child[2] = {};  // left, right (global indices into the node array)
  };
  static constexpr uint32_t kDefaultLeft = 0x80000000u;

  // A split of a complete tree of depth D, stored as a heap: the children of split i are 2i + 1
  // and 2i + 2, and after D steps i - (2^D - 1) indexes the tree's 2^D leaves. A leaf above
  // depth D is padded with splits whose leaves all carry its value, so any path gives it.
  struct Split {
    uint32_t offset = 0;  // feature * kBlockRows (the feature's column in a transposed block);
                          // bit 31 set = a missing value goes left
    float threshold = 0;  // x < threshold goes left
  };

  struct Tree {
    int32_t root = 0;         // index of the root in nodes_
    int32_t depth = 0;        // steps from the root to its deepest leaf
    int64_t split_begin = 0;  // first split in splits_ (complete layout)
    int64_t leaf_begin = 0;   // first leaf in leaves_ (complete layout)
  };

 private:
  Result<std::vector<float>> Run(std::span<const float> x, int64_t cols, int nthread,
                                 bool transform) const;
  // Predictions of rows [begin, end) into out[begin, end).
  void RunRows(const float* x, int64_t cols, int64_t begin, int64_t end, bool transform,
               float* out) const;
  // The margins of one block of rows (row[r], kBlockRows of them) added to margin[].
  void AddTreesLinked(const float* const* row, float* margin) const;
  void AddTreesComplete(const float* xt, float* margin) const;

  std::vector<Node> nodes_;
  std::vector<Tree> trees_;
  bool complete_ = false;
  std::vector<Split> splits_;
  std::vector<float> leaves_;
  int64_t num_features_ = 0;
  int max_depth_ = 0;
  float base_margin_ = 0;
  std::string objective_;
  Transform transform_ = Transform::kIdentity;
};

}  // namespace engage::ml
