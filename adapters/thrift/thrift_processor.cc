#include "adapters/thrift/thrift_processor.h"

#include <thrift/TApplicationException.h>
#include <thrift/protocol/TProtocol.h>

#include <cstring>
#include <string_view>
#include <type_traits>

namespace polycrud::thrift_adapter {

using apache::thrift::TApplicationException;
using apache::thrift::protocol::TMessageType;
using apache::thrift::protocol::TProtocol;

bool ThriftProcessor::process(std::shared_ptr<TProtocol> in, std::shared_ptr<TProtocol> out,
                              void* connection_context) {
  std::string name;
  TMessageType type = apache::thrift::protocol::T_CALL;
  std::int32_t seqid = 0;
  in->readMessageBegin(name, type, seqid);
  // As the generated processors do: anything but a call ends the connection.
  // The protocol stores the wire's byte into the enum as it is; its bytes
  // are compared, since loading a value outside the enum is undefined.
  std::underlying_type_t<TMessageType> raw = 0;
  static_assert(sizeof raw == sizeof type);
  std::memcpy(&raw, &type, sizeof raw);
  if (raw != apache::thrift::protocol::T_CALL && raw != apache::thrift::protocol::T_ONEWAY) {
    return false;
  }
  const std::size_t colon = name.find(':');
  if (colon == std::string::npos) {
    return users_.Dispatch(in.get(), out.get(), name, seqid, connection_context);
  }
  const std::string_view service = std::string_view(name).substr(0, colon);
  const std::string method = name.substr(colon + 1);
  if (service == kUserServiceName) {
    return users_.Dispatch(in.get(), out.get(), method, seqid, connection_context);
  }
  if (service == kStatusServiceName) {
    return status_.Dispatch(in.get(), out.get(), method, seqid, connection_context);
  }
  in->skip(apache::thrift::protocol::T_STRUCT);
  in->readMessageEnd();
  in->getTransport()->readEnd();
  const TApplicationException unknown(TApplicationException::UNKNOWN_METHOD,
                                      "Unknown service " + std::string(service));
  out->writeMessageBegin(name, apache::thrift::protocol::T_EXCEPTION, seqid);
  unknown.write(out.get());
  out->writeMessageEnd();
  out->getTransport()->writeEnd();
  out->getTransport()->flush();
  return true;
}

}  // namespace polycrud::thrift_adapter
