# Locates every third-party dependency, the standard way for each Debian
# package: find_package where a CMake config ships, pkg-config otherwise,
# find_path/find_library where the package ships neither.
find_package(PkgConfig REQUIRED)
find_package(Threads REQUIRED)

# Apache Thrift 0.17: pkg-config only. libthriftnb does not declare libevent.
pkg_check_modules(THRIFT REQUIRED IMPORTED_TARGET thrift)
pkg_check_modules(THRIFT_NB REQUIRED IMPORTED_TARGET thrift-nb)
pkg_check_modules(LIBEVENT REQUIRED IMPORTED_TARGET libevent)
find_program(THRIFT_COMPILER thrift REQUIRED)

# hiredis: pkg-config (its CMake module is broken without a version).
pkg_check_modules(HIREDIS REQUIRED IMPORTED_TARGET hiredis)

# MySQL Connector/C++ 1.1: neither pkg-config nor CMake files.
find_path(MYSQLCPPCONN_INCLUDE_DIR mysql_connection.h REQUIRED)
find_library(MYSQLCPPCONN_LIBRARY mysqlcppconn REQUIRED)
add_library(mysqlcppconn::mysqlcppconn UNKNOWN IMPORTED)
set_target_properties(mysqlcppconn::mysqlcppconn PROPERTIES
  IMPORTED_LOCATION ${MYSQLCPPCONN_LIBRARY}
  INTERFACE_INCLUDE_DIRECTORIES ${MYSQLCPPCONN_INCLUDE_DIR})

find_package(OpenSSL REQUIRED)
find_package(CLI11 CONFIG REQUIRED)
find_package(spdlog CONFIG REQUIRED)
find_package(nlohmann_json CONFIG REQUIRED)

if(POLYCRUD_BUILD_TESTS)
  find_package(GTest CONFIG REQUIRED)
  find_program(PYTHON3_SYSTEM /usr/bin/python3 REQUIRED)
endif()
