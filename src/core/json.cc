#include "engage/core/json.h"

#include <fmt/format.h>

namespace engage {

Result<Json> ParseJson(std::string_view text, std::string_view what) {
  Json j = Json::parse(text.begin(), text.end(), nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return InvalidArgumentError(fmt::format("{}: not valid JSON", what));
  return j;
}

std::string DumpJson(const Json& j, int indent) {
  return j.dump(indent, ' ', false, Json::error_handler_t::replace);
}

Json StatusToJson(const Status& s) {
  Json e;
  e["code"] = std::string(CodeName(s.code()));
  e["message"] = s.message();
  return Json{{"error", e}};
}

}  // namespace engage
