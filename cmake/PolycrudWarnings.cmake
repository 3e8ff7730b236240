# The one place that sets warning flags. Our own targets call
# polycrud_warnings(<target>); generated code never does.
function(polycrud_warnings target)
  target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Werror -Wshadow
                                           -Wnon-virtual-dtor -Wconversion -Wno-sign-conversion
                                           # designated initializers leave the rest defaulted
                                           -Wno-missing-field-initializers
                                           # GCC 12 false positive on std::string concatenation
                                           # at -O3 (GCC bug 105329)
                                           -Wno-restrict)
endfunction()
