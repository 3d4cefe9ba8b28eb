#include "engage/ml/forest.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <cmath>
#include <exception>
#include <limits>
#include <system_error>
#include <thread>
#include <utility>

#include "engage/core/json.h"

namespace engage::ml {
namespace {

constexpr int kBlockRows = Forest::kBlockRows;
// Below this many rows per thread, starting a thread costs more than it saves.
constexpr int64_t kMinRowsPerThread = 4096;

// XGBoost 1.7's common::Sigmoid, operation for operation, so probabilities match to the bit.
float Sigmoid(float x) {
  constexpr float kEps = 1e-16f;
  x = std::min(-x, 88.7f);
  float denom = std::exp(x) + 1.0f + kEps;
  return 1.0f / denom;
}

// Writes the subtree of nodes[n] at heap position `pos` (level `level`) of a complete tree of
// depth `depth`.
void FillComplete(const std::vector<Forest::Node>& nodes, int64_t num_features, int32_t n,
                  int64_t pos, int level, int depth, Forest::Split* splits, float* leaves) {
  const Forest::Node& node = nodes[n];
  if (node.child[0] == n) {  // a leaf: every leaf of the complete tree below pos gets its value
    int64_t first = (pos - ((int64_t{1} << level) - 1)) << (depth - level);
    std::fill(leaves + first, leaves + first + (int64_t{1} << (depth - level)), node.value);
    return;
  }
  uint32_t feature = node.feature & ~Forest::kDefaultLeft;
  bool default_left = (node.feature & Forest::kDefaultLeft) != 0;
  splits[pos] = {static_cast<uint32_t>((default_left ? num_features : 0) + feature) * kBlockRows,
                 node.value};
  FillComplete(nodes, num_features, node.child[0], 2 * pos + 1, level + 1, depth, splits, leaves);
  FillComplete(nodes, num_features, node.child[1], 2 * pos + 2, level + 1, depth, splits, leaves);
}

Status Bad(std::string_view what) {
  return InvalidArgumentError(fmt::format("not a well-formed XGBoost JSON model: {}", what));
}

// The member at `path` (dot-separated keys) or nullptr.
const Json* Find(const Json& root, std::initializer_list<const char*> path) {
  const Json* j = &root;
  for (const char* key : path) {
    if (!j->is_object()) return nullptr;
    auto it = j->find(key);
    if (it == j->end()) return nullptr;
    j = &*it;
  }
  return j;
}

// XGBoost writes scalar parameters as strings ("40", "5E-1"); numbers are accepted too.
template <typename T>
Result<T> ScalarParam(const Json& root, std::initializer_list<const char*> path,
                      std::string_view name) {
  const Json* j = Find(root, path);
  if (j == nullptr) return Bad(fmt::format("no {}", name));
  if (j->is_number()) return j->get<T>();
  if (!j->is_string()) return Bad(fmt::format("{} is neither a string nor a number", name));
  const std::string& s = j->get_ref<const std::string&>();
  T v{};
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size()) {
    return Bad(fmt::format("{} is '{}'", name, s));
  }
  return v;
}

// tree[key] as numbers of type T; booleans read as 0/1 (older files write default_left so).
template <typename T>
Status ReadArray(const Json& tree, const char* key, size_t tree_no, std::vector<T>* out) {
  auto it = tree.find(key);
  if (it == tree.end() || !it->is_array()) {
    return Bad(fmt::format("tree {} has no array '{}'", tree_no, key));
  }
  out->clear();
  out->reserve(it->size());
  for (const Json& e : *it) {
    if (e.is_boolean()) {
      out->push_back(static_cast<T>(e.get<bool>()));
    } else if (e.is_number() && (std::is_floating_point_v<T> || e.is_number_integer())) {
      // Floats go through double: XGBoost writes the shortest text that reads back as its
      // float, and every such text rounds to the same float via double.
      out->push_back(static_cast<T>(e.get<double>()));
    } else {
      return Bad(fmt::format("tree {}: '{}' holds a non-number", tree_no, key));
    }
  }
  return Status::Ok();
}

// One XGBoost tree, as stored in the JSON model (indices are local to the tree).
struct RawTree {
  std::vector<int64_t> left, right, feature, split_type;
  std::vector<float> cond;
  std::vector<int> default_left;
};

Result<RawTree> ReadTree(const Json& tree, size_t tree_no) {
  if (!tree.is_object()) return Bad(fmt::format("tree {} is not an object", tree_no));
  RawTree t;
  ENGAGE_RETURN_IF_ERROR(ReadArray(tree, "left_children", tree_no, &t.left));
  ENGAGE_RETURN_IF_ERROR(ReadArray(tree, "right_children", tree_no, &t.right));
  ENGAGE_RETURN_IF_ERROR(ReadArray(tree, "split_indices", tree_no, &t.feature));
  ENGAGE_RETURN_IF_ERROR(ReadArray(tree, "split_conditions", tree_no, &t.cond));
  ENGAGE_RETURN_IF_ERROR(ReadArray(tree, "default_left", tree_no, &t.default_left));
  if (tree.contains("split_type")) {
    ENGAGE_RETURN_IF_ERROR(ReadArray(tree, "split_type", tree_no, &t.split_type));
  }
  size_t n = t.left.size();
  if (n == 0) return Bad(fmt::format("tree {} has no nodes", tree_no));
  if (t.right.size() != n || t.feature.size() != n || t.cond.size() != n ||
      t.default_left.size() != n || (!t.split_type.empty() && t.split_type.size() != n)) {
    return Bad(fmt::format("the node arrays of tree {} differ in length", tree_no));
  }
  bool categorical =
      std::any_of(t.split_type.begin(), t.split_type.end(), [](int64_t s) { return s != 0; });
  auto cats = tree.find("categories_nodes");
  if (categorical || (cats != tree.end() && cats->is_array() && !cats->empty())) {
    return UnimplementedError(fmt::format(
        "tree {} has categorical splits, which the compiled forest does not support", tree_no));
  }
  return t;
}

}  // namespace

Result<Forest> Forest::FromModelJson(std::string_view xgboost_json) {
  ENGAGE_ASSIGN_OR_RETURN(Json root, ParseJson(xgboost_json, "XGBoost model"));
  Forest f;
  try {
    const Json* booster = Find(root, {"learner", "gradient_booster", "name"});
    if (booster == nullptr || !booster->is_string()) return Bad("no learner.gradient_booster.name");
    if (*booster != "gbtree") {
      return UnimplementedError(
          fmt::format("booster '{}' is not supported by the compiled forest (only gbtree)",
                      booster->get<std::string>()));
    }
    const Json* objective = Find(root, {"learner", "objective", "name"});
    if (objective == nullptr || !objective->is_string()) return Bad("no learner.objective.name");
    f.objective_ = objective->get<std::string>();
    bool logistic = false;
    if (f.objective_ == "binary:logistic" || f.objective_ == "reg:logistic") {
      logistic = true;
      f.transform_ = Transform::kSigmoid;
    } else if (f.objective_ != "binary:logitraw" && f.objective_ != "reg:squarederror") {
      return UnimplementedError(
          fmt::format("objective '{}' is not supported by the compiled forest", f.objective_));
    }

    ENGAGE_ASSIGN_OR_RETURN(
        int64_t num_class,
        ScalarParam<int64_t>(root, {"learner", "learner_model_param", "num_class"},
                             "learner_model_param.num_class"));
    int64_t num_target = 1;
    if (Find(root, {"learner", "learner_model_param", "num_target"}) != nullptr) {
      ENGAGE_ASSIGN_OR_RETURN(
          num_target, ScalarParam<int64_t>(root, {"learner", "learner_model_param", "num_target"},
                                           "learner_model_param.num_target"));
    }
    if (num_class > 1 || num_target > 1) {
      return UnimplementedError(
          fmt::format("a model with {} classes and {} targets is not supported by the compiled "
                      "forest (one output only)",
                      num_class, num_target));
    }
    ENGAGE_ASSIGN_OR_RETURN(
        f.num_features_,
        ScalarParam<int64_t>(root, {"learner", "learner_model_param", "num_feature"},
                             "learner_model_param.num_feature"));
    if (f.num_features_ < 1 || f.num_features_ > std::numeric_limits<int32_t>::max()) {
      return Bad(fmt::format("num_feature is {}", f.num_features_));
    }
    ENGAGE_ASSIGN_OR_RETURN(
        float base_score, ScalarParam<float>(root, {"learner", "learner_model_param", "base_score"},
                                             "learner_model_param.base_score"));
    if (logistic) {
      if (!(base_score > 0.0f && base_score < 1.0f)) {
        return Bad(
            fmt::format("base_score {} is outside (0, 1) for a logistic objective", base_score));
      }
      // XGBoost's LogisticRegression::ProbToMargin, in float as there.
      f.base_margin_ = -std::log(1.0f / base_score - 1.0f);
    } else {
      // Also binary:logitraw: XGBoost 1.7 starts its margin at base_score itself (checked
      // against its predictions in forest_test), not at the logit.
      f.base_margin_ = base_score;
    }

    const Json* trees = Find(root, {"learner", "gradient_booster", "model", "trees"});
    if (trees == nullptr || !trees->is_array()) {
      return Bad("no learner.gradient_booster.model.trees");
    }
    f.trees_.reserve(trees->size());
    for (size_t ti = 0; ti < trees->size(); ++ti) {
      ENGAGE_ASSIGN_OR_RETURN(RawTree t, ReadTree((*trees)[ti], ti));
      const size_t n = t.left.size();
      if (f.nodes_.size() + n > static_cast<size_t>(std::numeric_limits<int32_t>::max())) {
        return Bad("too many nodes");
      }
      // Breadth-first from the root, so each level of a tree is contiguous and nodes left over
      // from pruning (unreachable) are dropped.
      const auto base = static_cast<int32_t>(f.nodes_.size());
      std::vector<int32_t> new_index(n, -1);
      std::vector<std::pair<int64_t, int32_t>> queue = {{0, 0}};  // (local node, depth)
      new_index[0] = base;
      int32_t depth = 0;
      for (size_t q = 0; q < queue.size(); ++q) {
        auto [i, d] = queue[q];
        depth = std::max(depth, d);
        for (int64_t c : {t.left[i], t.right[i]}) {
          if (c == -1) continue;
          if (c < 0 || c >= static_cast<int64_t>(n)) {
            return Bad(fmt::format("tree {} node {} has child {} of {} nodes", ti, i, c, n));
          }
          if (new_index[c] != -1) {
            return Bad(fmt::format("tree {} reaches node {} twice", ti, c));
          }
          new_index[c] = base + static_cast<int32_t>(queue.size());
          queue.emplace_back(c, d + 1);
        }
        if ((t.left[i] == -1) != (t.right[i] == -1)) {
          return Bad(fmt::format("tree {} node {} has one child", ti, i));
        }
      }
      for (auto [i, d] : queue) {
        Node node;
        node.value = t.cond[i];
        auto self = new_index[i];
        if (t.left[i] == -1) {
          node.child[0] = node.child[1] = self;  // a leaf keeps every row that reaches it
        } else {
          if (t.feature[i] < 0 || t.feature[i] >= f.num_features_) {
            return Bad(fmt::format("tree {} node {} splits on feature {} of {}", ti, i,
                                   t.feature[i], f.num_features_));
          }
          node.feature =
              static_cast<uint32_t>(t.feature[i]) | (t.default_left[i] ? kDefaultLeft : 0);
          node.child[0] = new_index[t.left[i]];
          node.child[1] = new_index[t.right[i]];
        }
        f.nodes_.push_back(node);
      }
      f.trees_.push_back({base, depth, 0, 0});
      f.max_depth_ = std::max(f.max_depth_, static_cast<int>(depth));
    }
  } catch (const std::exception& e) {
    return Bad(e.what());
  }
  // Complete trees cost 2^depth leaves each, and send a missing value to the default side by
  // reading it as +-infinity, which is only right for thresholds above -infinity.
  f.complete_ = f.max_depth_ <= kMaxCompleteDepth &&
                2 * f.num_features_ * kBlockRows <= std::numeric_limits<uint32_t>::max() &&
                std::all_of(f.nodes_.begin(), f.nodes_.end(), [](const Node& n) {
                  return n.value > -std::numeric_limits<float>::infinity();  // also not NaN
                });
  if (f.complete_) {
    for (Tree& t : f.trees_) {
      t.split_begin = static_cast<int64_t>(f.splits_.size());
      t.leaf_begin = static_cast<int64_t>(f.leaves_.size());
      f.splits_.resize(f.splits_.size() + (size_t{1} << t.depth) - 1);
      f.leaves_.resize(f.leaves_.size() + (size_t{1} << t.depth));
      FillComplete(f.nodes_, f.num_features_, t.root, 0, 0, t.depth,
                   f.splits_.data() + t.split_begin, f.leaves_.data() + t.leaf_begin);
    }
  }
  return f;
}

Result<std::vector<float>> Forest::Predict(std::span<const float> x, int64_t cols,
                                           int nthread) const {
  return Run(x, cols, nthread, transform_ == Transform::kSigmoid);
}

Result<std::vector<float>> Forest::PredictMargin(std::span<const float> x, int64_t cols,
                                                 int nthread) const {
  return Run(x, cols, nthread, false);
}

Result<std::vector<float>> Forest::Run(std::span<const float> x, int64_t cols, int nthread,
                                       bool transform) const {
  if (cols != num_features_) {
    return InvalidArgumentError(
        fmt::format("matrix has {} columns but the model has {} features", cols, num_features_));
  }
  if (x.size() % static_cast<size_t>(cols) != 0) {
    return InvalidArgumentError(
        fmt::format("{} values are not whole rows of {} columns", x.size(), cols));
  }
  if (nthread < 0) {
    return InvalidArgumentError(fmt::format("nthread must be >= 0, got {}", nthread));
  }
  const auto rows = static_cast<int64_t>(x.size()) / cols;
  std::vector<float> out(static_cast<size_t>(rows));
  if (rows == 0) return out;

  int64_t threads = nthread > 0 ? nthread : std::max(1u, std::thread::hardware_concurrency());
  threads = std::clamp<int64_t>((rows + kMinRowsPerThread - 1) / kMinRowsPerThread, 1, threads);
  // Whole blocks per thread.
  int64_t per_thread = (rows + threads - 1) / threads;
  per_thread = (per_thread + kBlockRows - 1) / kBlockRows * kBlockRows;
  float* dst = out.data();
  {
    std::vector<std::jthread> pool;
    int64_t begin = per_thread;  // the calling thread takes the first share
    for (; begin < rows; begin += per_thread) {
      int64_t end = std::min(rows, begin + per_thread);
      try {
        pool.emplace_back([=, this] { RunRows(x.data(), cols, begin, end, transform, dst); });
      } catch (const std::system_error&) {
        break;  // no more threads: the calling thread does the rest below
      }
    }
    RunRows(x.data(), cols, 0, std::min(rows, per_thread), transform, dst);
    if (begin < rows) RunRows(x.data(), cols, begin, rows, transform, dst);
  }  // joins the threads, before `out` is moved into the result
  return out;
}

void Forest::RunRows(const float* x, int64_t cols, int64_t begin, int64_t end, bool transform,
                     float* out) const {
  const float* row[kBlockRows];
  float margin[kBlockRows];
  // For the complete layout, the block transposed (feature by feature) twice: with missing
  // values as +infinity, which every split sends right, and as -infinity, sent left.
  std::vector<float> xt(complete_ ? static_cast<size_t>(2 * cols * kBlockRows) : 0);
  constexpr float kInf = std::numeric_limits<float>::infinity();
  for (int64_t b = begin; b < end; b += kBlockRows) {
    const int n = static_cast<int>(std::min<int64_t>(kBlockRows, end - b));
    // A short last block repeats its first row, so the loops always run kBlockRows wide.
    for (int r = 0; r < kBlockRows; ++r) row[r] = x + (b + (r < n ? r : 0)) * cols;
    std::fill(margin, margin + kBlockRows, base_margin_);
    if (complete_) {
      float* missing_right = xt.data();
      float* missing_left = xt.data() + cols * kBlockRows;
      for (int r = 0; r < kBlockRows; ++r) {
        for (int64_t c = 0; c < cols; ++c) {
          float v = row[r][c];
          bool missing = std::isnan(v);
          missing_right[c * kBlockRows + r] = missing ? kInf : v;
          missing_left[c * kBlockRows + r] = missing ? -kInf : v;
        }
      }
      AddTreesComplete(xt.data(), margin);
    } else {
      AddTreesLinked(row, margin);
    }
    for (int r = 0; r < n; ++r) out[b + r] = transform ? Sigmoid(margin[r]) : margin[r];
  }
}

void Forest::AddTreesLinked(const float* const* row, float* margin) const {
  const Node* nodes = nodes_.data();
  int32_t at[kBlockRows];
  for (const Tree& t : trees_) {
    std::fill(at, at + kBlockRows, t.root);
    for (int32_t d = 0; d < t.depth; ++d) {
      for (int r = 0; r < kBlockRows; ++r) {
        const Node& node = nodes[at[r]];
        float v = row[r][node.feature & ~kDefaultLeft];
        // x < threshold goes left; NaN goes to the default side. A leaf's two children are
        // itself, so whatever this computes for it is harmless.
        bool right = !(v < node.value) ^ (std::isnan(v) & ((node.feature & kDefaultLeft) != 0));
        at[r] = node.child[right];
      }
    }
    // In tree order and in float, as XGBoost adds them.
    for (int r = 0; r < kBlockRows; ++r) margin[r] += nodes[at[r]].value;
  }
}

void Forest::AddTreesComplete(const float* xt, float* margin) const {
  uint32_t at[kBlockRows];
  for (const Tree& t : trees_) {
    const Split* splits = splits_.data() + t.split_begin;
    const float* leaves = leaves_.data() + t.leaf_begin;
    std::fill(at, at + kBlockRows, 0);
    for (int32_t d = 0; d < t.depth; ++d) {
      for (int r = 0; r < kBlockRows; ++r) {
        const Split s = splits[at[r]];
        // No test for missing values: they are +-infinity here, on the split's default side.
        at[r] = 2 * at[r] + 1 + !(xt[s.offset + r] < s.threshold);
      }
    }
    // In tree order and in float, as XGBoost adds them.
    const uint32_t first_leaf = (1u << t.depth) - 1;
    for (int r = 0; r < kBlockRows; ++r) margin[r] += leaves[at[r] - first_leaf];
  }
}

}  // namespace engage::ml
