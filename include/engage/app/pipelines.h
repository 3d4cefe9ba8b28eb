// The pipelines shipped inside the binary (pipelines/*.asl.json, compiled in): today the
// engagement pipeline that `engage run pipeline` and POST /v1/executions {"pipeline":
// "engagement"} run.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "engage/core/json.h"
#include "engage/core/status.h"
#include "engage/flow/definition.h"

namespace engage::app {

// The shipped pipeline's name.
inline constexpr const char* kEngagementPipelineName = "engagement";

// The definition text of the shipped engagement pipeline.
const char* EngagementPipelineDefinition();

// The shipped engagement pipeline, parsed once.
Result<std::shared_ptr<const flow::StateMachine>> EngagementPipeline();

// The engagement pipeline's input: the model name and the files to ingest first, from
// TABLE=FILE_OR_GLOB specs (customers before events, so attributes exist when events arrive,
// then the other tables by name). kInvalidArgument naming a malformed spec.
Result<Json> EngagementPipelineInput(const std::string& model,
                                     const std::vector<std::string>& ingest_specs);

}  // namespace engage::app
