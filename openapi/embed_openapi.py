#!/usr/bin/python3
"""Converts openapi/polycrud.yaml to JSON and writes it both as a C++ source
(embedding the document in the binary) and as a plain .json file.

Usage: embed_openapi.py IN.yaml OUT.cc OUT.json
Needs Debian's python3-yaml (visible to /usr/bin/python3)."""

import json
import sys

import yaml

DELIMITER = "polycrud_openapi"


def main():
    source, out_cc, out_json = sys.argv[1:4]
    with open(source, encoding="utf-8") as f:
        document = yaml.safe_load(f)
    if not isinstance(document, dict) or "openapi" not in document:
        sys.exit("%s: not an OpenAPI document" % source)
    text = json.dumps(document, ensure_ascii=False, separators=(",", ":"), sort_keys=False)
    if ")" + DELIMITER + '"' in text:
        sys.exit("the raw-string delimiter occurs in the document")
    with open(out_json, "w", encoding="utf-8") as f:
        f.write(text + "\n")
    with open(out_cc, "w", encoding="utf-8") as f:
        f.write("// Generated from openapi/polycrud.yaml by openapi/embed_openapi.py. Do not edit.\n")
        f.write('#include "openapi/openapi_json.h"\n\n')
        f.write("namespace polycrud::openapi {\nnamespace {\n")
        f.write('constexpr char kJson[] = R"%s(%s)%s";\n' % (DELIMITER, text, DELIMITER))
        f.write("}  // namespace\n\n")
        f.write("std::string_view OpenApiJson() { return {kJson, sizeof(kJson) - 1}; }\n\n")
        f.write("}  // namespace polycrud::openapi\n")


if __name__ == "__main__":
    main()
