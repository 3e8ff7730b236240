# Sourced by the shell tests: the test settings and a failure helper.
# setting KEY: the environment's value of KEY, else the one in
# POLYCRUD_TEST_SETTINGS_FILE (tests/CMakeLists.txt writes it).
setting() {
  local key=$1
  if [[ -n ${!key:-} ]]; then
    printf '%s\n' "${!key}"
    return
  fi
  sed -n "s/^${key}=//p" "$POLYCRUD_TEST_SETTINGS_FILE" | head -n 1
}

# fail MESSAGE: says why the test failed and ends it.
fail() {
  echo "FAIL: $*" >&2
  exit 1
}
