// Unit tests of the SOAP adapter without a network: SoapUserService's
// operations over UserService wired to in-memory fakes, the fault mapping of
// API.md's error table (faultcode, faultstring, <detail>), and the embedded WSDL.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

#include "adapters/soap/soap_user_service.h"
#include "soapH.h"
#include "tests/core/user_service_fixture.h"

namespace polycrud::soap_adapter {
namespace {

using testing::kAdminToken;
using testing::kReaderToken;

// One gSOAP context as a SOAP 1.1 request would leave it on the server.
class SoapContext {
 public:
  SoapContext() : soap_(soap_new1(SOAP_C_UTFSTRING)) { soap_->version = 1; }
  ~SoapContext() {
    soap_destroy(soap_);
    soap_end(soap_);
    soap_free(soap_);
  }
  SoapContext(const SoapContext&) = delete;
  SoapContext& operator=(const SoapContext&) = delete;
  struct soap* get() {
    return soap_;
  }

  std::string faultcode() { return soap_->fault ? soap_->fault->faultcode : ""; }
  std::string faultstring() { return soap_->fault ? soap_->fault->faultstring : ""; }
  std::string detail() {
    const char* detail = soap_fault_detail(soap_);
    return detail != nullptr ? detail : "";
  }

 private:
  struct soap* soap_;
};

TEST(SoapFaultTest, EveryCoreCodeMapsToTheFaultOfTheTable) {
  struct Case {
    Status status;
    std::string faultcode;
    std::string faultstring;
    std::string detail;
  };
  const std::string ns = " xmlns=\"urn:polycrud:v1\"";
  const std::vector<Case> cases = {
      {Status::InvalidArgument("bad username", "username"), "SOAP-ENV:Client", "bad username",
       "<code" + ns + ">INVALID_ARGUMENT</code><field" + ns + ">username</field>"},
      {Status::Unauthenticated("no token"), "SOAP-ENV:Client", "no token",
       "<code" + ns + ">UNAUTHENTICATED</code>"},
      {Status::PermissionDenied("admins only"), "SOAP-ENV:Client", "admins only",
       "<code" + ns + ">PERMISSION_DENIED</code>"},
      {Status::NotFound("no user 7"), "SOAP-ENV:Client", "no user 7",
       "<code" + ns + ">NOT_FOUND</code>"},
      {Status::Duplicate("taken"), "SOAP-ENV:Client", "taken", "<code" + ns + ">CONFLICT</code>"},
      {Status::VersionMismatch("stale"), "SOAP-ENV:Client", "stale",
       "<code" + ns + ">CONFLICT</code>"},
      {Status::ResourceExhausted("pool of 8 full", 1000), "SOAP-ENV:Server",
       "overloaded, retry later", "<code" + ns + ">RESOURCE_EXHAUSTED</code>"},
      {Status::Unavailable("mysql at db-3:3306 down", 1000), "SOAP-ENV:Server",
       "service unavailable, retry later", "<code" + ns + ">UNAVAILABLE</code>"},
      {Status::Internal("SELECT failed at line 3"), "SOAP-ENV:Server", "internal error",
       "<code" + ns + ">INTERNAL</code>"},
  };
  for (const Case& c : cases) {
    SoapContext soap;
    EXPECT_EQ(SetFault(soap.get(), c.status), SOAP_FAULT);
    EXPECT_EQ(soap.faultcode(), c.faultcode) << c.status.ToString();
    EXPECT_EQ(soap.faultstring(), c.faultstring) << c.status.ToString();
    EXPECT_EQ(soap.detail(), c.detail) << c.status.ToString();
  }
}

// gSOAP prepares every fault with soap_set_fault, which runs the fseterror
// hook (CompleteGsoapFault) and then fills in gSOAP's own faultstring.
TEST(SoapFaultTest, FaultsOfGsoapItselfCarryTheCoreCode) {
  struct Case {
    int error;
    std::string faultcode;
    std::string code;
  };
  const std::vector<Case> cases = {
      {SOAP_SYNTAX_ERROR, "SOAP-ENV:Client", "INVALID_ARGUMENT"},
      {SOAP_TYPE, "SOAP-ENV:Client", "INVALID_ARGUMENT"},
      {SOAP_TAG_MISMATCH, "SOAP-ENV:Client", "INVALID_ARGUMENT"},
      {SOAP_NO_METHOD, "SOAP-ENV:Client", "INVALID_ARGUMENT"},
      {SOAP_NO_DATA, "SOAP-ENV:Client", "INVALID_ARGUMENT"},
      // SOAP's own fault codes for these two stay, as SOAP clients expect.
      {SOAP_VERSIONMISMATCH, "SOAP-ENV:VersionMismatch", "INVALID_ARGUMENT"},
      {SOAP_MUSTUNDERSTAND, "SOAP-ENV:MustUnderstand", "INVALID_ARGUMENT"},
      {SOAP_PUT_METHOD, "SOAP-ENV:Client", "INVALID_ARGUMENT"},
      {404, "SOAP-ENV:Client", "NOT_FOUND"},
      {SOAP_EOM, "SOAP-ENV:Server", "INTERNAL"},
      {SOAP_TCP_ERROR, "SOAP-ENV:Server", "INTERNAL"},
      {SOAP_PLUGIN_ERROR, "SOAP-ENV:Server", "INTERNAL"},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE("gSOAP error " + std::to_string(c.error));
    SoapContext soap;
    soap.get()->fseterror = &CompleteGsoapFault;
    soap.get()->error = c.error;
    soap_set_fault(soap.get());
    EXPECT_EQ(soap.faultcode(), c.faultcode);
    EXPECT_EQ(soap.detail(), "<code xmlns=\"urn:polycrud:v1\">" + c.code + "</code>");
    if (c.code == "INTERNAL") {
      EXPECT_EQ(soap.faultstring(), "internal error");
    } else {
      EXPECT_FALSE(soap.faultstring().empty());  // gSOAP's own
    }
  }
}

TEST(SoapFaultTest, AnOperationsFaultKeepsItsOwnDetail) {
  SoapContext soap;
  soap.get()->fseterror = &CompleteGsoapFault;
  ASSERT_EQ(SetFault(soap.get(), Status::InvalidArgument("bad email", "email")), SOAP_FAULT);
  soap_set_fault(soap.get());
  EXPECT_EQ(soap.faultcode(), "SOAP-ENV:Client");
  EXPECT_EQ(soap.faultstring(), "bad email");
  EXPECT_EQ(soap.detail(),
            "<code xmlns=\"urn:polycrud:v1\">INVALID_ARGUMENT</code>"
            "<field xmlns=\"urn:polycrud:v1\">email</field>");
}

class SoapUserServiceTest : public testing::UserServiceFixture {
 protected:
  void SetUp() override {
    UserServiceFixture::SetUp();
    soap_service_ = std::make_unique<SoapUserService>(soap_.get(), service(), metrics_);
  }
  void TearDown() override {
    soap_service_->reset();
    UserServiceFixture::TearDown();
  }

  // Sets the bearer token gSOAP would have parsed from the request.
  void Authorize(std::string_view token) {
    soap_.get()->bearer = token.empty() ? nullptr : soap_strdup(soap_.get(), token.data());
  }

  Metrics metrics_;
  SoapContext soap_;
  std::unique_ptr<SoapUserService> soap_service_;
};

TEST_F(SoapUserServiceTest, CrudRoundTripTranslatesEveryField) {
  Authorize(kAdminToken);
  _pc__CreateUser create;
  create.username = "zoe";
  create.email = "zoe@example.com";
  create.full_USCOREname = "Zoë \"Q\" 😀";
  _pc__CreateUserResponse created;
  ASSERT_EQ(soap_service_->CreateUser(&create, created), SOAP_OK) << soap_.faultstring();
  ASSERT_NE(created.user, nullptr);
  EXPECT_GT(created.user->id, 0);
  EXPECT_EQ(created.user->full_USCOREname, "Zoë \"Q\" 😀");
  EXPECT_EQ(created.user->version, 1);

  Authorize(kReaderToken);
  _pc__GetUser get;
  get.id = created.user->id;
  _pc__GetUserResponse got;
  ASSERT_EQ(soap_service_->GetUser(&get, got), SOAP_OK);
  EXPECT_EQ(got.user->username, "zoe");
  EXPECT_EQ(got.user->created_USCOREat_USCOREms, created.user->created_USCOREat_USCOREms);

  Authorize(kAdminToken);
  std::string full_name = "Renamed";
  LONG64 expected_version = 1;
  _pc__UpdateUser update;
  update.id = created.user->id;
  update.full_USCOREname = &full_name;
  update.expected_USCOREversion = &expected_version;
  _pc__UpdateUserResponse updated;
  ASSERT_EQ(soap_service_->UpdateUser(&update, updated), SOAP_OK);
  EXPECT_EQ(updated.user->version, 2);
  EXPECT_EQ(updated.user->email, "zoe@example.com");

  _pc__BatchGetUsers batch;
  batch.ids = {created.user->id, 999'999};
  _pc__BatchGetUsersResponse batched;
  ASSERT_EQ(soap_service_->BatchGetUsers(&batch, batched), SOAP_OK);
  ASSERT_EQ(batched.users.size(), 1u);

  _pc__ListUsers list;  // after_id and limit absent: the defaults
  _pc__ListUsersResponse listed;
  ASSERT_EQ(soap_service_->ListUsers(&list, listed), SOAP_OK);
  ASSERT_EQ(listed.users.size(), 1u);
  EXPECT_EQ(listed.next_USCOREafter_USCOREid, 0);

  _pc__DeleteUser remove;
  remove.id = created.user->id;
  _pc__DeleteUserResponse removed;
  ASSERT_EQ(soap_service_->DeleteUser(&remove, removed), SOAP_OK);
  EXPECT_EQ(soap_service_->GetUser(&get, got), SOAP_FAULT);
  EXPECT_EQ(soap_.detail(), "<code xmlns=\"urn:polycrud:v1\">NOT_FOUND</code>");

  const Metrics::Series& gets = metrics_.series(Protocol::kSoap, Operation::kGetUser);
  EXPECT_EQ(gets.requests.load(), 2u);
  EXPECT_EQ(gets.by_code[static_cast<std::size_t>(StatusCode::kNotFound)].load(), 1u);
}

TEST_F(SoapUserServiceTest, MissingTokenIsUnauthenticatedAndPingNeedsNone) {
  Authorize("");
  _pc__GetUser get;
  get.id = 1;
  _pc__GetUserResponse got;
  EXPECT_EQ(soap_service_->GetUser(&get, got), SOAP_FAULT);
  EXPECT_EQ(soap_.faultcode(), "SOAP-ENV:Client");
  EXPECT_EQ(soap_.detail(), "<code xmlns=\"urn:polycrud:v1\">UNAUTHENTICATED</code>");
  _pc__Ping ping;
  _pc__PingResponse pong;
  EXPECT_EQ(soap_service_->Ping(&ping, pong), SOAP_OK);
  EXPECT_EQ(pong.server.rfind("polycrud ", 0), 0u);
}

TEST(SoapWsdlTest, EmbeddedWsdlDeclaresEveryOperation) {
  const std::string wsdl(WsdlText());
  EXPECT_NE(wsdl.find("targetNamespace=\"urn:polycrud:v1\""), std::string::npos);
  for (const char* op : {"Ping", "CreateUser", "GetUser", "BatchGetUsers", "UpdateUser",
                         "DeleteUser", "ListUsers"}) {
    EXPECT_NE(wsdl.find("<wsdl:operation name=\"" + std::string(op) + "\">"), std::string::npos)
        << op;
    EXPECT_NE(wsdl.find("<xsd:element name=\"" + std::string(op) + "Response\">"),
              std::string::npos)
        << op;
  }
  EXPECT_NE(wsdl.find("http://127.0.0.1:8080/soap"), std::string::npos);
}

}  // namespace
}  // namespace polycrud::soap_adapter
