import { defineSchema, table, text } from '@dovetail/schema';

/**
 * A small social app: profiles (the identity table), posts with their
 * owner (and, from version 2, the post they reply to), reactions on posts,
 * and conversations with their members and messages.
 */
function social(version: 1 | 2) {
  return defineSchema({
    version,
    identity: 'profiles',
    tables: {
      profiles: table({ columns: { id: text().primaryKey(), name: text().default(''), bio: text().nullable() }, owner: 'id', visibility: 'public' }),
      posts: table({
        columns: {
          id: text().primaryKey(),
          owner_id: text().references('profiles'),
          body: text(),
          ...(version === 2 ? { reply_to_id: text().nullable().references('posts', { onDelete: 'set null' }) } : {}),
        },
        owner: 'owner_id',
        visibility: 'public',
      }),
      reactions: table({
        columns: { id: text().primaryKey(), post_id: text().references('posts', { onDelete: 'cascade' }), owner_id: text().references('profiles', { onDelete: 'cascade' }), emoji: text() },
        owner: 'owner_id',
        visibility: 'public',
      }),
      conversations: table({
        columns: { id: text().primaryKey(), owner_id: text().references('profiles'), title: text().default('') },
        owner: 'owner_id',
        visibility: { members: { table: 'members', key: 'conversation_id', user: 'user_id' } },
      }),
      members: table({
        columns: { id: text().primaryKey(), conversation_id: text().references('conversations', { onDelete: 'cascade' }), user_id: text().references('profiles', { onDelete: 'cascade' }) },
        owner: { through: 'conversation_id' },
        visibility: { through: 'conversation_id' },
      }),
      messages: table({
        columns: { id: text().primaryKey(), conversation_id: text().references('conversations', { onDelete: 'cascade' }), author_id: text().references('profiles'), body: text() },
        owner: 'author_id',
        visibility: { through: 'conversation_id' },
      }),
    },
  });
}

export const socialV1 = social(1);
/** Version 2 adds `posts.reply_to_id`, a nullable key to `posts`. */
export const socialV2 = social(2);
