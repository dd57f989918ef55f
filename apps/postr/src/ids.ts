/**
 * Row ids. Ids are text made on the device, so a device never has to ask a
 * server for one. Most rows get a random id; rows that must exist at most
 * once per user (a reaction, a bookmark, a repost, a membership) get an id
 * derived from what they are, so the same action on two devices of one user
 * writes the same row instead of two, and the devices converge.
 */

/** A fresh random id, for rows that may exist any number of times. */
export const newId = (): string => crypto.randomUUID();

/**
 * Joins parts into one id. `:` and `%` inside a part are escaped, so
 * different parts never produce the same id (`a:b` + `c` is not `a` +
 * `b:c`), while ordinary ids and emoji stay readable.
 */
export function compoundId(...parts: readonly string[]): string {
  return parts.map((p) => p.replaceAll('%', '%25').replaceAll(':', '%3A')).join(':');
}

/** One reaction per post, user and emoji: `p1:ann:❤️`. */
export const reactionId = (postId: string, userId: string, emoji: string): string => compoundId(postId, userId, emoji);

/** One bookmark per post and user. */
export const bookmarkId = (postId: string, userId: string): string => compoundId(postId, userId);

/** One repost per post and user; the suffix keeps it apart from other post ids. */
export const repostId = (postId: string, userId: string): string => compoundId(postId, userId, 'repost');

/** One membership per conversation and user. */
export const memberId = (conversationId: string, userId: string): string => compoundId(conversationId, userId);
