// Real Redis and Postgres servers for tests: the helpers live in ts/bench/servers.ts (the
// cluster benchmark uses them too); the suites import them from here.
export { type PostgresServer, type RedisServer, serverBinaries, startPostgres, startRedis, stopRedisForGood } from '../../dist/bench/servers.js'
