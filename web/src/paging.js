// Keyset pages of the users list, forward and backward, over the one list
// call the service has: listUsers(after_id, limit), ids ascending. Links are
// stateless (?after=, ?from=, ?before=), so Previous works after a jump, a
// bookmark or any number of Next steps, and every page is read from MariaDB.
//
// Backward: the page before id B holds the `limit` users just below B. With
// count(P) = number of users with P < id < B, count falls by at most one per
// step of P, so the largest P with count(P) >= limit has count(P) == limit,
// and listUsers(P, limit) is that page. Each probe is listUsers(P, limit + 1)
// (which tells count(P) < limit, == limit or > limit); a gallop downwards
// from P = B - 1 - limit, then a bisection, finds P. With dense ids (the
// usual case) the first probe is the answer; a gap of G deleted ids costs
// about 2 * log2(G / limit) probes, each one indexed range read.
'use strict';

/** Bounded, whatever the ids: a gallop and a bisection over the int64 range. */
const MAX_PROBES = 130;

/**
 * The page of the `limit` users just below `before`. list(after, limit)
 * resolves to { users, next_after_id } as UserClient.listUsers does.
 * Resolves to { users, next_after_id, after, first } where `after` is the
 * keyset position of the page and `first` tells that no user precedes it.
 */
async function pageBefore(list, before, limit) {
  if (before <= 1n) return { ...(await list(0n, limit)), after: 0n, first: true };
  let probes = 0;
  const probe = async (p) => {
    if (++probes > MAX_PROBES) throw new Error('pageBefore: probe bound exceeded');
    const page = await list(p, limit + 1);
    return { page, below: page.users.filter((u) => u.id < before).length };
  };
  // The answer for a probe that saw exactly `limit` users below `before`.
  const answer = (p, { page }) => ({
    users: page.users.slice(0, limit),
    next_after_id: page.users.length > limit ? page.users[limit - 1].id : 0n,
    after: p,
    first: p === 0n,
  });
  // Gallop: hi always has count(hi) < limit.
  let hi = before - 1n;
  let step = BigInt(limit);
  let lo;
  for (;;) {
    const p = hi - step > 0n ? hi - step : 0n;
    const r = await probe(p);
    if (r.below === limit) return answer(p, r);
    if (r.below > limit) {
      lo = p;
      break;
    }
    // Fewer than `limit` users below `before` in all: the first page.
    if (p === 0n) return { ...(await list(0n, limit)), after: 0n, first: true };
    hi = p;
    step *= 2n;
  }
  // Bisection: count(lo) > limit, count(hi) < limit.
  while (hi - lo > 1n) {
    const mid = lo + (hi - lo) / 2n;
    const r = await probe(mid);
    if (r.below === limit) return answer(mid, r);
    if (r.below > limit) lo = mid;
    else hi = mid;
  }
  // Only reachable when the users changed between probes: settle on lo.
  return { ...(await list(lo, limit)), after: lo, first: lo === 0n };
}

module.exports = { pageBefore, MAX_PROBES };
