/*
 * polycrud's status service, in the style of fb303: what Thrift users'
 * monitoring polls on the Thrift port. Served beside UserService on the
 * same port, for clients of Thrift's multiplexed protocol under the service
 * name "StatusService" (UserService stays reachable without a service name,
 * its wire contract unchanged). No token: like /healthz and /metrics, it
 * tells nothing about users. Field ids and names are fixed.
 */
namespace cpp polycrud.thrift
namespace py polycrud_status
namespace js polycrud_status

/** fb303's fb_status, with its numbers. */
enum ServiceStatus {
  DEAD = 0,
  /** The process runs but not every face listens yet. */
  STARTING = 1,
  /** Serving, MariaDB and Redis reachable. */
  ALIVE = 2,
  /** Draining (not ready for new work) or shutting down. */
  STOPPING = 3,
  STOPPED = 4,
  /** Serving degraded: MariaDB or Redis unreachable (getStatusDetails says which). */
  WARNING = 5
}

service StatusService {
  /** "polycrud-server". */
  string getName()

  /** The server's version, e.g. "0.1.0". */
  string getVersion()

  ServiceStatus getStatus()

  /** What getStatus rests on, e.g. "mysql up, redis down". */
  string getStatusDetails()

  /** When the process started, in seconds since the Unix epoch. */
  i64 aliveSince()

  /**
   * Every sample of GET /metrics (the Prometheus text of the process), keyed
   * by its name and labels as written there (e.g.
   * 'polycrud_requests_total{protocol="thrift",method="getUser",code="OK"}'),
   * the value rounded to an integer.
   */
  map<string, i64> getCounters()

  /** One of getCounters' values; 0 for a key that is not there. */
  i64 getCounter(1: string key)
}
