#include "transport/thrift/framed_transport.h"

#include <utility>

namespace polycrud::thrift_transport {

using ::apache::thrift::TConfiguration;
using ::apache::thrift::transport::TFramedTransport;
using ::apache::thrift::transport::TTransport;

bool PerFrameFramedTransport::readFrame() {
  // Called only once the previous frame is used up: its reads no longer count.
  resetConsumedMessageSize();
  return TFramedTransport::readFrame();
}

std::shared_ptr<TTransport> PerFrameFramedTransportFactory::getTransport(
    std::shared_ptr<TTransport> trans) {
  return std::make_shared<PerFrameFramedTransport>(std::move(trans), config_);
}

std::shared_ptr<TFramedTransport> MakeFramedTransport(std::shared_ptr<TTransport> inner,
                                                      std::shared_ptr<TConfiguration> config) {
  return std::make_shared<PerFrameFramedTransport>(std::move(inner), std::move(config));
}

}  // namespace polycrud::thrift_transport
