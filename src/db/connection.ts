import pg from 'pg';
import type { DbOptions } from '../options';

/** node-postgres settings shared by the pool and the listener. */
export function clientConfig(db: DbOptions, applicationName: string): pg.ClientConfig {
  return {
    host: db.host,
    port: db.port,
    database: db.database,
    user: db.user,
    password: db.password,
    application_name: applicationName,
    // TCP keepalive notices a peer that vanished without a FIN (cable pulled, VM frozen).
    keepAlive: true,
    keepAliveInitialDelayMillis: 10_000,
    connectionTimeoutMillis: 10_000,
  };
}

/** Where we connect, for messages: never includes the password. */
export function describeTarget(db: DbOptions): string {
  return `${db.user}@${db.host}:${db.port}/${db.database}`;
}
