// ThriftProcessor: what every Thrift server model runs. A call whose name
// carries no service (every UserService client) goes to UserService as
// before, after one search for ':' (Thrift's TMultiplexedProcessor splits
// every name and wraps the protocol per call); clients of Thrift's
// multiplexed protocol
// (TMultiplexedProtocol) name the service, "UserService:getUser" or
// "StatusService:getStatus" (idl/status.thrift). A service of another name
// is answered with TApplicationException UNKNOWN_METHOD, as an unknown
// method is.
#pragma once

#include <thrift/TDispatchProcessor.h>

#include <memory>
#include <string>

#include "StatusService.h"
#include "UserService.h"

namespace polycrud::thrift_adapter {

namespace gen = ::polycrud::thrift;

inline constexpr char kUserServiceName[] = "UserService";
inline constexpr char kStatusServiceName[] = "StatusService";

class ThriftProcessor final : public apache::thrift::TProcessor {
 public:
  ThriftProcessor(std::shared_ptr<gen::UserServiceIf> users,
                  std::shared_ptr<gen::StatusServiceIf> status)
      : users_(std::move(users)), status_(std::move(status)) {}

  bool process(std::shared_ptr<apache::thrift::protocol::TProtocol> in,
               std::shared_ptr<apache::thrift::protocol::TProtocol> out,
               void* connection_context) override;

 private:
  // The generated processors, with their dispatch (protected there) opened.
  template <typename Generated>
  class Dispatcher final : public Generated {
   public:
    using Generated::Generated;
    bool Dispatch(apache::thrift::protocol::TProtocol* in, apache::thrift::protocol::TProtocol* out,
                  const std::string& method, std::int32_t seqid, void* context) {
      return this->dispatchCall(in, out, method, seqid, context);
    }
  };

  Dispatcher<gen::UserServiceProcessor> users_;
  Dispatcher<gen::StatusServiceProcessor> status_;
};

}  // namespace polycrud::thrift_adapter
