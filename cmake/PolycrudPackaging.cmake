# Debian 12 packages of polycrud (./polycrud package, CPack's DEB generator):
#   polycrud-server  the server, its systemd unit, /etc/polycrud/server.conf,
#                    the system user polycrud (postinst)
#   polycrud-tools   polycrud-cli and polycrud-seed
#   polycrud-web     the web console with its production npm modules, its
#                    systemd unit, /etc/polycrud/web.env; needs Debian's nodejs
# Depends of the binaries come from dpkg-shlibdeps; the packages are native
# (version = the project's), with copyright and changelog in
# /usr/share/doc/<package>/.
set(POLYCRUD_DEBIAN_DIR ${PROJECT_SOURCE_DIR}/deploy/debian)
set(POLYCRUD_PACKAGE_STAGE ${CMAKE_BINARY_DIR}/package-stage)

install(TARGETS polycrud-server RUNTIME DESTINATION sbin COMPONENT server)
# The gSOAP code is a shared library (wsdl/CMakeLists.txt says why), private
# to the server: in /usr/lib/polycrud-server, found through the server's
# RPATH once installed (the build tree keeps its own).
install(TARGETS polycrud_soap_gen LIBRARY DESTINATION lib/polycrud-server COMPONENT server)
set_target_properties(polycrud-server PROPERTIES INSTALL_RPATH /usr/lib/polycrud-server)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS_PRIVATE_DIRS ${CMAKE_BINARY_DIR}/wsdl)
install(TARGETS polycrud-cli polycrud-seed RUNTIME DESTINATION bin COMPONENT tools)

# Manual pages, made by help2man from each program's --help and --version
# (the same text, so they never disagree), gzip -9n.
find_program(HELP2MAN help2man REQUIRED)
set(POLYCRUD_MAN_DIR ${CMAKE_BINARY_DIR}/man)
set(polycrud_man_pages)
foreach(page "polycrud-server|8|server|the polycrud user directory server"
             "polycrud-cli|1|tools|create, read, update, delete and list polycrud users"
             "polycrud-seed|1|tools|load synthetic users into the polycrud database")
  string(REPLACE "|" ";" fields "${page}")
  list(GET fields 0 program)
  list(GET fields 1 section)
  list(GET fields 2 component)
  list(GET fields 3 summary)
  set(out ${POLYCRUD_MAN_DIR}/${program}.${section}.gz)
  # Sections --help does not have (signals, files), where a program has them.
  set(include)
  set(include_file)
  if(EXISTS ${POLYCRUD_DEBIAN_DIR}/${program}.h2m)
    set(include_file ${POLYCRUD_DEBIAN_DIR}/${program}.h2m)
    set(include --include ${include_file})
  endif()
  add_custom_command(
    OUTPUT ${out}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${POLYCRUD_MAN_DIR}
    COMMAND ${HELP2MAN} --no-info --no-discard-stderr --section ${section} --name ${summary}
            ${include} --output ${POLYCRUD_MAN_DIR}/${program}.${section} $<TARGET_FILE:${program}>
    COMMAND gzip -9nf ${POLYCRUD_MAN_DIR}/${program}.${section}
    DEPENDS ${program} ${include_file}
    COMMENT "Manual page ${program}(${section})"
    VERBATIM)
  list(APPEND polycrud_man_pages ${out})
  install(FILES ${out} DESTINATION share/man/man${section} COMPONENT ${component})
endforeach()
# Not in a sanitizer build: there the programs are not the ones packaged.
if(POLYCRUD_SANITIZE)
  add_custom_target(polycrud_man_pages DEPENDS ${polycrud_man_pages})
else()
  add_custom_target(polycrud_man_pages ALL DEPENDS ${polycrud_man_pages})
endif()
install(FILES ${PROJECT_SOURCE_DIR}/deploy/systemd/polycrud-server.service
        DESTINATION /lib/systemd/system COMPONENT server)
install(FILES ${POLYCRUD_DEBIAN_DIR}/server.conf DESTINATION /etc/polycrud COMPONENT server)
install(FILES ${PROJECT_SOURCE_DIR}/deploy/systemd/polycrud-web.service
        DESTINATION /lib/systemd/system COMPONENT web)
install(FILES ${POLYCRUD_DEBIAN_DIR}/web.env DESTINATION /etc/polycrud COMPONENT web)
install(PROGRAMS ${PROJECT_SOURCE_DIR}/web/bin/polycrud-web.js DESTINATION share/polycrud-web/bin
        COMPONENT web)
install(DIRECTORY ${PROJECT_SOURCE_DIR}/web/src ${PROJECT_SOURCE_DIR}/web/public
                  ${PROJECT_SOURCE_DIR}/web/gen
        DESTINATION share/polycrud-web COMPONENT web)
install(FILES ${PROJECT_SOURCE_DIR}/web/package.json DESTINATION share/polycrud-web COMPONENT web)
# npm ci --omit=dev into the stage (./polycrud package does it first).
# Scripts keep their executable bit (the stage has it exactly on them).
install(DIRECTORY ${POLYCRUD_PACKAGE_STAGE}/web/node_modules DESTINATION share/polycrud-web
        COMPONENT web OPTIONAL USE_SOURCE_PERMISSIONS)

# Per package: copyright, changelog (gzip -9n), the operator's guide, and
# the maintainer scripts and conffiles for the control archive.
file(MAKE_DIRECTORY ${CMAKE_BINARY_DIR}/debian)
execute_process(COMMAND gzip -9nc ${POLYCRUD_DEBIAN_DIR}/changelog
                OUTPUT_FILE ${CMAKE_BINARY_DIR}/debian/changelog.gz COMMAND_ERROR_IS_FATAL ANY)
foreach(component server tools web)
  set(package polycrud-${component})
  install(FILES ${POLYCRUD_DEBIAN_DIR}/copyright ${CMAKE_BINARY_DIR}/debian/changelog.gz
          DESTINATION share/doc/${package} COMPONENT ${component})
  set(control_dir ${CMAKE_BINARY_DIR}/debian/${component})
  file(MAKE_DIRECTORY ${control_dir})
  set(control_files)
  foreach(script postinst prerm postrm)
    if(EXISTS ${POLYCRUD_DEBIAN_DIR}/${component}.${script})
      file(COPY_FILE ${POLYCRUD_DEBIAN_DIR}/${component}.${script} ${control_dir}/${script})
      file(CHMOD ${control_dir}/${script} PERMISSIONS OWNER_READ OWNER_WRITE OWNER_EXECUTE
           GROUP_READ GROUP_EXECUTE WORLD_READ WORLD_EXECUTE)
      list(APPEND control_files ${control_dir}/${script})
    endif()
  endforeach()
  string(TOUPPER ${component} COMPONENT)
  set(CPACK_DEBIAN_${COMPONENT}_PACKAGE_NAME ${package})
  set(CPACK_DEBIAN_${COMPONENT}_PACKAGE_CONTROL_EXTRA ${control_files})
endforeach()
file(WRITE ${CMAKE_BINARY_DIR}/debian/server/conffiles "/etc/polycrud/server.conf\n")
file(WRITE ${CMAKE_BINARY_DIR}/debian/web/conffiles "/etc/polycrud/web.env\n")
list(APPEND CPACK_DEBIAN_SERVER_PACKAGE_CONTROL_EXTRA ${CMAKE_BINARY_DIR}/debian/server/conffiles)
list(APPEND CPACK_DEBIAN_WEB_PACKAGE_CONTROL_EXTRA ${CMAKE_BINARY_DIR}/debian/web/conffiles)
install(FILES ${PROJECT_SOURCE_DIR}/docs/operations.md DESTINATION share/doc/polycrud-server
        COMPONENT server)
install(FILES ${PROJECT_SOURCE_DIR}/docs/operations.md DESTINATION share/doc/polycrud-web
        COMPONENT web)

set(CPACK_GENERATOR DEB)
set(CPACK_PACKAGE_NAME polycrud)
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGE_CONTACT "polycrud maintainers <maintainers@polycrud.example>")
set(CPACK_PACKAGE_HOMEPAGE_URL "https://polycrud.example/")
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_PACKAGE_DIRECTORY ${PROJECT_SOURCE_DIR}/dist)
set(CPACK_STRIP_FILES ON)
set(CPACK_DEB_COMPONENT_INSTALL ON)
set(CPACK_COMPONENTS_ALL server tools web)
set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_DEBIAN_COMPRESSION_TYPE xz)
# procps: /bin/kill, which the unit's ExecReload runs.
set(CPACK_DEBIAN_SERVER_PACKAGE_DEPENDS "adduser, procps")
set(CPACK_DEBIAN_WEB_PACKAGE_DEPENDS "nodejs (>= 18.3), adduser")
set(CPACK_DEBIAN_WEB_PACKAGE_ARCHITECTURE all)
set(CPACK_DEBIAN_SERVER_PACKAGE_SUGGESTS "polycrud-tools, mariadb-server, redis-server")
string(CONCAT CPACK_COMPONENT_SERVER_DESCRIPTION
    "user directory service with Thrift, gRPC, SOAP and REST faces\n"
    "polycrud-server keeps user records in MariaDB and reads them through\n"
    "Redis, and serves the same operations over Apache Thrift (with a status\n"
    "service in the style of fb303), gRPC, SOAP and REST. Change events go\n"
    "to RabbitMQ through a transactional outbox. It runs under systemd\n"
    "(Type=notify) from /etc/polycrud/server.conf.")
string(CONCAT CPACK_COMPONENT_TOOLS_DESCRIPTION
    "command-line client and bulk seeder for polycrud\n"
    "polycrud-cli calls polycrud-server over Thrift (create, get, update,\n"
    "delete, list, watch change events); polycrud-seed loads millions of\n"
    "users into its MariaDB database.")
string(CONCAT CPACK_COMPONENT_WEB_DESCRIPTION
    "web console and REST gateway for polycrud\n"
    "polycrud-web is a Node.js and Express console for administrators and a\n"
    "REST gateway, talking to polycrud-server over Thrift. It runs under\n"
    "systemd from /etc/polycrud/web.env.")
include(CPack)
