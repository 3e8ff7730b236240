// The OpenAPI 3.0 document of the REST face (openapi/polycrud.yaml), converted
// to JSON at build time and embedded in the binary.
#pragma once

#include <string_view>

namespace polycrud::openapi {

// The whole document as compact JSON. Static storage; thread-safe.
std::string_view OpenApiJson();

}  // namespace polycrud::openapi
