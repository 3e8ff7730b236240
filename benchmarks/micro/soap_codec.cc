// SOAP codec: whole SOAP 1.1 envelopes written and read by the gSOAP code
// generated from wsdl/polycrud.wsdl (polycrud::soap_gen), with the SOAP
// face's context flags (SOAP_IO_KEEPALIVE | SOAP_C_UTFSTRING). Encode runs
// the generated service/proxy send sequence (serialize, the length-counting
// pass gSOAP makes for Content-Length, then the envelope) into a
// std::ostringstream through soap->os, leaving out only the HTTP header that
// soap_response()/soap_connect() would write first. Decode runs the generated
// receive sequence from soap->is (a std::istream reading the bytes in place)
// into fresh objects and frees them with soap_destroy()/soap_end(), as the
// face does after every call.
#include <memory>
#include <sstream>
#include <stdexcept>
#include <streambuf>
#include <string>

#include "benchmarks/micro/wire_codec.h"
#include "clients/soap_user_convert.h"
#include "soapH.h"

// The namespace table of polycrud::soap_gen (wsdl/CMakeLists.txt).
extern SOAP_NMAC struct Namespace namespaces[];

namespace polycrud::micro_bench {
namespace {

// A read-only std::streambuf over bytes owned elsewhere.
class ViewStreambuf final : public std::streambuf {
 public:
  explicit ViewStreambuf(std::string_view bytes) {
    char* begin = const_cast<char*>(bytes.data());  // never written: get area only
    setg(begin, begin, begin + bytes.size());
  }
};

void ToSoap(const User& u, pc__User& out) {
  out.id = u.id;
  out.username = u.username;
  out.email = u.email;
  out.full_USCOREname = u.full_name;
  out.version = u.version;
  out.created_USCOREat_USCOREms = u.created_at_ms;
  out.updated_USCOREat_USCOREms = u.updated_at_ms;
}

using clients::FromSoap;  // the SOAP client's own converter

std::vector<User> FromSoap(const std::vector<pc__User*>& users) {
  std::vector<User> out;
  out.reserve(users.size());
  for (const pc__User* u : users) {
    if (u == nullptr) throw std::runtime_error("SOAP user element missing");
    out.push_back(FromSoap(*u));
  }
  return out;
}

class SoapCodec final : public Codec {
 public:
  SoapCodec(MessageKind kind, const MessageValue& value)
      : kind_(kind), soap_(soap_new1(SOAP_IO_KEEPALIVE | SOAP_C_UTFSTRING)) {
    if (soap_ == nullptr) throw std::runtime_error("soap_new1 failed");
    soap_set_namespaces(soap_, namespaces);
    // The objects to encode are owned here, not by the context: soap_end()
    // after a decode never frees them.
    users_.resize(value.users.size());
    for (std::size_t i = 0; i < value.users.size(); ++i) ToSoap(value.users[i], users_[i]);
    switch (kind_) {
      case MessageKind::kUser:
        get_response_.user = &users_.front();
        break;
      case MessageKind::kList100:
        for (pc__User& u : users_) list_response_.users.push_back(&u);
        list_response_.next_USCOREafter_USCOREid = value.next_after_id;
        break;
      case MessageKind::kBatchRequest1000:
        batch_request_.ids.assign(value.ids.begin(), value.ids.end());
        break;
      case MessageKind::kBatchResponse1000:
        for (pc__User& u : users_) batch_response_.users.push_back(&u);
        break;
    }
  }

  ~SoapCodec() override {
    soap_destroy(soap_);
    soap_end(soap_);
    soap_free(soap_);
  }

  SoapCodec(const SoapCodec&) = delete;
  SoapCodec& operator=(const SoapCodec&) = delete;

  std::size_t Encode() override {
    out_.str(std::string());
    soap_->os = &out_;
    soap_begin(soap_);
    soap_->encodingStyle = nullptr;  // literal style, as the generated code sets
    soap_serializeheader(soap_);
    Serialize();
    if (soap_begin_count(soap_) != SOAP_OK) Fail("soap_begin_count");
    if ((soap_->mode & SOAP_IO_LENGTH) != 0 && PutEnvelope() != SOAP_OK) Fail("counting pass");
    if (soap_end_count(soap_) != SOAP_OK || soap_begin_send(soap_) != SOAP_OK ||
        PutEnvelope() != SOAP_OK || soap_end_send(soap_) != SOAP_OK) {
      Fail("envelope output");
    }
    soap_->os = nullptr;
    return static_cast<std::size_t>(out_.tellp());
  }

  std::string LastWire() const override { return out_.str(); }

  void Decode(std::string_view wire) override { DecodeInto(wire, nullptr); }

  MessageValue DecodeValue(std::string_view wire) override {
    MessageValue value;
    DecodeInto(wire, &value);
    return value;
  }

 private:
  void Serialize() {
    switch (kind_) {
      case MessageKind::kUser:
        get_response_.soap_serialize(soap_);
        break;
      case MessageKind::kList100:
        list_response_.soap_serialize(soap_);
        break;
      case MessageKind::kBatchRequest1000:
        batch_request_.soap_serialize(soap_);
        break;
      case MessageKind::kBatchResponse1000:
        batch_response_.soap_serialize(soap_);
        break;
    }
  }

  // The envelope, as the generated serve___pc__* / send_* functions write it.
  int PutEnvelope() {
    if (soap_envelope_begin_out(soap_) != SOAP_OK || soap_putheader(soap_) != SOAP_OK ||
        soap_body_begin_out(soap_) != SOAP_OK) {
      return soap_->error;
    }
    int error = SOAP_OK;
    switch (kind_) {
      case MessageKind::kUser:
        error = get_response_.soap_put(soap_, "pc:GetUserResponse", "");
        break;
      case MessageKind::kList100:
        error = list_response_.soap_put(soap_, "pc:ListUsersResponse", "");
        break;
      case MessageKind::kBatchRequest1000:
        error = batch_request_.soap_put(soap_, "pc:BatchGetUsers", "");
        break;
      case MessageKind::kBatchResponse1000:
        error = batch_response_.soap_put(soap_, "pc:BatchGetUsersResponse", "");
        break;
    }
    if (error != SOAP_OK || soap_body_end_out(soap_) != SOAP_OK ||
        soap_envelope_end_out(soap_) != SOAP_OK) {
      return soap_->error;
    }
    return SOAP_OK;
  }

  // The generated recv_* sequence (and soap_begin_serve's for the request);
  // fills `out` when it is not null.
  void DecodeInto(std::string_view wire, MessageValue* out) {
    ViewStreambuf buffer(wire);
    std::istream in(&buffer);
    soap_->is = &in;
    if (soap_begin_recv(soap_) != SOAP_OK || soap_envelope_begin_in(soap_) != SOAP_OK ||
        soap_recv_header(soap_) != SOAP_OK || soap_body_begin_in(soap_) != SOAP_OK) {
      Fail("envelope input");
    }
    switch (kind_) {
      case MessageKind::kUser: {
        _pc__GetUserResponse response;
        response.soap_default(soap_);
        response.soap_get(soap_, "pc:GetUserResponse", nullptr);
        EndReceive();
        if (response.user == nullptr) Fail("GetUserResponse without user");
        if (out != nullptr) out->users.push_back(FromSoap(*response.user));
        break;
      }
      case MessageKind::kList100: {
        _pc__ListUsersResponse response;
        response.soap_default(soap_);
        response.soap_get(soap_, "pc:ListUsersResponse", nullptr);
        EndReceive();
        if (out != nullptr) {
          out->users = FromSoap(response.users);
          out->next_after_id = response.next_USCOREafter_USCOREid;
        }
        break;
      }
      case MessageKind::kBatchRequest1000: {
        _pc__BatchGetUsers request;
        request.soap_default(soap_);
        request.soap_get(soap_, "pc:BatchGetUsers", nullptr);
        EndReceive();
        if (out != nullptr) out->ids.assign(request.ids.begin(), request.ids.end());
        break;
      }
      case MessageKind::kBatchResponse1000: {
        _pc__BatchGetUsersResponse response;
        response.soap_default(soap_);
        response.soap_get(soap_, "pc:BatchGetUsersResponse", nullptr);
        EndReceive();
        if (out != nullptr) out->users = FromSoap(response.users);
        break;
      }
    }
    soap_->is = nullptr;
    soap_destroy(soap_);
    soap_end(soap_);
  }

  void EndReceive() {
    if (soap_->error != SOAP_OK || soap_body_end_in(soap_) != SOAP_OK ||
        soap_envelope_end_in(soap_) != SOAP_OK || soap_end_recv(soap_) != SOAP_OK) {
      Fail("body input");
    }
  }

  [[noreturn]] void Fail(const char* step) {
    char fault[512];
    soap_sprint_fault(soap_, fault, sizeof(fault));
    const int error = soap_->error;
    soap_->is = nullptr;
    soap_->os = nullptr;
    soap_destroy(soap_);
    soap_end(soap_);
    throw std::runtime_error(std::string("gSOAP ") + step + " failed (error " +
                             std::to_string(error) + "): " + fault);
  }

  MessageKind kind_;
  struct soap* soap_;
  std::vector<pc__User> users_;
  _pc__GetUserResponse get_response_;
  _pc__ListUsersResponse list_response_;
  _pc__BatchGetUsers batch_request_;
  _pc__BatchGetUsersResponse batch_response_;
  std::ostringstream out_;
};

}  // namespace

std::unique_ptr<Codec> MakeSoapCodec(MessageKind kind, const MessageValue& value) {
  return std::make_unique<SoapCodec>(kind, value);
}

}  // namespace polycrud::micro_bench
