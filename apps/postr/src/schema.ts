/**
 * The Postr schema: profiles, posts (with replies, quotes and reposts),
 * reactions, bookmarks, and conversations with their members and messages.
 * One definition for the devices (SQLite) and the server (Postgres).
 *
 * Every foreign key answers two questions:
 * - `onDelete`: what happens to the children when a parent is deleted,
 *   on the server and on every device that holds them;
 * - `onConcurrentDelete`: what the server does with a child written
 *   offline, on a device that still had the parent, when the parent was
 *   deleted meanwhile.
 *
 * Postr answers the second one with a single rule: **words are never dropped
 * silently.** A reply, a quote or a message written offline against a
 * parent that is gone is refused with `parent_deleted`, so it lands, text
 * and all, in its writer's rejected log, where the app can offer to post it
 * another way. Marks that carry nothing of their own (reactions, bookmarks,
 * reposts) simply go with their parent (`cascade`).
 */
import { defineSchema, integer, table, text } from '@dovetail/schema';
import type { Row } from '@dovetail/schema';

export const schema = defineSchema({
  version: 1,
  // The table whose id is the user id: the token's `sub`. The device makes
  // the user's own row on bind, the server from the token's claims (G14).
  identity: 'users',
  tables: {
    users: table({
      columns: {
        id: text().primaryKey(),
        // Defaults, because a profile is created before the user has filled
        // it in: from the token's `name` claim, or empty.
        name: text().default(''),
        // Unique but nullable: a profile is made from the token alone, before
        // its user has picked a handle, and NULLs never collide. Two people
        // who claim one handle offline are told by a refusal (`invalid`),
        // never by a broken database.
        handle: text().nullable().unique(),
        bio: text().default(''),
      },
      owner: 'id',
      visibility: 'public',
    }),

    posts: table({
      columns: {
        id: text().primaryKey(),
        // Deleting an account deletes its posts.
        author_id: text().references('users', { onDelete: 'cascade' }),
        // Empty for a repost, which shows the post it points at.
        body: text().default(''),
        /** Milliseconds since the epoch, from the writer's clock: for ordering only. */
        created_at: integer(),
        // A reply belongs to the thread it answers: when that post is deleted,
        // its replies go with it (`cascade`), here and on every device. A reply
        // written offline to a post deleted meanwhile is refused instead
        // (`reject`): it was never part of the thread, and its writer gets
        // their text back in the rejected log rather than losing it.
        reply_to_id: text().nullable().references('posts', { onDelete: 'cascade', onConcurrentDelete: 'reject' }),
        // A quote's own words stand when the quoted post is deleted: the
        // link is cleared (`set null`) and the quote stays. Written offline
        // against a post deleted meanwhile, it is refused like a reply: a
        // quote of nothing is not what its writer meant to publish.
        quote_of_id: text().nullable().references('posts', { onDelete: 'set null', onConcurrentDelete: 'reject' }),
        // A repost is nothing without its post: it goes with it, online or
        // offline, and nobody needs to be told.
        repost_of_id: text().nullable().references('posts', { onDelete: 'cascade', onConcurrentDelete: 'cascade' }),
      },
      owner: 'author_id',
      visibility: 'public',
    }),

    reactions: table({
      columns: {
        // `reactionId(post, user, emoji)`: one reaction per user, post and
        // emoji, the same id on every device of that user (see ids.ts).
        id: text().primaryKey(),
        post_id: text().references('posts', { onDelete: 'cascade', onConcurrentDelete: 'cascade' }),
        user_id: text().references('users', { onDelete: 'cascade' }),
        emoji: text(),
        created_at: integer(),
      },
      owner: 'user_id',
      visibility: 'public',
    }),

    bookmarks: table({
      columns: {
        // `bookmarkId(post, user)`: one per user and post (see ids.ts).
        id: text().primaryKey(),
        post_id: text().references('posts', { onDelete: 'cascade', onConcurrentDelete: 'cascade' }),
        user_id: text().references('users', { onDelete: 'cascade' }),
        created_at: integer(),
      },
      owner: 'user_id',
      // Private: only their owner's devices ever receive them.
      visibility: 'owner',
    }),

    conversations: table({
      columns: {
        id: text().primaryKey(),
        // The creator owns the conversation and so decides who is in it.
        created_by: text().references('users', { onDelete: 'cascade' }),
        title: text().nullable(),
        created_at: integer(),
      },
      owner: 'created_by',
      // Only members see a conversation, its members and its messages.
      visibility: { members: { table: 'conversation_members', key: 'conversation_id', user: 'user_id' } },
    }),

    conversation_members: table({
      columns: {
        // `memberId(conversation, user)`: a user is in a conversation once.
        id: text().primaryKey(),
        conversation_id: text().references('conversations', { onDelete: 'cascade', onConcurrentDelete: 'cascade' }),
        // A member must be someone the writer can see: a profile that exists.
        user_id: text().references('users', { onDelete: 'cascade' }),
      },
      // Written by the conversation's creator: nobody adds themselves to a
      // conversation (and the server refuses a row pointing at a
      // conversation its writer may not see).
      owner: { through: 'conversation_id' },
      visibility: { through: 'conversation_id' },
    }),

    messages: table({
      columns: {
        id: text().primaryKey(),
        // Messages go with their conversation; one sent offline into a
        // conversation deleted meanwhile is refused, so its sender keeps it.
        conversation_id: text().references('conversations', { onDelete: 'cascade', onConcurrentDelete: 'reject' }),
        sender_id: text().references('users', { onDelete: 'cascade' }),
        body: text(),
        created_at: integer(),
      },
      // Anyone may write their own messages, but only into a conversation
      // they may see, that is, one they are a member of.
      owner: 'sender_id',
      visibility: { through: 'conversation_id' },
    }),
  },
});

export default schema;

export type PostrSchema = typeof schema;
export type User = Row<PostrSchema, 'users'>;
export type Post = Row<PostrSchema, 'posts'>;
export type Reaction = Row<PostrSchema, 'reactions'>;
export type Bookmark = Row<PostrSchema, 'bookmarks'>;
export type Conversation = Row<PostrSchema, 'conversations'>;
export type ConversationMember = Row<PostrSchema, 'conversation_members'>;
export type Message = Row<PostrSchema, 'messages'>;
