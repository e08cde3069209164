"""runnerly: three shoal services for runners, run together with `shoal up examples/runnerly`.

- `users` (8001) stores runners; `runs` (8002) stores their runs and sums them;
- `gateway` (8000) is the public API: it forwards writes, checks that a user
  exists before recording a run, and builds the dashboard from both services
  concurrently, degrading (`"stats": null`) when `runs` is down or slow.

Each service has its own database: a SQLite file under `$RUNNERLY_DATA`
(default `.runnerly/`) unless `DATABASE_URL` names another (PostgreSQL).
"""
