/**
 * Everything Postr writes. Each action is one `mutate()`: its rows and its
 * outbox entry commit together in the device's database, and it returns
 * without touching the network (G3); the sync runner sends it later. The
 * mutation's name is what the server's log and the rejected log show.
 *
 * Actions take the signed-in user's database (`client.db`, or what
 * `client.bind()` returned) and write as that user, so every row they make
 * is one the server will let that user own.
 */
import type { Database } from '@dovetail/client';
import { bookmarkId, memberId, newId, reactionId, repostId } from './ids.js';
import type { PostrSchema, User } from './schema.js';

export type PostrDatabase = Database<PostrSchema>;

/**
 * How a new row is made: its id (random by default) and its time
 * (`Date.now()` by default). Tests and imports pass their own.
 */
export interface Made {
  readonly id?: string;
  readonly at?: number;
}

/** Publishes a post; returns its id. */
export async function post(db: PostrDatabase, body: string, made: Made = {}): Promise<string> {
  const id = made.id ?? newId();
  await db.mutate('post', (m) => m.insert('posts', { id, author_id: db.userId, body, created_at: made.at ?? Date.now() }));
  return id;
}

/**
 * Replies to a post. If the post is deleted before the reply reaches the
 * server, the reply is refused (`parent_deleted`) and kept, text and all,
 * in the rejected log.
 */
export async function reply(db: PostrDatabase, postId: string, body: string, made: Made = {}): Promise<string> {
  const id = made.id ?? newId();
  await db.mutate('reply', (m) => m.insert('posts', { id, author_id: db.userId, body, reply_to_id: postId, created_at: made.at ?? Date.now() }));
  return id;
}

/** Quotes a post with words of one's own; returns the quote's id. */
export async function quote(db: PostrDatabase, postId: string, body: string, made: Made = {}): Promise<string> {
  const id = made.id ?? newId();
  await db.mutate('quote', (m) => m.insert('posts', { id, author_id: db.userId, body, quote_of_id: postId, created_at: made.at ?? Date.now() }));
  return id;
}

/**
 * Reposts a post. A user reposts a post once: the id is derived from the
 * two, and an upsert makes a second repost (from another device, say)
 * write the same row again.
 */
export async function repost(db: PostrDatabase, postId: string, made: Omit<Made, 'id'> = {}): Promise<string> {
  const id = repostId(postId, db.userId);
  await db.mutate('repost', (m) => m.upsert('posts', { id, author_id: db.userId, repost_of_id: postId, created_at: made.at ?? Date.now() }));
  return id;
}

/** Undoes a repost; does nothing if there is none on this device. */
export function unrepost(db: PostrDatabase, postId: string): Promise<boolean> {
  return deleteIfHeld(db, 'unrepost', 'posts', repostId(postId, db.userId));
}

/**
 * Deletes one of the user's posts. Its replies, reposts, reactions and
 * bookmarks go with it; quotes of it stay, without the link (see schema.ts).
 */
export async function deletePost(db: PostrDatabase, postId: string): Promise<void> {
  await db.mutate('deletePost', (m) => m.delete('posts', postId));
}

/** Reacts to a post with an emoji, once per user, post and emoji. */
export async function react(db: PostrDatabase, postId: string, emoji: string, made: Omit<Made, 'id'> = {}): Promise<string> {
  const id = reactionId(postId, db.userId, emoji);
  await db.mutate('react', (m) => m.upsert('reactions', { id, post_id: postId, user_id: db.userId, emoji, created_at: made.at ?? Date.now() }));
  return id;
}

/** Takes a reaction back; does nothing if there is none on this device. */
export function unreact(db: PostrDatabase, postId: string, emoji: string): Promise<boolean> {
  return deleteIfHeld(db, 'unreact', 'reactions', reactionId(postId, db.userId, emoji));
}

/** Bookmarks a post. Bookmarks are private: only the user's own devices receive them. */
export async function bookmark(db: PostrDatabase, postId: string, made: Omit<Made, 'id'> = {}): Promise<string> {
  const id = bookmarkId(postId, db.userId);
  await db.mutate('bookmark', (m) => m.upsert('bookmarks', { id, post_id: postId, user_id: db.userId, created_at: made.at ?? Date.now() }));
  return id;
}

/** Removes a bookmark; does nothing if there is none on this device. */
export function unbookmark(db: PostrDatabase, postId: string): Promise<boolean> {
  return deleteIfHeld(db, 'unbookmark', 'bookmarks', bookmarkId(postId, db.userId));
}

/** Changes the user's own profile. */
export async function updateProfile(db: PostrDatabase, changes: Partial<Pick<User, 'name' | 'handle' | 'bio'>>): Promise<void> {
  await db.mutate('updateProfile', (m) => m.update('users', db.userId, changes));
}

/**
 * Starts a conversation between the user and others, in one mutation: the
 * conversation and every membership, the user's own included (members are
 * who may see it). The others must be users this device knows.
 */
export async function startConversation(db: PostrDatabase, withUsers: readonly string[], made: Made & { readonly title?: string } = {}): Promise<string> {
  const id = made.id ?? newId();
  const members = [...new Set([db.userId, ...withUsers])];
  await db.mutate('startConversation', (m) => {
    m.insert('conversations', { id, created_by: db.userId, title: made.title ?? null, created_at: made.at ?? Date.now() });
    for (const user of members) m.insert('conversation_members', { id: memberId(id, user), conversation_id: id, user_id: user });
  });
  return id;
}

/** Sends a message into a conversation the user is a member of. */
export async function sendMessage(db: PostrDatabase, conversationId: string, body: string, made: Made = {}): Promise<string> {
  const id = made.id ?? newId();
  await db.mutate('sendMessage', (m) => m.insert('messages', { id, conversation_id: conversationId, sender_id: db.userId, body, created_at: made.at ?? Date.now() }));
  return id;
}

/**
 * Deletes a row the device holds. Deleting a row that is not there throws
 * (`row_not_found`), and "take it back" twice is a normal thing to do.
 */
async function deleteIfHeld(db: PostrDatabase, name: string, table: 'posts' | 'reactions' | 'bookmarks', id: string): Promise<boolean> {
  if (!(await db.get(table, id))) return false;
  await db.mutate(name, (m) => m.delete(table, id));
  return true;
}
