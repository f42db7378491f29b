import type { ServerContext, SessionState } from './context.js';

/**
 * Hex hashes of chunks `[0, count)` of `tokens`, from the session's cache; only chunks not
 * cached yet (or whose tokens changed) are hashed, inline or on the pool (see HashPool).
 */
export async function sessionHashes(
  ctx: ServerContext,
  session: SessionState,
  tokens: Uint32Array,
  count: number,
): Promise<readonly string[]> {
  const chain = session.chain;
  const valid = chain.validPrefix(tokens, count);
  if (valid < count) {
    const prev = chain.prevOf(valid, ctx.hasher.chainStart);
    const digests = await ctx.pool.hash(prev, tokens, valid, ctx.chunkTokens, count - valid);
    // The mailbox guarantees no other message of this session ran meanwhile.
    chain.append(valid, digests, tokens);
  }
  return chain.hex(0, count);
}
