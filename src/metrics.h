// Per-interpreter statistics, as Orthanc metrics and as the /python/interpreters route.
#pragma once

namespace opm {

/// Registers the metrics refresh callback and the JSON route; during initialization.
void register_metrics();

}  // namespace opm
