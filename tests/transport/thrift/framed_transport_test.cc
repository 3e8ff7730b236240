// PerFrameFramedTransport: one transport may read frames totalling more than
// TConfiguration's max message size without ever being flushed (the input side
// of a server connection), while each frame stays bounded.
#include "transport/thrift/framed_transport.h"

#include <gtest/gtest.h>
#include <thrift/TConfiguration.h>
#include <thrift/protocol/TBinaryProtocol.h>
#include <thrift/transport/TBufferTransports.h>
#include <thrift/transport/TTransportException.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>

namespace polycrud::thrift_transport {
namespace {

using ::apache::thrift::TConfiguration;
using ::apache::thrift::protocol::TBinaryProtocol;
using ::apache::thrift::transport::TFramedTransport;
using ::apache::thrift::transport::TMemoryBuffer;
using ::apache::thrift::transport::TTransportException;

// A copy: the constant has no out-of-line definition to bind a reference to.
const int kMaxMessageBytes = TConfiguration::DEFAULT_MAX_MESSAGE_SIZE;
constexpr int kStringBytes = 1024 * 1024;
// Enough one-string frames to read well past the budget.
const int kFrames = kMaxMessageBytes / kStringBytes + 8;

// `frames` frames on one wire, each holding one kStringBytes binary string.
std::shared_ptr<TMemoryBuffer> FramesOfOneString(int frames) {
  auto wire = std::make_shared<TMemoryBuffer>();
  auto framed = std::make_shared<TFramedTransport>(wire);
  TBinaryProtocol out(framed);
  const std::string s(kStringBytes, 'x');
  for (int i = 0; i < frames; ++i) {
    out.writeString(s);
    framed->flush();
  }
  return wire;
}

// Reads one string per frame, as a server reads requests (readEnd() after
// each, never a flush); returns how many arrived whole before a failure.
int ReadStrings(const std::shared_ptr<TFramedTransport>& framed, int frames) {
  TBinaryProtocol in(framed);
  for (int i = 0; i < frames; ++i) {
    std::string s;
    try {
      in.readString(s);
    } catch (const TTransportException&) {
      return i;
    }
    framed->readEnd();
    if (s.size() != static_cast<std::size_t>(kStringBytes)) return i;
  }
  return frames;
}

TEST(PerFrameFramedTransportTest, ReadsMoreThanMaxMessageSizeWithoutAFlush) {
  EXPECT_EQ(ReadStrings(MakeFramedTransport(FramesOfOneString(kFrames)), kFrames), kFrames);
}

TEST(PerFrameFramedTransportTest, FactoryTransportsReadMoreThanMaxMessageSizeWithoutAFlush) {
  auto config = std::make_shared<TConfiguration>(kMaxMessageBytes, 2 * kStringBytes);
  PerFrameFramedTransportFactory factory(config);
  auto framed =
      std::dynamic_pointer_cast<TFramedTransport>(factory.getTransport(FramesOfOneString(kFrames)));
  ASSERT_NE(framed, nullptr);
  EXPECT_EQ(framed->getMaxFrameSize(), static_cast<std::uint32_t>(2 * kStringBytes));
  EXPECT_EQ(ReadStrings(framed, kFrames), kFrames);
}

// The Thrift 0.17 behaviour PerFrameFramedTransport works around. Should a
// Thrift upgrade change it, this fails, and the workaround can be revisited.
TEST(PerFrameFramedTransportTest, StockTransportStopsAtMaxMessageSizeWithoutAFlush) {
  auto stock = std::make_shared<TFramedTransport>(FramesOfOneString(kFrames));
  EXPECT_EQ(ReadStrings(stock, kFrames), kMaxMessageBytes / kStringBytes);
}

TEST(PerFrameFramedTransportTest, StillRefusesAFrameOverTheMaxFrameSize) {
  auto config = std::make_shared<TConfiguration>(kMaxMessageBytes, kStringBytes / 2);
  EXPECT_EQ(ReadStrings(MakeFramedTransport(FramesOfOneString(1), config), 1), 0);
}

}  // namespace
}  // namespace polycrud::thrift_transport
