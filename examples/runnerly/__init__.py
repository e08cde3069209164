"""runnerly: four shoal services for runners, run together with `shoal up examples/runnerly`.

- `users` (8001) stores runners; `runs` (8002) stores their runs and announces
  each one (`runs.recorded`, through its outbox, on NATS JetStream);
- `stats` (8003) keeps per-user totals from those events;
- `gateway` (8000) is the public API: it forwards writes, checks that a user
  exists before recording a run, and builds the dashboard from users and stats
  concurrently, degrading (`"stats": null`) when `stats` is down or slow.
- `shoal up` also runs the broker (nats-server, JetStream, files under
  `$RUNNERLY_DATA/nats`).

Each service has its own database: a SQLite file under `$RUNNERLY_DATA`
(default `.runnerly/`) unless `DATABASE_URL` names another (PostgreSQL).
"""
