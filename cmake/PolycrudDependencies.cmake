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

# nghttp2 (libnghttp2-dev): pkg-config; polycrud-wire decodes HPACK with it.
pkg_check_modules(NGHTTP2 REQUIRED IMPORTED_TARGET libnghttp2)

# MySQL Connector/C++ 1.1: neither pkg-config nor CMake files.
find_path(MYSQLCPPCONN_INCLUDE_DIR mysql_connection.h REQUIRED)
find_library(MYSQLCPPCONN_LIBRARY mysqlcppconn REQUIRED)
add_library(mysqlcppconn::mysqlcppconn UNKNOWN IMPORTED)
set_target_properties(mysqlcppconn::mysqlcppconn PROPERTIES
  IMPORTED_LOCATION ${MYSQLCPPCONN_LIBRARY}
  INTERFACE_INCLUDE_DIRECTORIES ${MYSQLCPPCONN_INCLUDE_DIR})

# rabbitmq-c 0.11 (librabbitmq-dev): a CMake config, target rabbitmq::rabbitmq.
find_package(rabbitmq-c CONFIG REQUIRED)

find_package(OpenSSL REQUIRED)
find_package(CLI11 CONFIG REQUIRED)
find_package(spdlog CONFIG REQUIRED)
find_package(nlohmann_json CONFIG REQUIRED)

# gRPC 1.51 ships a CMake config (gRPC::grpc++, gRPC::grpc++_reflection and the
# imported plugins); protobuf comes from CMake's own FindProtobuf.
find_package(Protobuf REQUIRED)
find_package(gRPC CONFIG REQUIRED)

# gSOAP 2.8: pkg-config gsoap++ (its cflags -DWITH_IPV6 -DWITH_DOM must also
# compile the generated code); wsdl2h and soapcpp2 generate it at build time.
pkg_check_modules(GSOAP REQUIRED IMPORTED_TARGET gsoap++)
find_program(GSOAP_WSDL2H wsdl2h REQUIRED)
find_program(GSOAP_SOAPCPP2 soapcpp2 REQUIRED)
find_path(GSOAP_IMPORT_DIR stlvector.h PATHS /usr/share/gsoap/import REQUIRED)

# Boost 1.74 (Beast, Asio) for the REST face: header-only, CMake config shipped.
# Its OpenAPI YAML becomes JSON at build time with Debian's python3-yaml, which
# only /usr/bin/python3 sees.
find_package(Boost 1.74 REQUIRED)
find_program(POLYCRUD_SYSTEM_PYTHON3 /usr/bin/python3 REQUIRED)

if(POLYCRUD_BUILD_TESTS)
  find_package(GTest CONFIG REQUIRED)
  find_program(PYTHON3_SYSTEM /usr/bin/python3 REQUIRED)
endif()

# libsystemd (252): sd_notify, so polycrud-server tells systemd when it is
# ready and when it stops (Type=notify units); a no-op outside systemd.
pkg_check_modules(SYSTEMD REQUIRED IMPORTED_TARGET libsystemd)
