// Choice, Wait, Pass, Succeed and Fail: the states that call no task and run no children.

#include <fmt/format.h>

#include <cmath>
#include <string_view>

#include "flow/engine_internal.h"
#include "flow/util_internal.h"

namespace engage::flow {

namespace {

// A number with no fraction from `lo` to `hi` (as read at run time, where 5.0 is 5); never
// converts an out-of-range value.
bool WholeNumberIn(const Json& v, int64_t lo, int64_t hi) {
  if (!v.is_number()) return false;
  if (v.is_number_unsigned()) return v.get<uint64_t>() <= static_cast<uint64_t>(hi) && lo <= 0;
  if (v.is_number_integer()) return v.get<int64_t>() >= lo && v.get<int64_t>() <= hi;
  double d = v.get<double>();
  return std::isfinite(d) && d == std::floor(d) && d >= static_cast<double>(lo) &&
         d <= static_cast<double>(hi);
}

// Matches `s` against a StringMatches pattern: '*' is any run of characters, "\*" a star and
// "\\" a backslash.
bool WildcardMatch(std::string_view s, std::string_view p) {
  size_t si = 0, pi = 0, star_p = std::string_view::npos, star_s = 0;
  while (si < s.size()) {
    if (pi < p.size() && p[pi] == '*') {
      star_p = pi++;
      star_s = si;
      continue;
    }
    if (pi < p.size()) {
      char want = p[pi];
      size_t adv = 1;
      if (want == '\\' && pi + 1 < p.size()) {
        want = p[pi + 1];
        adv = 2;
      }
      if (want == s[si]) {
        pi += adv;
        ++si;
        continue;
      }
    }
    if (star_p == std::string_view::npos) return false;
    pi = star_p + 1;
    si = ++star_s;
  }
  while (pi < p.size() && p[pi] == '*') ++pi;
  return pi == p.size();
}

}  // namespace

Flow<bool> Engine::Impl::EvalRule(const ChoiceRule& rule, const Json& input, const StateRun& sr,
                                  const VarScope& vars, const StatesVar& sv) const {
  switch (rule.kind) {
    case ChoiceRule::Kind::kAnd:
      for (const ChoiceRule& c : rule.children) {
        FLOW_ASSIGN_OR_RETURN(bool v, EvalRule(c, input, sr, vars, sv));
        if (!v) return false;
      }
      return true;
    case ChoiceRule::Kind::kOr:
      for (const ChoiceRule& c : rule.children) {
        FLOW_ASSIGN_OR_RETURN(bool v, EvalRule(c, input, sr, vars, sv));
        if (v) return true;
      }
      return false;
    case ChoiceRule::Kind::kNot: {
      FLOW_ASSIGN_OR_RETURN(bool v, EvalRule(rule.children[0], input, sr, vars, sv));
      return !v;
    }
    case ChoiceRule::Kind::kJsonata: {
      FLOW_ASSIGN_OR_RETURN(Json v, EvalJsonata(*rule.condition, sv, sr, vars));
      if (!v.is_boolean()) {
        return QueryError(sr, fmt::format("The Condition '{}' returned a {} value, not a boolean.",
                                          rule.condition->source, JsonTypeName(v)));
      }
      return v.get<bool>();
    }
    case ChoiceRule::Kind::kCompare:
      break;
  }
  Result<Json> var = ResolvePath(*rule.variable, input, sr, vars);
  if (!var.ok() && IsDataLimit(var.status())) return DataLimitFailure(sr, var.status());
  if (rule.op == "IsPresent") return var.ok() == rule.operand.get<bool>();
  if (!var.ok()) {
    return RuntimeError(sr, fmt::format("Invalid path '{}': The choice state's condition path "
                                        "references an invalid value.",
                                        rule.variable->text()));
  }
  const Json& v = *var;
  Json operand = rule.operand;
  if (rule.path_operand) {
    Result<Json> o = ResolvePath(*rule.path_operand, input, sr, vars);
    if (!o.ok() && IsDataLimit(o.status())) return DataLimitFailure(sr, o.status());
    if (!o.ok()) {
      return RuntimeError(sr, fmt::format("Invalid path '{}': The choice state's condition path "
                                          "references an invalid value.",
                                          rule.path_operand->text()));
    }
    operand = std::move(o).value();
  }
  const std::string& op = rule.op;
  if (op == "IsNull") return v.is_null() == operand.get<bool>();
  if (op == "IsNumeric") return v.is_number() == operand.get<bool>();
  if (op == "IsString") return v.is_string() == operand.get<bool>();
  if (op == "IsBoolean") return v.is_boolean() == operand.get<bool>();
  if (op == "IsTimestamp") {
    bool ts = v.is_string() && ParseTimestampMicros(v.get<std::string>()).has_value();
    return ts == operand.get<bool>();
  }
  if (op == "BooleanEquals") return v.is_boolean() && operand.is_boolean() && v == operand;
  if (op == "StringMatches") {
    return v.is_string() && operand.is_string() &&
           WildcardMatch(v.get<std::string>(), operand.get<std::string>());
  }
  int cmp = 0;
  if (op.rfind("String", 0) == 0) {
    if (!v.is_string() || !operand.is_string()) return false;
    int c = v.get_ref<const std::string&>().compare(operand.get_ref<const std::string&>());
    cmp = c < 0 ? -1 : c > 0 ? 1 : 0;
  } else if (op.rfind("Numeric", 0) == 0) {
    if (!v.is_number() || !operand.is_number()) return false;
    if (v.is_number_integer() && operand.is_number_integer() && !v.is_number_unsigned() &&
        !operand.is_number_unsigned()) {
      int64_t a = v.get<int64_t>(), b = operand.get<int64_t>();
      cmp = a < b ? -1 : a > b ? 1 : 0;
    } else {
      double a = v.get<double>(), b = operand.get<double>();
      cmp = a < b ? -1 : a > b ? 1 : 0;
    }
  } else if (op.rfind("Timestamp", 0) == 0) {
    if (!v.is_string() || !operand.is_string()) return false;
    auto a = ParseTimestampMicros(v.get<std::string>());
    auto b = ParseTimestampMicros(operand.get<std::string>());
    if (!a || !b) return false;
    cmp = *a < *b ? -1 : *a > *b ? 1 : 0;
  }
  std::string_view rel = op;
  if (rel.size() >= 6 && rel.substr(rel.size() - 6) == "Equals" &&
      (rel.find("ThanEquals") == std::string_view::npos)) {
    return cmp == 0;
  }
  if (rel.find("LessThanEquals") != std::string_view::npos) return cmp <= 0;
  if (rel.find("GreaterThanEquals") != std::string_view::npos) return cmp >= 0;
  if (rel.find("LessThan") != std::string_view::npos) return cmp < 0;
  if (rel.find("GreaterThan") != std::string_view::npos) return cmp > 0;
  return false;
}

Flow<StepResult> Engine::Impl::RunChoice(const State& st, const Json& raw, Lane& lane, StateRun& sr,
                                         Json* assigned) {
  StatesVar sv;
  sv.input = &raw;
  Json eff = raw;
  if (st.language == QueryLanguage::kJsonPath) {
    FLOW_ASSIGN_OR_RETURN(eff, ApplyInputPath(st, raw, sr, *lane.vars));
  }
  const ChoiceRule* matched = nullptr;
  for (const ChoiceRule& rule : st.choices) {
    FLOW_ASSIGN_OR_RETURN(bool ok, EvalRule(rule, eff, sr, *lane.vars, sv));
    if (ok) {
      matched = &rule;
      break;
    }
  }
  std::string next;
  const std::optional<Template>* assign = &st.assign;
  const std::optional<Template>* output = &st.output;
  if (matched != nullptr) {
    next = matched->next;
    assign = &matched->assign;
    if (matched->output) output = &matched->output;
  } else if (!st.default_next.empty()) {
    next = st.default_next;
  } else {
    return Failure{"States.NoChoiceMatched",
                   Prefix(sr) + "No Choice Rule matched and there is no Default."};
  }
  if (*assign) {
    FLOW_ASSIGN_OR_RETURN(*assigned, EvalAssign(**assign, eff, sv, sr, *lane.vars));
  }
  Json out;
  if (st.language == QueryLanguage::kJsonata) {
    if (*output) {
      FLOW_ASSIGN_OR_RETURN(out, EvalJsonata(**output, sv, sr, *lane.vars));
    } else {
      out = raw;
    }
  } else {
    FLOW_ASSIGN_OR_RETURN(out, ApplyOutputPath(st, eff, sr, *lane.vars));
  }
  return StepResult{std::move(out), next};
}

Flow<StepResult> Engine::Impl::RunWait(const State& st, const Json& raw, Lane& lane, StateRun& sr,
                                       Json* assigned) {
  StatesVar sv;
  sv.input = &raw;
  Json eff = raw;
  if (st.language == QueryLanguage::kJsonPath) {
    FLOW_ASSIGN_OR_RETURN(eff, ApplyInputPath(st, raw, sr, *lane.vars));
  }
  int64_t wait_micros = 0;
  if (st.wait_seconds) {
    Json v;
    if (st.language == QueryLanguage::kJsonata) {
      FLOW_ASSIGN_OR_RETURN(v, EvalJsonata(*st.wait_seconds, sv, sr, *lane.vars));
    } else {
      v = st.wait_seconds->literal;
    }
    if (!WholeNumberIn(v, 0, kMaxWaitSeconds)) {
      return QueryError(sr, fmt::format("The Seconds field must be an integer from 0 to {}, "
                                        "but was: {}",
                                        kMaxWaitSeconds, DumpJson(v)));
    }
    wait_micros = static_cast<int64_t>(v.get<double>()) * 1000000;
  } else if (st.seconds_path) {
    Result<Json> v = ResolvePath(*st.seconds_path, eff, sr, *lane.vars);
    if (!v.ok() && IsDataLimit(v.status())) return DataLimitFailure(sr, v.status());
    const std::string& p = st.seconds_path->text();
    if (!v.ok()) {
      return RuntimeError(
          sr, fmt::format("The SecondsPath parameter does not reference an input value: {}", p));
    }
    if (v->is_number_float()) {
      double d = v->get<double>();
      if (d != std::floor(d)) {
        return RuntimeError(sr, fmt::format("The SecondsPath parameter cannot be parsed as a "
                                            "long value: {} == {}",
                                            p, DumpJson(*v)));
      }
    } else if (!v->is_number()) {
      return RuntimeError(sr, fmt::format("The SecondsPath parameter cannot be parsed as a long "
                                          "value: {} == {}",
                                          p, DumpJson(*v)));
    }
    if (v->get<double>() < 0) {
      return RuntimeError(sr, fmt::format("The SecondsPath parameter references a negative "
                                          "value: {} == {}",
                                          p, DumpJson(*v)));
    }
    if (!WholeNumberIn(*v, 0, kMaxWaitSeconds)) {
      return RuntimeError(sr, fmt::format("The SecondsPath parameter references a value "
                                          "above the maximum of {} seconds: {} == {}",
                                          kMaxWaitSeconds, p, DumpJson(*v)));
    }
    wait_micros = static_cast<int64_t>(v->get<double>()) * 1000000;
  } else {
    std::string text;
    if (st.timestamp_path) {
      Result<Json> v = ResolvePath(*st.timestamp_path, eff, sr, *lane.vars);
      if (!v.ok() && IsDataLimit(v.status())) return DataLimitFailure(sr, v.status());
      if (!v.ok()) {
        return RuntimeError(sr, fmt::format("The TimestampPath parameter does not reference an "
                                            "input value: {}",
                                            st.timestamp_path->text()));
      }
      std::string shown = v->is_string() ? v->get<std::string>() : DumpJson(*v);
      if (!v->is_string() || !ParseTimestampMicros(v->get<std::string>())) {
        return RuntimeError(sr, fmt::format("The TimestampPath parameter does not reference a "
                                            "valid ISO-8601 extended offset date-time format "
                                            "string: {} == {}",
                                            st.timestamp_path->text(), shown));
      }
      text = v->get<std::string>();
    } else {
      Json v;
      if (st.language == QueryLanguage::kJsonata) {
        FLOW_ASSIGN_OR_RETURN(v, EvalJsonata(*st.wait_timestamp, sv, sr, *lane.vars));
      } else {
        v = st.wait_timestamp->literal;
      }
      std::string shown = v.is_string() ? v.get<std::string>() : DumpJson(v);
      if (!v.is_string() || !ParseTimestampMicros(v.get<std::string>())) {
        return QueryError(sr, fmt::format("The Timestamp field cannot be parsed as an ISO-8601 "
                                          "extended offset date-time format string: {}",
                                          shown));
      }
      text = v.get<std::string>();
    }
    wait_micros = *ParseTimestampMicros(text) - clock->NowMicros();
  }
  FLOW_ASSIGN_OR_RETURN(bool waited, WaitFor(wait_micros, lane));
  (void)waited;
  if (st.assign) {
    FLOW_ASSIGN_OR_RETURN(*assigned, EvalAssign(*st.assign, eff, sv, sr, *lane.vars));
  }
  Json out;
  if (st.language == QueryLanguage::kJsonata) {
    if (st.output) {
      FLOW_ASSIGN_OR_RETURN(out, EvalJsonata(*st.output, sv, sr, *lane.vars));
    } else {
      out = raw;
    }
  } else {
    FLOW_ASSIGN_OR_RETURN(out, ApplyOutputPath(st, eff, sr, *lane.vars));
  }
  return StepResult{std::move(out), st.next};
}

Flow<std::optional<std::string>> Engine::Impl::FailField(const State& st,
                                                         const std::optional<Template>& t,
                                                         bool from_path, const Json& raw,
                                                         const StateRun& sr,
                                                         const VarScope& vars) const {
  if (!t) return std::optional<std::string>();
  Json v;
  if (st.language == QueryLanguage::kJsonata) {
    StatesVar sv;
    sv.input = &raw;
    FLOW_ASSIGN_OR_RETURN(v, EvalJsonata(*t, sv, sr, vars));
  } else if (from_path && t->kind == Template::Kind::kPath) {
    Result<Json> r = ResolvePath(*t->path, raw, sr, vars);
    if (!r.ok() && IsDataLimit(r.status())) return DataLimitFailure(sr, r.status());
    if (!r.ok()) {
      return RuntimeError(sr, fmt::format("The JSONPath '{}' specified for the field '{}' could "
                                          "not be found in the input '{}'",
                                          t->source, t->field, DumpJson(raw)));
    }
    v = std::move(r).value();
  } else {
    FLOW_ASSIGN_OR_RETURN(v, EvalPathTemplate(*t, raw, sr, vars));
  }
  return std::optional<std::string>(v.is_string() ? v.get<std::string>() : DumpJson(v));
}

Flow<StepResult> Engine::Impl::RunFail(const State& st, const Json& raw, const StateRun& sr,
                                       const VarScope& vars) {
  FLOW_ASSIGN_OR_RETURN(std::optional<std::string> error,
                        FailField(st, st.error, st.error_from_path, raw, sr, vars));
  FLOW_ASSIGN_OR_RETURN(std::optional<std::string> cause,
                        FailField(st, st.cause, st.cause_from_path, raw, sr, vars));
  return Failure{std::move(error), std::move(cause)};
}

Flow<StepResult> Engine::Impl::RunSucceed(const State& st, const Json& raw, Lane& lane,
                                          const StateRun& sr) {
  Json out;
  if (st.language == QueryLanguage::kJsonata) {
    if (st.output) {
      StatesVar sv;
      sv.input = &raw;
      FLOW_ASSIGN_OR_RETURN(out, EvalJsonata(*st.output, sv, sr, *lane.vars));
    } else {
      out = raw;
    }
  } else {
    FLOW_ASSIGN_OR_RETURN(Json eff, ApplyInputPath(st, raw, sr, *lane.vars));
    FLOW_ASSIGN_OR_RETURN(out, ApplyOutputPath(st, eff, sr, *lane.vars));
  }
  return StepResult{std::move(out), ""};
}

Flow<Json> Engine::Impl::PassResult(const State& st, const Json& eff, const StateRun& sr,
                                    const VarScope& vars) const {
  Json params = eff;
  if (st.parameters) {
    FLOW_ASSIGN_OR_RETURN(params, EvalPathTemplate(*st.parameters, eff, sr, vars));
  }
  return st.result ? *st.result : params;
}

}  // namespace engage::flow
