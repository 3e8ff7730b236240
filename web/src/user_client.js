// The operations of API.md over the Thrift pool, with plain values in and
// out: ids, versions and timestamps are BigInt, users are plain objects in
// the field order of the contract. Every failure is a ServiceError.
'use strict';

const path = require('node:path');
const { ThriftPool } = require('./thrift_pool');
const { fromThrift, toThrift } = require('./int64');

/** Loads the code that scripts/gen.js generated into web/gen/. */
function loadGenerated() {
  const dir = path.resolve(__dirname, '..', 'gen');
  try {
    return { service: require(path.join(dir, 'UserService.js')), ttypes: require(path.join(dir, 'polycrud_types.js')) };
  } catch (err) {
    if (err.code === 'MODULE_NOT_FOUND') {
      throw new Error(`generated Thrift code missing in ${dir}: run "npm run gen" in web/ first`);
    }
    throw err;
  }
}

function toUser(u) {
  return {
    id: fromThrift(u.id),
    username: u.username,
    email: u.email,
    full_name: u.full_name,
    version: fromThrift(u.version),
    created_at_ms: fromThrift(u.created_at_ms),
    updated_at_ms: fromThrift(u.updated_at_ms),
  };
}

class UserClient {
  /** options: as ThriftPool's, without service/ttypes (loaded from web/gen/). */
  constructor(options) {
    const { service, ttypes } = loadGenerated();
    this.ttypes = ttypes;
    this.pool = new ThriftPool({ ...options, service, ttypes });
  }

  ping() {
    return this.pool.call('ping');
  }

  async createUser(token, { username, email, full_name }) {
    const draft = new this.ttypes.UserDraft({ username, email, full_name });
    return toUser(await this.pool.call('createUser', token, draft));
  }

  async getUser(token, id) {
    return toUser(await this.pool.call('getUser', token, toThrift(id)));
  }

  async batchGetUsers(token, ids) {
    const users = await this.pool.call('batchGetUsers', token, ids.map(toThrift));
    return users.map(toUser);
  }

  /** patch: { email?, full_name?, expected_version (BigInt, 0n = unconditional) }. */
  async updateUser(token, id, patch) {
    const p = new this.ttypes.UserPatch({ expected_version: toThrift(patch.expected_version || 0n) });
    if (patch.email !== undefined) p.email = patch.email;
    if (patch.full_name !== undefined) p.full_name = patch.full_name;
    return toUser(await this.pool.call('updateUser', token, toThrift(id), p));
  }

  async deleteUser(token, id) {
    await this.pool.call('deleteUser', token, toThrift(id));
  }

  async searchUsers(token, prefix, limit) {
    const users = await this.pool.call('searchUsers', token, prefix, limit);
    return users.map(toUser);
  }

  async listUsers(token, afterId, limit) {
    const page = await this.pool.call('listUsers', token, toThrift(afterId), limit);
    return { users: page.users.map(toUser), next_after_id: fromThrift(page.next_after_id) };
  }

  stats() {
    return this.pool.stats();
  }

  close() {
    this.pool.close();
  }
}

module.exports = { UserClient, loadGenerated };
