#include <cctype>
#include <string>

#include "server/face.h"
#include "server/grpc_face.h"
#include "server/rest_face.h"
#include "server/soap_face.h"
#include "server/thrift_face.h"

namespace polycrud::server {

void AddFaceTlsOptions(CLI::App& app, std::string_view face, tls::TlsFiles& files) {
  const std::string flag = "--" + std::string(face) + "-tls-";
  std::string env = "POLYCRUD_" + std::string(face) + "_TLS_";
  for (char& c : env) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  app.add_option(flag + "cert", files.cert, "This face's TLS certificate (else --tls-cert)")
      ->envname(env + "CERT");
  app.add_option(flag + "key", files.key, "This face's TLS private key (else --tls-key)")
      ->envname(env + "KEY");
  app.add_option(flag + "client-ca", files.ca,
                 "CA of the client certificates this face requires (else --tls-client-ca)")
      ->envname(env + "CLIENT_CA");
}

tls::TlsFiles ChooseTls(const tls::TlsFiles& own, const tls::TlsFiles& common) {
  return {.cert = own.cert.empty() ? common.cert : own.cert,
          .key = own.key.empty() ? common.key : own.key,
          .ca = own.ca.empty() ? common.ca : own.ca};
}

FaceList MakeFaces() {
  FaceList faces;
  faces.push_back(MakeThriftFace());
  faces.push_back(MakeGrpcFace());
  faces.push_back(MakeSoapFace());
  faces.push_back(MakeRestFace());
  return faces;
}

}  // namespace polycrud::server
