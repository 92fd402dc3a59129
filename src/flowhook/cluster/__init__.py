"""Several flowhook processes on one PostgreSQL database: partitions, leases, wake-ups."""
