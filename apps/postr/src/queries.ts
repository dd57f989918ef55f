/**
 * Everything Postr reads: plain SQL on the device's own database, so reads
 * never wait for the network and see the user's pending writes at once.
 * Each query comes as a one-off read and as a live query (`watch…`), which
 * calls back with fresh rows after every commit that changes a table it
 * reads: the user's own writes and every pull.
 */
import type { SqlValue } from '@dovetail/client';
import type { PostrDatabase } from './actions.js';

/** A query and its parameters: run once, or watched. */
interface Query {
  readonly sql: string;
  readonly params: readonly SqlValue[];
}

/** One entry of the timeline: a post, a quote, or a repost showing its post. */
export type TimelineEntry = {
  /** The entry's own post id (the repost's id for a repost). */
  id: string;
  /** Who reposted it, when the entry is a repost. */
  reposted_by: string | null;
  /** The post shown: the entry itself, or what it reposts. */
  post_id: string;
  author_id: string;
  author_name: string;
  body: string;
  /** The quoted post, when the shown post is a quote (null if that post was deleted). */
  quote_of_id: string | null;
  quoted_author_name: string | null;
  quoted_body: string | null;
  created_at: number;
  replies: number;
  quotes: number;
  reposts: number;
  reactions: number;
};

const TIMELINE_SQL = `
SELECT e.id,
       CASE WHEN e.repost_of_id IS NULL THEN NULL ELSE eu.name END AS reposted_by,
       p.id AS post_id, p.author_id, pu.name AS author_name, p.body,
       p.quote_of_id, qu.name AS quoted_author_name, q.body AS quoted_body,
       e.created_at,
       (SELECT count(*) FROM posts r WHERE r.reply_to_id = p.id) AS replies,
       (SELECT count(*) FROM posts r WHERE r.quote_of_id = p.id) AS quotes,
       (SELECT count(*) FROM posts r WHERE r.repost_of_id = p.id) AS reposts,
       (SELECT count(*) FROM reactions x WHERE x.post_id = p.id) AS reactions
FROM posts e
JOIN users eu ON eu.id = e.author_id
JOIN posts p ON p.id = coalesce(e.repost_of_id, e.id)
JOIN users pu ON pu.id = p.author_id
LEFT JOIN posts q ON q.id = p.quote_of_id
LEFT JOIN users qu ON qu.id = q.author_id
WHERE e.reply_to_id IS NULL
ORDER BY e.created_at DESC, e.id DESC
LIMIT ?`;

const timelineQuery = (limit: number): Query => ({ sql: TIMELINE_SQL, params: [limit] });

/** Newest first: posts, quotes and reposts (replies are in their threads), with their counts. */
export function timeline(db: PostrDatabase, limit = 50): Promise<TimelineEntry[]> {
  return read(db, timelineQuery(limit));
}

export function watchTimeline(db: PostrDatabase, onData: (entries: TimelineEntry[]) => void, limit = 50): () => void {
  return watch(db, timelineQuery(limit), onData);
}

/** A post of a thread, with how deep it is (0 for the post the thread is about). */
export type ThreadPost = {
  id: string;
  reply_to_id: string | null;
  author_id: string;
  author_name: string;
  body: string;
  created_at: number;
  depth: number;
};

const threadQuery = (postId: string): Query => ({
  sql: `
WITH RECURSIVE thread(id, depth) AS (
  SELECT id, 0 FROM posts WHERE id = ?
  UNION ALL
  SELECT r.id, t.depth + 1 FROM posts r JOIN thread t ON r.reply_to_id = t.id
)
SELECT p.id, p.reply_to_id, p.author_id, u.name AS author_name, p.body, p.created_at, t.depth
FROM thread t
JOIN posts p ON p.id = t.id
JOIN users u ON u.id = p.author_id
ORDER BY t.depth, p.created_at, p.id`,
  params: [postId],
});

/** A post and all the replies below it, level by level, oldest first. Empty if the post is not there. */
export function thread(db: PostrDatabase, postId: string): Promise<ThreadPost[]> {
  return read(db, threadQuery(postId));
}

export function watchThread(db: PostrDatabase, postId: string, onData: (posts: ThreadPost[]) => void): () => void {
  return watch(db, threadQuery(postId), onData);
}

/** A bookmarked post, newest bookmark first. */
export type BookmarkedPost = {
  post_id: string;
  author_name: string;
  body: string;
  bookmarked_at: number;
};

const bookmarksQuery = (userId: string): Query => ({
  sql: `
SELECT p.id AS post_id, u.name AS author_name, p.body, b.created_at AS bookmarked_at
FROM bookmarks b
JOIN posts p ON p.id = b.post_id
JOIN users u ON u.id = p.author_id
WHERE b.user_id = ?
ORDER BY b.created_at DESC, b.id DESC`,
  params: [userId],
});

/** The user's bookmarks. */
export function bookmarks(db: PostrDatabase): Promise<BookmarkedPost[]> {
  return read(db, bookmarksQuery(db.userId));
}

/** A conversation the user is in, with its members' names and its latest activity. */
export type ConversationSummary = {
  id: string;
  title: string | null;
  /** Members' names, comma-separated, in name order. */
  members: string;
  last_message: string | null;
  last_at: number;
};

const conversationsQuery = (userId: string): Query => ({
  sql: `
SELECT c.id, c.title,
       (SELECT group_concat(u.name, ', ' ORDER BY u.name) FROM conversation_members m
          JOIN users u ON u.id = m.user_id WHERE m.conversation_id = c.id) AS members,
       (SELECT body FROM messages WHERE conversation_id = c.id ORDER BY created_at DESC, id DESC LIMIT 1) AS last_message,
       coalesce((SELECT max(created_at) FROM messages WHERE conversation_id = c.id), c.created_at) AS last_at
FROM conversations c
WHERE EXISTS (SELECT 1 FROM conversation_members m WHERE m.conversation_id = c.id AND m.user_id = ?)
ORDER BY last_at DESC, c.id`,
  params: [userId],
});

/** The user's conversations, most recently active first. */
export function conversations(db: PostrDatabase): Promise<ConversationSummary[]> {
  return read(db, conversationsQuery(db.userId));
}

export function watchConversations(db: PostrDatabase, onData: (conversations: ConversationSummary[]) => void): () => void {
  return watch(db, conversationsQuery(db.userId), onData);
}

/** A message with its sender's name. */
export type ChatMessage = {
  id: string;
  sender_id: string;
  sender_name: string;
  body: string;
  created_at: number;
};

const messagesQuery = (conversationId: string): Query => ({
  sql: `
SELECT m.id, m.sender_id, u.name AS sender_name, m.body, m.created_at
FROM messages m
JOIN users u ON u.id = m.sender_id
WHERE m.conversation_id = ?
ORDER BY m.created_at, m.id`,
  params: [conversationId],
});

/** A conversation's messages, oldest first. */
export function messages(db: PostrDatabase, conversationId: string): Promise<ChatMessage[]> {
  return read(db, messagesQuery(conversationId));
}

export function watchMessages(db: PostrDatabase, conversationId: string, onData: (messages: ChatMessage[]) => void): () => void {
  return watch(db, messagesQuery(conversationId), onData);
}

function read<R extends Record<string, SqlValue>>(db: PostrDatabase, query: Query): Promise<R[]> {
  return db.query<R>(query.sql, query.params);
}

/** The tables a live query reads are found from its plan, so a change to any of them re-runs it. */
function watch<R extends Record<string, SqlValue>>(db: PostrDatabase, query: Query, onData: (rows: R[]) => void): () => void {
  return db.watch<R>(query.sql, query.params, { onData });
}
