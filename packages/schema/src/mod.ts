/**
 * @dovetail/schema: one definition of tables, keys, ownership and
 * visibility, from which come SQLite DDL, Postgres DDL and the key graph.
 */
export { text, integer, real, boolean, json, Column } from './columns.js';
export type { AnyColumn, ColumnKind, DefaultValue, JsonValue, OnConcurrentDelete, OnDelete, ReferenceOptions } from './columns.js';
export { table } from './table.js';
export type { AnyTableDefinition, MembershipRule, OwnerRule, TableDefinition, VisibilityRule } from './table.js';
export { defineSchema, Schema } from './schema.js';
export type { Insert, Patch, Row, SchemaDefinition, TableDefinitions, TableName } from './schema.js';
export { SchemaError, SchemaErrorCode } from './errors.js';
export type { ColumnModel, ForeignKeyModel, KeyGraph, OwnerModel, SchemaModel, TableModel, VisibilityModel } from './model.js';
export { sqliteColumn, sqliteCreateTable, sqliteIndexes } from './sqlite-ddl.js';
export { postgresColumn, postgresCreateTable, postgresForeignKey, postgresIndexes } from './postgres-ddl.js';
export { quoteIdent, quoteLiteral } from './sql.js';
export { checkValue, describeValue } from './values.js';
