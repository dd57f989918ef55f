/**
 * Postr, the Dovetail reference app: a social feed and chat. The schema
 * (also what `dovetail serve --schema apps/postr/src/schema.ts` loads), the
 * app's writes and reads, and the demo data for `dovetail dev`.
 */
export { schema } from './schema.js';
export type { Bookmark, Conversation, ConversationMember, Message, Post, PostrSchema, Reaction, User } from './schema.js';
export { bookmark, deletePost, post, quote, react, reply, repost, sendMessage, startConversation, unbookmark, unreact, unrepost, updateProfile } from './actions.js';
export type { Made, PostrDatabase } from './actions.js';
export { bookmarks, conversations, messages, thread, timeline, watchConversations, watchMessages, watchThread, watchTimeline } from './queries.js';
export type { BookmarkedPost, ChatMessage, ConversationSummary, ThreadPost, TimelineEntry } from './queries.js';
export { bookmarkId, compoundId, memberId, newId, reactionId, repostId } from './ids.js';
export { seed } from './seed.js';
export type { DemoUser } from './seed.js';
