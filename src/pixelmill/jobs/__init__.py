"""Jobs: the durable queue in the job database (SQLite for one machine, PostgreSQL for many),
on which the service's API puts work and its workers take it."""
