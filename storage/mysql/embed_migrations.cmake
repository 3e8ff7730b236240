# Generates a C++ source that embeds the migration SQL files.
# Usage: cmake -DOUTPUT=<file.cc> -DINPUTS=<a.sql|b.sql|...> -P embed_migrations.cmake
# Each input is named <version>_<name>.sql; versions must strictly increase.
if(NOT OUTPUT OR NOT INPUTS)
  message(FATAL_ERROR "embed_migrations.cmake needs -DOUTPUT and -DINPUTS")
endif()
string(REPLACE "|" ";" inputs "${INPUTS}")

set(arrays "")
set(entries "")
set(previous 0)
set(index 0)
foreach(input IN LISTS inputs)
  get_filename_component(file_name "${input}" NAME)
  if(NOT file_name MATCHES "^([0-9]+)_([a-z0-9_]+)\\.sql$")
    message(FATAL_ERROR "migration ${file_name}: expected <version>_<name>.sql")
  endif()
  set(name "${CMAKE_MATCH_2}")
  string(REGEX REPLACE "^0+" "" version "${CMAKE_MATCH_1}")
  if(version STREQUAL "" OR NOT version GREATER previous)
    message(FATAL_ERROR "migration ${file_name}: versions must start at 1 and strictly increase")
  endif()
  set(previous ${version})

  file(READ "${input}" hex HEX)
  if(hex STREQUAL "")
    message(FATAL_ERROR "migration ${file_name} is empty")
  endif()
  string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
  string(APPEND arrays "constexpr unsigned char kSql${index}[] = {${bytes}};\n")
  string(APPEND entries
    "      {${version}, \"${name}\", std::string_view(reinterpret_cast<const char*>(kSql${index}), sizeof(kSql${index}))},\n")
  math(EXPR index "${index} + 1")
endforeach()

set(content "// Generated from storage/mysql/migrations by embed_migrations.cmake. Do not edit.
#include \"storage/mysql/migrations.h\"

namespace polycrud {
namespace {
${arrays}}  // namespace

std::span<const Migration> EmbeddedMigrations() {
  static const Migration kMigrations[] = {
${entries}  };
  return kMigrations;
}

}  // namespace polycrud
")

# Rewrite only on change, so dependents are not rebuilt needlessly.
if(EXISTS "${OUTPUT}")
  file(READ "${OUTPUT}" old)
  if(old STREQUAL content)
    return()
  endif()
endif()
file(WRITE "${OUTPUT}" "${content}")
